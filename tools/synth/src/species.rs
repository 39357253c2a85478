//! The attribute catalogue of the synthetic world, how a world's species are derived from its
//! seed, their names and their canonical descriptions.
//!
//! Species `i` of world `W` depends on `W` and `i` only (and on species `0..i` of the same world,
//! which it must differ from): the same world gives the same species whatever the image seed or
//! the number of classes, and the first `K` species of a larger world are the `K` species of a
//! smaller one. A candidate species is drawn from the stream `(W, i, attempt)` and kept once it
//! differs from every earlier species in at least [`MIN_ATTRIBUTE_DIFFERENCES`] of the
//! [`PART_ATTRIBUTES`] parts.

use rand::Rng;
use serde::Serialize;

use super::palette::PartColour;
use super::random::{index, keyed_rng, pick, shuffle, DOMAIN_NAME, DOMAIN_SPECIES};

/// Parts compared by [`Attributes::differences`]: beak shape, beak colour, crest (size and
/// colour), wing bars (count and colour), tail pattern, eye ring and leg colour.
pub const PART_ATTRIBUTES: usize = 7;

/// Every pair of species of a world differs in at least this many parts.
pub const MIN_ATTRIBUTE_DIFFERENCES: usize = 2;

/// Beak shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BeakShape {
    /// A short cone, as a finch's.
    Conical,
    /// An upper mandible curved down over the tip, as a shrike's.
    Hooked,
    /// A long, thin, slightly curved bill, as a sunbird's.
    LongThin,
    /// A short, deep, blunt bill, as a tit's.
    ShortStubby,
}

impl BeakShape {
    /// Every beak shape.
    pub const ALL: [BeakShape; 4] = [
        BeakShape::Conical,
        BeakShape::Hooked,
        BeakShape::LongThin,
        BeakShape::ShortStubby,
    ];

    /// The shape in words.
    pub fn words(self) -> &'static str {
        match self {
            BeakShape::Conical => "conical",
            BeakShape::Hooked => "hooked",
            BeakShape::LongThin => "long thin",
            BeakShape::ShortStubby => "short stubby",
        }
    }

    /// Common-name nouns for birds with this beak.
    fn nouns(self) -> [&'static str; 4] {
        match self {
            BeakShape::Conical => ["finch", "bunting", "sparrow", "grosbeak"],
            BeakShape::Hooked => ["shrike", "hookbill", "vireo", "falconet"],
            BeakShape::LongThin => ["creeper", "sunbird", "warbler", "honeyeater"],
            BeakShape::ShortStubby => ["tit", "chat", "stubbill", "bushtit"],
        }
    }
}

/// Crest sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CrestKind {
    /// No crest.
    None,
    /// Two short spikes.
    Short,
    /// Three tall swept-back spikes.
    Tall,
}

impl CrestKind {
    /// Every crest size.
    pub const ALL: [CrestKind; 3] = [CrestKind::None, CrestKind::Short, CrestKind::Tall];
}

/// Wing bar counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WingBars {
    /// Plain wings.
    None,
    /// One bar across the wing.
    One,
    /// Two bars across the wing.
    Two,
}

impl WingBars {
    /// Every wing bar count.
    pub const ALL: [WingBars; 3] = [WingBars::None, WingBars::One, WingBars::Two];
}

/// Tail patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TailPattern {
    /// A plain fan.
    Plain,
    /// A fan with two dark bars.
    Barred,
    /// A fan with a deep V notch.
    Forked,
    /// A fan with a white end band.
    WhiteTipped,
}

impl TailPattern {
    /// Every tail pattern.
    pub const ALL: [TailPattern; 4] = [
        TailPattern::Plain,
        TailPattern::Barred,
        TailPattern::Forked,
        TailPattern::WhiteTipped,
    ];

    /// The pattern in words.
    pub fn words(self) -> &'static str {
        match self {
            TailPattern::Plain => "plain",
            TailPattern::Barred => "barred",
            TailPattern::Forked => "forked",
            TailPattern::WhiteTipped => "white tipped",
        }
    }
}

/// The part attributes that define a species. A colour is `None` exactly when its part is
/// absent (no crest, no wing bars, no eye ring).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Attributes {
    /// Beak shape.
    pub beak_shape: BeakShape,
    /// Beak colour.
    pub beak_colour: PartColour,
    /// Crest size.
    pub crest: CrestKind,
    /// Crest colour (`None` without a crest).
    pub crest_colour: Option<PartColour>,
    /// Wing bar count.
    pub wing_bars: WingBars,
    /// Wing bar colour (`None` without wing bars).
    pub wing_bar_colour: Option<PartColour>,
    /// Tail pattern.
    pub tail: TailPattern,
    /// Eye ring colour (`None` without an eye ring).
    pub eye_ring: Option<PartColour>,
    /// Leg colour.
    pub leg_colour: PartColour,
}

