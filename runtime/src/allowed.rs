//! Which classes may be answered at a site, as SpeciesNet's geofence does: a deployment lists
//! the species that occur there (allow) or those that do not (exclude); the others get
//! probability 0 and the remaining probabilities are renormalised, before ranking and before the
//! decision. The bundle's blank class is always allowed (a frame without an animal must stay
//! answerable). [`crate::classifier::Classifier`] applies it in the one frame path, so `classify`
//! and the field loop answer the same way.
//!
//! A species is named by its label, scientific name or common name, in any case; a name the
//! bundle does not have is an error that lists what it has, never a silent no-op.

use crate::bundle::manifest::ClassInfo;

/// A site's list of species.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpeciesList {
    /// Only these (and blank) may be answered.
    Allow(Vec<String>),
    /// All but these may be answered.
    Exclude(Vec<String>),
}

/// Why a species list does not fit a bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowedError {
    /// A name that is no class of the bundle.
    #[error(
        "species {name:?} is not a class of this bundle; expected one of its labels, scientific \
         or common names: {known}"
    )]
    UnknownSpecies {
        /// The name given.
        name: String,
        /// The bundle's labels, comma-separated.
        known: String,
    },
    /// The list would leave no species (blank aside) to answer.
    #[error("the species list leaves no species of this bundle to answer (blank aside)")]
    NothingAllowed,
}

/// Per class of a bundle (logit order), whether it may be answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedClasses {
    allowed: Vec<bool>,
}

impl AllowedClasses {
    /// Every one of `classes` classes.
    pub fn all(classes: usize) -> Self {
        Self {
            allowed: vec![true; classes],
        }
    }

    /// The classes `list` allows among `classes`; `blank` (the bundle's no-animal label) always.
    pub fn new(
        classes: &[ClassInfo],
        list: &SpeciesList,
        blank: &str,
    ) -> Result<Self, AllowedError> {
        let (names, listed_means_allowed) = match list {
            SpeciesList::Allow(names) => (names, true),
            SpeciesList::Exclude(names) => (names, false),
        };
        let mut listed = vec![false; classes.len()];
        for name in names {
            let class = classes
                .iter()
                .position(|c| names_class(name, c))
                .ok_or_else(|| AllowedError::UnknownSpecies {
                    name: name.clone(),
                    known: classes
                        .iter()
                        .map(|c| c.label.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            listed[class] = true;
        }
        let allowed: Vec<bool> = classes
            .iter()
            .zip(listed)
            .map(|(c, listed)| c.label == blank || listed == listed_means_allowed)
            .collect();
        let species = classes
            .iter()
            .zip(&allowed)
            .any(|(c, &a)| a && c.label != blank);
        match species {
            true => Ok(Self { allowed }),
            false => Err(AllowedError::NothingAllowed),
        }
    }

    /// Whether class `class` may be answered.
    pub fn allows(&self, class: usize) -> bool {
        self.allowed.get(class).copied().unwrap_or(false)
    }

    /// Whether every class may be answered.
    pub fn is_all(&self) -> bool {
        self.allowed.iter().all(|&a| a)
    }

    /// `logits` with every class not allowed at −∞: its softmax probability is exactly 0, the
    /// others renormalised, and the ranking puts it last.
    pub fn restrict(&self, logits: &[f32]) -> Vec<f32> {
        logits
            .iter()
            .enumerate()
            .map(|(class, &z)| match self.allows(class) {
                true => z,
                false => f32::NEG_INFINITY,
            })
            .collect()
    }
}

/// Whether `name` is `class`'s label, scientific or common name (any case).
fn names_class(name: &str, class: &ClassInfo) -> bool {
    let name = name.trim();
    [
        Some(&class.label),
        class.scientific_name.as_ref(),
        class.common_name.as_ref(),
    ]
    .into_iter()
    .flatten()
    .any(|n| n.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> Vec<ClassInfo> {
        let class = |label: &str, scientific: Option<&str>| ClassInfo {
            label: label.into(),
            common_name: Some(label.replace('_', " ")),
            scientific_name: scientific.map(str::to_string),
            taxonomy: None,
        };
        vec![
            class("bartail_finch", Some("Fringilla caudata")),
            class("blank", None),
            class("greybill_chat", None),
            class("redcap_wren", None),
        ]
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_allow_list_keeps_its_species_and_blank() {
        let allowed = AllowedClasses::new(
            &classes(),
            &SpeciesList::Allow(names(&["Fringilla caudata", "Redcap Wren"])),
            "blank",
        )
        .unwrap();
        let kept: Vec<bool> = (0..4).map(|c| allowed.allows(c)).collect();
        assert_eq!(kept, [true, true, false, true]);
        assert!(!allowed.is_all() && !allowed.allows(9));
    }

    #[test]
    fn an_exclude_list_removes_its_species_but_never_blank() {
        let allowed = AllowedClasses::new(
            &classes(),
            &SpeciesList::Exclude(names(&["greybill_chat", "blank"])),
            "blank",
        )
        .unwrap();
        let kept: Vec<bool> = (0..4).map(|c| allowed.allows(c)).collect();
        assert_eq!(kept, [true, true, false, true]);
        let restricted = allowed.restrict(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(restricted, [1.0, 2.0, f32::NEG_INFINITY, 4.0]);
    }

    #[test]
    fn names_the_bundle_lacks_and_empty_results_are_errors() {
        let err = AllowedClasses::new(&classes(), &SpeciesList::Allow(names(&["kiwi"])), "blank")
            .unwrap_err();
        assert!(err.to_string().contains("\"kiwi\" is not a class"), "{err}");
        assert!(err.to_string().contains("redcap_wren"), "{err}");
        let everything = names(&["bartail_finch", "greybill_chat", "redcap_wren"]);
        assert_eq!(
            AllowedClasses::new(&classes(), &SpeciesList::Exclude(everything), "blank"),
            Err(AllowedError::NothingAllowed)
        );
        assert_eq!(
            AllowedClasses::new(&classes(), &SpeciesList::Allow(names(&["blank"])), "blank"),
            Err(AllowedError::NothingAllowed)
        );
    }
}
