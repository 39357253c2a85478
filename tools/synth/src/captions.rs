//! Captions of synthetic frames: what a careful observer would write about the visible bird.
//!
//! A caption mentions only the parts [`super::scene::BirdView`] reports visible (clipped or
//! occluded parts are left out), drops every colour at night (infrared hides them), and follows
//! one of a few templates. The vocabulary is small and lowercase, with `,` and `.` as the only
//! punctuation, so that a small BPE tokenizer can be trained on it.

use rand::Rng;

use super::backdrop::{Backdrop, Setting};
use super::bird::Part;
use super::random::{chance, index, shuffle};
use super::scene::BirdView;
use super::species::{
    beak_phrase, crest_phrase, eye_ring_phrase, join_words, legs_phrase, tail_phrase,
    wing_bar_phrase, with_article, Attributes,
};

/// Chance that the visible parts are listed in a shuffled order.
const SHUFFLE_PROBABILITY: f64 = 0.5;
/// Chance that a day caption of an unnamed bird mentions its body colour.
const BODY_COLOUR_PROBABILITY: f64 = 0.5;
/// A caption says the bird is partly hidden when at least this fraction of it is occluded.
const HIDDEN_MENTION: f32 = 0.15;
/// A caption says the bird is partly out of frame when less than this fraction is inside.
const OUT_OF_FRAME_MENTION: f32 = 0.8;

/// The caption of a frame showing a bird of species `attrs`; `name` (with spaces) is used as the
/// subject when given.
pub fn bird_caption<R: Rng>(
    rng: &mut R,
    attrs: &Attributes,
    view: &BirdView,
    night: bool,
    name: Option<&str>,
) -> String {
    let mut parts = visible_phrases(attrs, view, night);
    if chance(rng, SHUFFLE_PROBABILITY) {
        shuffle(rng, &mut parts);
    }
    let coloured = chance(rng, BODY_COLOUR_PROBABILITY);
    let subject = match name {
        Some(n) => with_article(n),
        None if coloured && !night => format!("a {} bird", view.body.word()),
        None => "a bird".to_owned(),
    };
    let pose = if view.flying {
        "in flight"
    } else {
        "perched on a branch"
    };
    let template = index(rng, TEMPLATES);
    let mut caption = if parts.is_empty() {
        format!("{subject} {pose}, mostly hidden.")
    } else {
        fill_template(template, &subject, pose, &join_words(&parts), night)
    };
    if view.occluded >= HIDDEN_MENTION {
        let by = if view.occluder_is_branch {
            "a branch"
        } else {
            "leaves"
        };
        caption.push_str(&format!(" it is partly hidden by {by}."));
    }
    if view.in_frame < OUT_OF_FRAME_MENTION {
        caption.push_str(" part of it is out of the frame.");
    }
    caption
}

/// Number of templates of each kind.
const TEMPLATES: usize = 4;

fn fill_template(template: usize, subject: &str, pose: &str, parts: &str, night: bool) -> String {
    match (night, template) {
        (false, 0) => format!("a photo of {subject} with {parts}."),
        (false, 1) => format!("{subject} {pose}, with {parts}."),
        (false, 2) => format!("{subject} {pose}. it has {parts}."),
        (false, _) => format!("a camera trap photo of {subject} with {parts}."),
        (true, 0) => format!("an infrared night photo of {subject} with {parts}."),
        (true, 1) => format!("a grey night image of {subject} {pose}, with {parts}."),
        (true, 2) => format!("{subject} at night, {pose}. it has {parts}."),
        (true, _) => format!("a night camera trap photo of {subject} with {parts}."),
    }
}

/// Phrases for the visible parts, in canonical order; colours only by day.
fn visible_phrases(a: &Attributes, view: &BirdView, night: bool) -> Vec<String> {
    let colour = !night;
    let mut out = Vec::new();
    if view.is_visible(Part::Beak) {
        out.push(beak_phrase(a, colour));
    }
    match crest_phrase(a, colour) {
        Some(p) if view.is_visible(Part::Crest) => out.push(p),
        None if view.is_visible(Part::Head) => out.push("no crest".to_owned()),
        _ => {}
    }
    match wing_bar_phrase(a, colour) {
        Some(p) if view.is_visible(Part::WingBar) => out.push(p),
        None if view.is_visible(Part::Wing) => out.push("no wing bars".to_owned()),
        _ => {}
    }
    if view.is_visible(Part::Tail) {
        out.push(tail_phrase(a));
    }
    if let Some(p) = eye_ring_phrase(a, colour) {
        if view.is_visible(Part::EyeRing) {
            out.push(p);
        }
    }
    if colour && view.is_visible(Part::Legs) {
        out.push(legs_phrase(a));
    }
    out
}

/// The caption of an empty frame, from what its backdrop holds.
pub fn empty_caption<R: Rng>(rng: &mut R, backdrop: &Backdrop, night: bool) -> String {
    let mut things = vec![match backdrop.setting {
        Setting::Sky => "sky".to_owned(),
        Setting::Forest => "forest".to_owned(),
    }];
    let counted = |n: usize, one: &str, many: &str| match n {
        0 => None,
        1 => Some(format!("a {one}")),
        _ => Some(many.to_owned()),
    };
    things.extend(counted(backdrop.branches, "branch", "branches"));
    things.extend(counted(backdrop.leaves, "leaf", "leaves"));
    things.extend(counted(backdrop.rocks, "rock", "rocks"));
    let things = join_words(&things);
    match (night, index(rng, 3)) {
        (false, 0) => format!("an empty frame of {things}."),
        (false, 1) => format!("no bird, only {things}."),
        (false, _) => format!("an empty camera trap photo of {things}."),
        (true, 0) => format!("an empty night frame of {things}."),
        (true, 1) => format!("an infrared night photo of {things}, no bird."),
        (true, _) => format!("no bird at night, only {things}."),
    }
}
