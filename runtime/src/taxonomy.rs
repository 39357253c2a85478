//! Answers coarser than a species, as SpeciesNet rolls up: each class's taxonomy (the manifest's
//! `[[classes]]` `taxonomy`, any depth from genus to class) and the roll-up rule. When no
//! species reaches its threshold, the probabilities of the species of each genus are summed,
//! and the most probable genus that reaches its threshold is the answer; failing that, the same
//! at family, order and class rank, up to the profile's [`RollUpTo`] ([`best_taxa`] sums,
//! [`roll_up`] picks; `field::decision` applies it to a frame). A class without a taxonomy
//! (blank, or a bundle made before taxonomies) belongs to no group, so an old bundle never
//! rolls up.

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

/// A rank above the species; ordered finest first (`Genus < Family`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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

/// How far a profile lets an answer roll up (`[decision] roll_up_to`): the coarsest rank
/// answered when no species is sure, or `species` for no roll-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RollUpTo {
    /// No roll-up: species, blank or unknown only.
    Species,
    /// Up to the genus.
    Genus,
    /// Up to the family (the default: a family still tells an ecologist what was there;
    /// every bird of a bird model shares its order and class, which tell nothing).
    #[default]
    Family,
    /// Up to the order.
    Order,
    /// Up to the class.
    Class,
}

impl RollUpTo {
    /// The coarsest rank answered, `None` for no roll-up.
    pub fn coarsest(self) -> Option<Rank> {
        match self {
            RollUpTo::Species => None,
            RollUpTo::Genus => Some(Rank::Genus),
            RollUpTo::Family => Some(Rank::Family),
            RollUpTo::Order => Some(Rank::Order),
            RollUpTo::Class => Some(Rank::Class),
        }
    }
}

impl std::str::FromStr for RollUpTo {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "species" => Ok(RollUpTo::Species),
            "genus" => Ok(RollUpTo::Genus),
            "family" => Ok(RollUpTo::Family),
            "order" => Ok(RollUpTo::Order),
            "class" => Ok(RollUpTo::Class),
            _ => Err(format!(
                "expected species, genus, family, order or class; got {s:?}"
            )),
        }
    }
}

/// A taxon above the species with the summed probability of its classes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaxonScore {
    /// Its rank.
    pub rank: Rank,
    /// Its name at that rank.
    pub name: String,
    /// The summed probability of its classes.
    pub probability: f32,
}

/// The most probable taxon at each rank, finest first, given each class's `probabilities` and
/// taxonomy (`None`: the class belongs to no group); at one rank the first in class order wins
/// a tie. A rank no class names is left out, so classes without taxonomies give none.
pub fn best_taxa(probabilities: &[f32], taxonomies: &[Option<&Taxonomy>]) -> Vec<TaxonScore> {
    Rank::ALL
        .into_iter()
        .filter_map(|rank| {
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
            let (name, probability) =
                sums.into_iter()
                    .fold(None::<(&str, f32)>, |best, (n, s)| match best {
                        Some((_, b)) if b >= s => best,
                        _ => Some((n, s)),
                    })?;
            Some(TaxonScore {
                rank,
                name: name.to_string(),
                probability,
            })
        })
        .collect()
}

/// The roll-up rule: the finest of `taxa` (finest first, as [`best_taxa`] gives them) whose
/// summed probability reaches its `threshold`; `None` when none does.
pub fn roll_up(taxa: &[TaxonScore], threshold: impl Fn(&TaxonScore) -> f64) -> Option<&TaxonScore> {
    taxa.iter()
        .find(|taxon| f64::from(taxon.probability) >= threshold(taxon))
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
        let taxa = best_taxa(&[0.2, 0.25, 0.1, 0.15, 0.3], &taxonomies);
        let answer = |threshold: f64| {
            roll_up(&taxa, |_| threshold).map(|t| (t.rank, t.name.as_str(), t.probability))
        };
        let (rank, name, p) = answer(0.4).unwrap();
        assert_eq!((rank, name), (Rank::Genus, "Conizona"));
        assert!((p - 0.45).abs() < 1e-6);
        // No genus reaches 0.5; the family Conirostridae (0.55) does.
        assert_eq!(answer(0.5).unwrap().1, "Conirostridae");
        // Blank's probability never joins a group: the order (and class) of every bird sums to
        // 0.7, which answers at 0.7 but not at 0.75.
        assert_eq!(answer(0.7).unwrap().0, Rank::Order);
        assert_eq!(answer(0.75), None);
        // A threshold per taxon: the genus asks for more, the family answers.
        let strict_genus = roll_up(&taxa, |t| if t.rank == Rank::Genus { 0.9 } else { 0.5 });
        assert_eq!(strict_genus.unwrap().rank, Rank::Family);
    }

    #[test]
    fn the_best_taxon_of_each_rank_is_listed_finest_first() {
        let (a, b) = (
            taxon("Conizona", "Conirostridae"),
            taxon("Conileia", "Conirostridae"),
        );
        let taxa = best_taxa(&[0.1, 0.3, 0.6], &[Some(&a), Some(&b), None]);
        let ranks: Vec<_> = taxa.iter().map(|t| (t.rank, t.name.as_str())).collect();
        assert_eq!(
            ranks,
            [
                (Rank::Genus, "Conileia"),
                (Rank::Family, "Conirostridae"),
                (Rank::Order, "Passeriformes"),
                (Rank::Class, "Aves")
            ]
        );
        // A tie goes to the first in class order.
        let tie = best_taxa(&[0.3, 0.3], &[Some(&a), Some(&b)]);
        assert_eq!(tie[0].name, "Conizona");
    }

    #[test]
    fn classes_without_a_taxonomy_never_roll_up() {
        let none: [Option<&Taxonomy>; 3] = [None, None, None];
        assert!(best_taxa(&[0.5, 0.3, 0.2], &none).is_empty());
        let empty = Taxonomy::default();
        assert!(best_taxa(&[0.5, 0.5], &[Some(&empty), Some(&empty)]).is_empty());
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