impl Attributes {
    /// Draws a species uniformly from the catalogue.
    pub fn sample<R: Rng>(rng: &mut R) -> Self {
        let beak_shape = pick(rng, &BeakShape::ALL);
        let beak_colour = pick(rng, &PartColour::ALL);
        let crest = pick(rng, &CrestKind::ALL);
        let crest_colour = pick(rng, &PartColour::ALL);
        let wing_bars = pick(rng, &WingBars::ALL);
        let wing_bar_colour = pick(rng, &PartColour::ALL);
        let tail = pick(rng, &TailPattern::ALL);
        // One chance in (colours + 1) of no eye ring.
        let ring = index(rng, PartColour::ALL.len() + 1);
        let leg_colour = pick(rng, &PartColour::ALL);
        Attributes {
            beak_shape,
            beak_colour,
            crest,
            crest_colour: (crest != CrestKind::None).then_some(crest_colour),
            wing_bars,
            wing_bar_colour: (wing_bars != WingBars::None).then_some(wing_bar_colour),
            tail,
            eye_ring: PartColour::ALL.get(ring).copied(),
            leg_colour,
        }
    }

    /// In how many of the [`PART_ATTRIBUTES`] parts two species differ.
    pub fn differences(&self, other: &Attributes) -> usize {
        [
            self.beak_shape != other.beak_shape,
            self.beak_colour != other.beak_colour,
            (self.crest, self.crest_colour) != (other.crest, other.crest_colour),
            (self.wing_bars, self.wing_bar_colour) != (other.wing_bars, other.wing_bar_colour),
            self.tail != other.tail,
            self.eye_ring != other.eye_ring,
            self.leg_colour != other.leg_colour,
        ]
        .into_iter()
        .filter(|&d| d)
        .count()
    }

    /// The canonical full description, e.g. "a bird with a red hooked beak, a tall black crest,
    /// two white wing bars, a forked tail, a yellow eye ring and orange legs."
    pub fn description(&self) -> String {
        let parts = [
            beak_phrase(self, true),
            crest_phrase(self, true).unwrap_or_else(|| "no crest".to_owned()),
            wing_bar_phrase(self, true).unwrap_or_else(|| "no wing bars".to_owned()),
            tail_phrase(self),
            eye_ring_phrase(self, true).unwrap_or_else(|| "no eye ring".to_owned()),
            legs_phrase(self),
        ];
        format!("a bird with {}.", join_words(&parts))
    }
}

/// One species of a world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Species {
    /// Position in the world's species list.
    pub index: usize,
    /// Unique snake_case two-word common name, e.g. `redcrest_finch`; the class folder name.
    pub name: String,
    /// The defining parts.
    pub attributes: Attributes,
}

impl Species {
    /// The name with spaces, as used in captions.
    pub fn spoken_name(&self) -> String {
        self.name.replace('_', " ")
    }
}

/// The first `count` species of world `world`.
pub fn derive_species(world: u64, count: usize) -> Vec<Species> {
    let mut species: Vec<Species> = Vec::with_capacity(count);
    for i in 0..count {
        let attributes = distinct_attributes(world, i, &species);
        let name = unique_name(world, i, &attributes, &species);
        species.push(Species {
            index: i,
            name,
            attributes,
        });
    }
    species
}

/// The first candidate of stream `(world, i, attempt)` that differs enough from `earlier`. The
/// catalogue holds over a million combinations, so this ends after a few attempts for any
/// supported class count.
fn distinct_attributes(world: u64, i: usize, earlier: &[Species]) -> Attributes {
    let mut attempt = 0u64;
    loop {
        let candidate =
            Attributes::sample(&mut keyed_rng(DOMAIN_SPECIES, world, i as u64, attempt));
        if earlier
            .iter()
            .all(|s| s.attributes.differences(&candidate) >= MIN_ATTRIBUTE_DIFFERENCES)
        {
            return candidate;
        }
        attempt += 1;
    }
}

