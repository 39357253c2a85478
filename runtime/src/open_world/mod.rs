//! The open world: telling a frame of a species the model never saw from a frame of one it
//! knows. A classifier names one of its classes for every frame; the bundle's `[open_world]`
//! section (written at export, `models/BUNDLE.md`) says which score of the frame to trust and
//! below which value the answer is `unknown` instead.
//!
//! - [`ScoreKind`] and [`scores`]: the candidate scores, computed from what the frame path
//!   already has (the logits, the image parts against the cached prompt features) or from the
//!   parts against class prototypes the export stores ([`prototypes`]). Every score is larger
//!   for a frame that looks more like a known class.
//! - [`calibrate`]: the threshold that keeps a target share of known-species frames (the
//!   export's calibration step), and the share it actually keeps.
//! - [`OpenWorldRule`]: the one rule, applied by [`crate::classifier::Classifier`] to every
//!   prediction: a frame is unknown when its score is below the threshold, unless its top class
//!   is the bundle's blank class (a frame of no animal is blank, never an unknown species).
//!
//! A bundle without `[open_world]` (made before it existed) rejects nothing, as before.

pub mod calibrate;
pub mod prototypes;
pub mod scores;

pub use calibrate::{calibrate, Calibration, CalibrationError};
pub use prototypes::{PartPrototypes, PrototypeBuilder, PrototypesError, PROTOTYPES_FILE};
pub use scores::{CandidateScores, PromptMatcher, ScoreKind, Scorer};

use crate::bundle::manifest::Manifest;

/// What the open-world rule says about one frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpenWorldVerdict {
    /// The frame's score of the bundle's [`ScoreKind`] (larger: more like a known class).
    pub score: f32,
    /// Whether the frame is answered `unknown`: its score is below the threshold and its top
    /// class is not the blank class.
    pub unknown: bool,
}

/// The rejection rule of a bundle's `[open_world]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenWorldRule {
    /// The score compared.
    pub kind: ScoreKind,
    /// Scores below it are unknown.
    pub threshold: f64,
    /// Index of the class never rejected (the bundle's no-animal class), if it has one.
    pub blank: Option<usize>,
}

impl OpenWorldRule {
    /// The rule of `manifest`'s `[open_world]`, or `None` when the bundle has none.
    pub fn of(manifest: &Manifest) -> Option<Self> {
        let section = manifest.open_world.as_ref()?;
        let blank = section
            .blank_label
            .as_deref()
            .and_then(|label| manifest.labels().position(|l| l == label));
        Some(Self {
            kind: section.score,
            threshold: section.threshold,
            blank,
        })
    }

    /// Whether a frame whose top class is `best` and whose score is `score` is unknown.
    pub fn is_unknown(&self, score: f32, best: usize) -> bool {
        // NaN compares false: a frame whose score is not a number is rejected too.
        let kept = f64::from(score) >= self.threshold;
        !kept && self.blank != Some(best)
    }

    /// The verdict on a frame.
    pub fn verdict(&self, score: f32, best: usize) -> OpenWorldVerdict {
        OpenWorldVerdict {
            score,
            unknown: self.is_unknown(score, best),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(blank: Option<usize>) -> OpenWorldRule {
        OpenWorldRule {
            kind: ScoreKind::Energy,
            threshold: 2.5,
            blank,
        }
    }

    #[test]
    fn a_score_below_the_threshold_is_unknown_unless_the_top_class_is_blank() {
        let r = rule(Some(1));
        assert!(r.is_unknown(2.499, 0));
        assert!(!r.is_unknown(2.5, 0), "the threshold itself is kept");
        assert!(!r.is_unknown(7.0, 0));
        assert!(!r.is_unknown(-3.0, 1), "a blank frame stays blank");
        assert!(r.is_unknown(f32::NAN, 0));
        assert!(rule(None).is_unknown(-3.0, 1));
        assert_eq!(
            r.verdict(1.0, 2),
            OpenWorldVerdict {
                score: 1.0,
                unknown: true
            }
        );
    }
}
