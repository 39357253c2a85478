//! Which species and images pre-training sees, and which measure it afterwards.
//!
//! - Held-out species (the last K of `species.json`, or named ones) are never seen: none of
//!   their images or captions is a pre-training pair.
//! - Without a separate evaluation directory, the last `per_species` images (in file order) of
//!   every pre-training species are held back to measure zero-shot accuracy on seen species.
//! - Empty frames (`blank`) are pre-training pairs like any other, never evaluation images.

use super::captions::{CaptionRecord, Species, SynthSet};
use super::config::Holdout;
use super::zero_shot::Task;
use super::PretrainError;

/// The species and images of a run.
#[derive(Debug, Clone)]
pub struct Split {
    /// Species pre-trained on, in `species.json` order.
    pub seen: Vec<Species>,
    /// Species never seen, in `species.json` order.
    pub held_out: Vec<Species>,
    /// Pre-training pairs.
    pub train: Vec<CaptionRecord>,
    /// Images of seen species held back for evaluation.
    pub held_back: Vec<CaptionRecord>,
}

/// The held-out species' names, checked against the species list.
pub fn held_out_names(
    species: &[Species],
    holdout: &Holdout,
) -> Result<Vec<String>, PretrainError> {
    let names = match holdout {
        Holdout::Last(k) => {
            if *k >= species.len() {
                return Err(PretrainError::Config(format!(
                    "--holdout {k} leaves no species to pre-train on (there are {})",
                    species.len()
                )));
            }
            species[species.len() - k..]
                .iter()
                .map(|s| s.name.clone())
                .collect()
        }
        Holdout::Named(names) => {
            for n in names {
                if !species.iter().any(|s| &s.name == n) {
                    return Err(PretrainError::Config(format!(
                        "--holdout-species: unknown species {n:?}; known: {}",
                        species
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
            if names.len() >= species.len() {
                return Err(PretrainError::Config(
                    "--holdout-species names every species; none is left to pre-train on".into(),
                ));
            }
            names.clone()
        }
    };
    Ok(names)
}

/// Splits a synth set (see the module doc); `per_species` is 0 when a separate evaluation
/// directory is used.
pub fn split(
    set: &SynthSet,
    holdout: &Holdout,
    per_species: usize,
) -> Result<Split, PretrainError> {
    let names = held_out_names(&set.species, holdout)?;
    let (held_out, seen): (Vec<Species>, Vec<Species>) = set
        .species
        .iter()
        .cloned()
        .partition(|s| names.contains(&s.name));
    let mut train = Vec::new();
    let mut held_back = Vec::new();
    for s in &seen {
        let of_species: Vec<&CaptionRecord> = set
            .records
            .iter()
            .filter(|r| r.species == s.name && r.has_animal())
            .collect();
        let keep = of_species.len().saturating_sub(per_species);
        held_back.extend(of_species[keep..].iter().map(|r| (*r).clone()));
    }
    for r in &set.records {
        let unseen = names.contains(&r.species);
        let kept_back = held_back.iter().any(|h| h.image == r.image);
        if !unseen && !kept_back {
            train.push(r.clone());
        }
    }
    if train.len() < 2 {
        return Err(PretrainError::Config(format!(
            "{}: only {} pre-training pairs after holding species and images out; need at least 2",
            set.root.display(),
            train.len()
        )));
    }
    Ok(Split {
        seen,
        held_out,
        train,
        held_back,
    })
}

/// The images of `records` whose species is one of `classes`, as a zero-shot task (`None` when
/// there is no such image or no class).
pub fn task(
    name: &str,
    set: &SynthSet,
    records: &[CaptionRecord],
    classes: &[Species],
) -> Result<Option<Task>, PretrainError> {
    let mut picked = Vec::new();
    let mut labels = Vec::new();
    for r in records.iter().filter(|r| r.has_animal()) {
        if let Some(label) = classes.iter().position(|c| c.name == r.species) {
            picked.push(r);
            labels.push(label);
        }
    }
    if picked.is_empty() || classes.is_empty() {
        return Ok(None);
    }
    Ok(Some(Task {
        name: name.to_string(),
        classes: classes.to_vec(),
        images: super::pairs::load_images(set, &picked)?,
        labels,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn set() -> SynthSet {
        let species: Vec<Species> = ["a", "b", "c"]
            .iter()
            .map(|n| Species {
                name: n.to_string(),
                description: format!("a {n} bird."),
                attributes: Default::default(),
            })
            .collect();
        let mut records = Vec::new();
        for s in ["a", "b", "c", "blank"] {
            for i in 0..4 {
                records.push(CaptionRecord {
                    image: format!("{s}/{i:05}.png"),
                    caption: format!("{s} {i}"),
                    species: s.into(),
                    night: false,
                    empty: s == "blank",
                });
            }
        }
        SynthSet {
            root: PathBuf::from("/d"),
            records,
            species,
        }
    }

    #[test]
    fn held_out_species_and_held_back_images_are_not_trained_on() {
        let s = split(&set(), &Holdout::Last(1), 1).unwrap();
        assert_eq!(s.held_out.len(), 1);
        assert_eq!(s.held_out[0].name, "c");
        assert!(s.train.iter().all(|r| r.species != "c"));
        assert_eq!(s.held_back.len(), 2);
        assert!(s.held_back.iter().all(|h| !s.train.contains(h)));
        // 2 species × 3 images + 4 blanks.
        assert_eq!(s.train.len(), 10);
        let named = split(&set(), &Holdout::Named(vec!["a".into()]), 0).unwrap();
        assert_eq!(named.held_out[0].name, "a");
        assert_eq!(named.train.len(), 12);
    }

    #[test]
    fn bad_holdouts_are_errors() {
        assert!(split(&set(), &Holdout::Last(3), 0).is_err());
        let err = split(&set(), &Holdout::Named(vec!["zz".into()]), 0).unwrap_err();
        assert!(err.to_string().contains("zz"), "{err}");
    }
}
