//! Answers coarser than a species, as SpeciesNet rolls up: each class's taxonomy (the manifest's
//! `[[classes]]` `taxonomy`, any depth from genus to class) and the roll-up rule. When no
//! species reaches its threshold, the probabilities of the species of each genus are summed,
//! and the most probable genus that reaches the threshold is the answer; failing that, the same
//! at family, order and class rank. A class without a taxonomy (blank, or a bundle made before
//! taxonomies) belongs to no group, so an old bundle never rolls up.

use serde::{Deserialize, Serialize};

/// A class's ranks above the species; any may be unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taxonomy {
    /// Genus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genus: Option<String>,
    /// Family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// Class (the taxonomic rank, e.g. Aves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
}

/// A rank above the species, finest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rank {
    /// Genus.
    Genus,
    /// Family.
    Family,
    /// Order.
    Order,
    /// Class.
    Class,
}

impl Rank {
    /// Every rank a roll-up tries, finest first.
    pub const ALL: [Rank; 4] = [Rank::Genus, Rank::Family, Rank::Order, Rank::Class];

    /// The name, as Camtrap DP's `taxonRank` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Rank::Genus => "genus",
            Rank::Family => "family",
            Rank::Order => "order",
            Rank::Class => "class",
        }
    }
}

impl Taxonomy {
    /// The name at `rank`, if known.
    pub fn at(&self, rank: Rank) -> Option<&str> {
        match rank {
            Rank::Genus => self.genus.as_deref(),
            Rank::Family => self.family.as_deref(),
            Rank::Order => self.order.as_deref(),
            Rank::Class => self.class.as_deref(),
        }
        .filter(|name| !name.trim().is_empty())
    }
}

/// The answer of a roll-up: a taxon at a rank above the species, and its summed probability.
#[derive(Clone, Debug, PartialEq)]
pub struct RolledUp {
    /// The rank answered at.
    pub rank: Rank,
    /// The taxon's name at that rank.
    pub name: String,
    /// The summed probability of its classes.
    pub probability: f32,
}

/// The finest taxon whose classes' summed `probabilities` reach `threshold`, given each class's
/// taxonomy (`None`: the class belongs to no group); at one rank the most probable taxon, the
/// first in class order on a tie. `None` when no taxon reaches it.
pub fn roll_up(
    probabilities: &[f32],
    taxonomies: &[Option<&Taxonomy>],
    threshold: f32,
) -> Option<RolledUp> {
    Rank::ALL.into_iter().find_map(|rank| {
        let mut sums: Vec<(&str, f32)> = Vec::new();
        for (p, taxonomy) in probabilities.iter().zip(taxonomies) {
            let Some(name) = taxonomy.and_then(|t| t.at(rank)) else {
                continue;
            };
            match sums.iter_mut().find(|(n, _)| *n == name) {
                Some((_, sum)) => *sum += p,
                None => sums.push((name, *p)),
            }
        }
        let best = sums
            .into_iter()
            .fold(None::<(&str, f32)>, |best, (n, s)| match best {
                Some((_, b)) if b >= s => best,
                _ => Some((n, s)),
            })?;
        (best.1 >= threshold).then(|| RolledUp {
            rank,
            name: best.0.to_string(),
            probability: best.1,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taxon(genus: &str, family: &str) -> Taxonomy {
        Taxonomy {
            genus: Some(genus.into()),
            family: Some(family.into()),
            order: Some("Passeriformes".into()),
            class: Some("Aves".into()),
        }
    }

    #[test]
    fn the_finest_rank_whose_sum_reaches_the_threshold_answers() {
        let (a, b, c) = (
            taxon("Conizona", "Conirostridae"),
            taxon("Conileia", "Conirostridae"),
            taxon("Uncizona", "Uncirostridae"),
        );
        // Classes: two Conizona, one Conileia, one Uncizona, blank (no taxonomy).
        let taxonomies = [Some(&a), Some(&a), Some(&b), Some(&c), None];
        let genus = roll_up(&[0.2, 0.25, 0.1, 0.15, 0.3], &taxonomies, 0.4).unwrap();
        assert_eq!((genus.rank, genus.name.as_str()), (Rank::Genus, "Conizona"));
        assert!((genus.probability - 0.45).abs() < 1e-6);
        // No genus reaches 0.5; the family Conirostridae (0.55) does.
        let family = roll_up(&[0.2, 0.25, 0.1, 0.15, 0.3], &taxonomies, 0.5).unwrap();
        assert_eq!(
            (family.rank, family.name.as_str()),
            (Rank::Family, "Conirostridae")
        );
        // Blank's probability never joins a group: the order (and class) of every bird sums to
        // 0.7, which answers at 0.7 but not at 0.75.
        let order = roll_up(&[0.2, 0.25, 0.1, 0.15, 0.3], &taxonomies, 0.7).unwrap();
        assert_eq!(
            (order.rank, order.name.as_str()),
            (Rank::Order, "Passeriformes")
        );
        assert_eq!(
            roll_up(&[0.2, 0.25, 0.1, 0.15, 0.3], &taxonomies, 0.75),
            None
        );
    }

    #[test]
    fn classes_without_a_taxonomy_never_roll_up() {
        let none: [Option<&Taxonomy>; 3] = [None, None, None];
        assert_eq!(roll_up(&[0.5, 0.3, 0.2], &none, 0.1), None);
        let empty = Taxonomy::default();
        assert_eq!(
            roll_up(&[0.5, 0.5], &[Some(&empty), Some(&empty)], 0.1),
            None
        );
    }

    #[test]
    fn a_taxonomy_reads_and_writes_as_a_toml_table() {
        let t: Taxonomy =
            toml::from_str("genus = \"Conizona\"\nfamily = \"Conirostridae\"\n").unwrap();
        assert_eq!(t.at(Rank::Genus), Some("Conizona"));
        assert_eq!(t.at(Rank::Order), None);
        assert!(toml::from_str::<Taxonomy>("tribe = \"x\"\n").is_err());
    }
}
