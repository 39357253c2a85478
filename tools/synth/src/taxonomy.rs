//! The synthetic world's taxonomy, for answers coarser than a species: species that share a
//! beak shape and a tail pattern form a genus (they share the parts a classifier tells apart
//! first), genera that share a beak shape form a family, and every bird is of one order and
//! class. Names are Latin-styled from the parts (family Conirostridae: conical beaks; genus
//! Conizona: conical beak, barred tail), so that a rolled-up answer reads like a real one.
//!
//! The taxonomy follows from a species' attributes alone: every world has it, and adding it
//! changed no species and no image.

use serde::Serialize;

use super::species::{Attributes, BeakShape, TailPattern};

/// The order of every synthetic bird.
pub const ORDER: &str = "Passeriformes";
/// The class of every synthetic bird.
pub const CLASS: &str = "Aves";

/// A species' ranks above it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Taxonomy {
    /// Species of one beak shape and tail pattern.
    pub genus: String,
    /// Species of one beak shape.
    pub family: String,
    /// [`ORDER`].
    pub order: String,
    /// [`CLASS`].
    pub class: String,
}

impl Taxonomy {
    /// The taxonomy of a species with `attributes`.
    pub fn of(attributes: &Attributes) -> Self {
        let beak = beak_stem(attributes.beak_shape);
        Self {
            genus: format!("{beak}{}", tail_stem(attributes.tail)),
            family: format!("{beak}rostridae"),
            order: ORDER.to_string(),
            class: CLASS.to_string(),
        }
    }
}

/// The Latin stem of a beak shape: conus (cone), uncus (hook), tenuis (thin), brevis (short).
fn beak_stem(beak: BeakShape) -> &'static str {
    match beak {
        BeakShape::Conical => "Coni",
        BeakShape::Hooked => "Unci",
        BeakShape::LongThin => "Tenui",
        BeakShape::ShortStubby => "Brevi",
    }
}

/// The Greek stem of a tail pattern: leios (smooth), zona (band), schiza (split), leuke
/// (white).
fn tail_stem(tail: TailPattern) -> &'static str {
    match tail {
        TailPattern::Plain => "leia",
        TailPattern::Barred => "zona",
        TailPattern::Forked => "schiza",
        TailPattern::WhiteTipped => "leuca",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::species::derive_species;

    #[test]
    fn species_of_a_genus_share_beak_and_tail_and_a_family_shares_the_beak() {
        let species = derive_species(1, 96);
        for a in &species {
            for b in &species {
                let (ta, tb) = (Taxonomy::of(&a.attributes), Taxonomy::of(&b.attributes));
                let same_beak = a.attributes.beak_shape == b.attributes.beak_shape;
                let same_tail = a.attributes.tail == b.attributes.tail;
                assert_eq!(ta.genus == tb.genus, same_beak && same_tail);
                assert_eq!(ta.family == tb.family, same_beak);
                assert_eq!((ta.order.as_str(), ta.class.as_str()), (ORDER, CLASS));
            }
        }
        // World 1's 96 species fill all 16 genera, several species each.
        let genera: std::collections::BTreeSet<String> = species
            .iter()
            .map(|s| Taxonomy::of(&s.attributes).genus)
            .collect();
        assert_eq!(genera.len(), 16);
        assert_eq!(
            Taxonomy::of(&species[0].attributes).family,
            format!("{}rostridae", beak_stem(species[0].attributes.beak_shape))
        );
    }
}