/// Consonants and vowels of the fallback syllable names.
const ONSETS: [&str; 12] = ["b", "d", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z"];
const VOWELS: [&str; 5] = ["a", "e", "i", "o", "u"];
/// Syllables of a fallback name word.
const FALLBACK_SYLLABLES: usize = 3;

/// A name built from the species' own parts (`<part word>_<beak noun>`), or from syllables
/// when every such name is taken.
fn unique_name(world: u64, i: usize, attrs: &Attributes, earlier: &[Species]) -> String {
    let mut rng = keyed_rng(DOMAIN_NAME, world, i as u64, 0);
    let taken = |n: &str| earlier.iter().any(|s| s.name == n);
    let mut adjectives = name_adjectives(attrs);
    shuffle(&mut rng, &mut adjectives);
    let mut nouns = attrs.beak_shape.nouns();
    shuffle(&mut rng, &mut nouns);
    for adjective in &adjectives {
        for noun in nouns {
            let name = format!("{adjective}_{noun}");
            if !taken(&name) {
                return name;
            }
        }
    }
    loop {
        let word: String = (0..FALLBACK_SYLLABLES)
            .map(|_| format!("{}{}", pick(&mut rng, &ONSETS), pick(&mut rng, &VOWELS)))
            .collect();
        let name = format!("{word}_{}", nouns[0]);
        if !taken(&name) {
            return name;
        }
    }
}

/// One-word name modifiers that are true of the species.
fn name_adjectives(a: &Attributes) -> Vec<String> {
    let mut out = vec![
        format!("{}bill", a.beak_colour.word()),
        format!("{}leg", a.leg_colour.word()),
    ];
    if let Some(c) = a.crest_colour {
        out.push(format!("{}crest", c.word()));
    }
    match a.crest {
        CrestKind::Tall => out.push("tufted".to_owned()),
        CrestKind::Short => out.push("crested".to_owned()),
        CrestKind::None => {}
    }
    if let Some(c) = a.wing_bar_colour {
        out.push(format!("{}bar", c.word()));
    }
    if a.wing_bars == WingBars::Two {
        out.push("twobar".to_owned());
    }
    match a.tail {
        TailPattern::Barred => out.push("bartail".to_owned()),
        TailPattern::Forked => out.push("forktail".to_owned()),
        TailPattern::WhiteTipped => out.push("whitetip".to_owned()),
        TailPattern::Plain => {}
    }
    if let Some(c) = a.eye_ring {
        out.push(format!("{}eye", c.word()));
    }
    out
}

// === Phrases shared by descriptions and captions ===

/// "a red hooked beak" (or "a hooked beak" without colour).
pub(crate) fn beak_phrase(a: &Attributes, colour: bool) -> String {
    with_article(&coloured(
        a.beak_colour,
        colour,
        &format!("{} beak", a.beak_shape.words()),
    ))
}

/// "a tall black crest", or `None` without a crest.
pub(crate) fn crest_phrase(a: &Attributes, colour: bool) -> Option<String> {
    let size = match a.crest {
        CrestKind::None => return None,
        CrestKind::Short => "short",
        CrestKind::Tall => "tall",
    };
    let c = a.crest_colour?;
    let words = if colour {
        format!("{size} {} crest", c.word())
    } else {
        format!("{size} crest")
    };
    Some(with_article(&words))
}

/// "two white wing bars", or `None` without wing bars.
pub(crate) fn wing_bar_phrase(a: &Attributes, colour: bool) -> Option<String> {
    let (count, noun) = match a.wing_bars {
        WingBars::None => return None,
        WingBars::One => ("one", "wing bar"),
        WingBars::Two => ("two", "wing bars"),
    };
    let c = a.wing_bar_colour?;
    Some(format!("{count} {}", coloured(c, colour, noun)))
}

/// "a forked tail".
pub(crate) fn tail_phrase(a: &Attributes) -> String {
    with_article(&format!("{} tail", a.tail.words()))
}

/// "a yellow eye ring", or `None` without an eye ring.
pub(crate) fn eye_ring_phrase(a: &Attributes, colour: bool) -> Option<String> {
    a.eye_ring
        .map(|c| with_article(&coloured(c, colour, "eye ring")))
}

/// "orange legs".
pub(crate) fn legs_phrase(a: &Attributes) -> String {
    format!("{} legs", a.leg_colour.word())
}

fn coloured(c: PartColour, show: bool, noun: &str) -> String {
    if show {
        format!("{} {noun}", c.word())
    } else {
        noun.to_owned()
    }
}

/// `words` with "a" or "an" in front.
pub(crate) fn with_article(words: &str) -> String {
    let vowel = words.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {words}", if vowel { "an" } else { "a" })
}

/// "x", "x and y", "x, y and z".
pub(crate) fn join_words(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn species_depend_on_world_and_index_only() {
        let ten = derive_species(3, 10);
        let twenty = derive_species(3, 20);
        assert_eq!(ten[..], twenty[..10]);
        assert_ne!(derive_species(4, 10), ten);
    }

    #[test]
    fn species_are_distinct_with_unique_names() {
        let all = derive_species(1, 200);
        for (i, a) in all.iter().enumerate() {
            assert!(a.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert_eq!(a.name.matches('_').count(), 1, "two words: {}", a.name);
            for b in &all[..i] {
                assert_ne!(a.name, b.name);
                assert!(a.attributes.differences(&b.attributes) >= MIN_ATTRIBUTE_DIFFERENCES);
            }
        }
    }

    #[test]
    fn description_lists_every_part() {
        let a = Attributes {
            beak_shape: BeakShape::Hooked,
            beak_colour: PartColour::Red,
            crest: CrestKind::Tall,
            crest_colour: Some(PartColour::Black),
            wing_bars: WingBars::Two,
            wing_bar_colour: Some(PartColour::White),
            tail: TailPattern::Forked,
            eye_ring: Some(PartColour::Yellow),
            leg_colour: PartColour::Orange,
        };
        assert_eq!(
            a.description(),
            "a bird with a red hooked beak, a tall black crest, two white wing bars, \
             a forked tail, a yellow eye ring and orange legs."
        );
        let plain = Attributes {
            crest: CrestKind::None,
            crest_colour: None,
            wing_bars: WingBars::None,
            wing_bar_colour: None,
            eye_ring: None,
            beak_colour: PartColour::Orange,
            ..a
        };
        assert_eq!(
            plain.description(),
            "a bird with an orange hooked beak, no crest, no wing bars, a forked tail, \
             no eye ring and orange legs."
        );
        assert_eq!(a.differences(&plain), 4);
    }
}
