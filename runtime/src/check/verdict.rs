//! Whether the device passes: the measured figures against the reference figures the export
//! wrote into the manifest, under tolerances the user can set.
//!
//! - Golden parity: the largest |logit − recorded fp32 logit| on the golden images must stay
//!   within `max_golden_delta`. Its default follows the precision: fp32 must match the training
//!   crate to 1e-4 (the parity standard); int8 may differ as much as the export measured on its
//!   whole evaluation set, with a margin (twice the manifest's `int8_max_abs_logit_diff`, at
//!   least 0.05); f16 by 0.05.
//! - Accuracy on a labelled set: top-1 must not fall more than `max_top1_drop` below the
//!   manifest's top-1 for the precision (`int8_top1`, else `fp32_top1`), and not below
//!   `min_top1` when that is given.
//! - Unknown species (a bundle with `[open_world]`): the share of the set's known-species
//!   images not answered `unknown` must not fall more than `max_recall_drop` below the
//!   manifest's `open_world.recall` (measured at export, at fp32).

use serde::Serialize;

use super::measure::{Accuracy, GoldenParity};
use crate::bundle::manifest::Manifest;
use crate::engine::Precision;

/// Golden tolerance at fp32: the parity standard between the training crate and tract.
pub const FP32_GOLDEN_TOLERANCE: f64 = 1e-4;
/// Golden tolerance at f16, and the least one at int8.
pub const REDUCED_GOLDEN_TOLERANCE: f64 = 0.05;
/// Default largest top-1 drop (absolute, 0 to 1) from the manifest's figure.
pub const DEFAULT_MAX_TOP1_DROP: f64 = 0.05;
/// Default largest drop of the known-species recall (absolute, 0 to 1) from the manifest's
/// `open_world.recall`: the same allowance as top-1, for a figure of the same kind (a share
/// of a labelled set, with its sampling noise).
pub const DEFAULT_MAX_RECALL_DROP: f64 = 0.05;

/// Tolerances; `None` takes the default for the precision.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tolerances {
    /// Largest golden |Δlogit| allowed.
    pub max_golden_delta: Option<f64>,
    /// Largest top-1 drop from the manifest's figure (absolute fraction).
    pub max_top1_drop: Option<f64>,
    /// Least top-1 on the labelled set, whatever the manifest says.
    pub min_top1: Option<f64>,
    /// Largest known-species recall drop from the manifest's figure (absolute fraction).
    pub max_recall_drop: Option<f64>,
}

/// A figure outside its tolerance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regression {
    /// The figure, as named in the report (e.g. `golden.max_abs_logit_diff`).
    pub figure: String,
    /// What was measured.
    pub measured: f64,
    /// The limit it broke.
    pub limit: f64,
    /// One sentence for the operator.
    pub message: String,
}

/// The limits a check was judged by, with where they came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    /// Largest golden |Δlogit|.
    pub max_golden_delta: f64,
    /// The manifest's top-1 for this precision, if it has one.
    pub reference_top1: Option<f64>,
    /// Least labelled-set top-1 accepted (reference − drop, or `min_top1`, the larger).
    pub min_top1: Option<f64>,
    /// The manifest's known-species recall at its open-world threshold, if it has one.
    pub reference_recall: Option<f64>,
    /// Least known-species recall accepted (reference − drop).
    pub min_recall: Option<f64>,
}

/// The limits for `precision` under `tolerances`, from the manifest's figures.
pub fn limits(manifest: &Manifest, precision: Precision, tolerances: &Tolerances) -> Limits {
    let metrics = manifest.metrics.as_ref();
    let default_golden = match precision {
        Precision::Fp32 => FP32_GOLDEN_TOLERANCE,
        Precision::F16 => REDUCED_GOLDEN_TOLERANCE,
        Precision::Int8 => metrics
            .and_then(|m| m.int8_max_abs_logit_diff)
            .map_or(10.0 * REDUCED_GOLDEN_TOLERANCE, |d| 2.0 * d)
            .max(REDUCED_GOLDEN_TOLERANCE),
    };
    let reference_top1 = metrics.map(|m| match precision {
        Precision::Int8 => m.int8_top1.unwrap_or(m.fp32_top1),
        Precision::Fp32 | Precision::F16 => m.fp32_top1,
    });
    let drop = tolerances.max_top1_drop.unwrap_or(DEFAULT_MAX_TOP1_DROP);
    let from_reference = reference_top1.map(|r| r - drop);
    let min_top1 = match (from_reference, tolerances.min_top1) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let reference_recall = manifest.open_world.as_ref().map(|o| o.recall);
    let recall_drop = tolerances
        .max_recall_drop
        .unwrap_or(DEFAULT_MAX_RECALL_DROP);
    Limits {
        max_golden_delta: tolerances.max_golden_delta.unwrap_or(default_golden),
        reference_top1,
        min_top1,
        reference_recall,
        min_recall: reference_recall.map(|r| r - recall_drop),
    }
}

/// The regressions of the measured figures under `limits`; empty when the device passes.
pub fn judge(
    limits: &Limits,
    golden: &GoldenParity,
    labelled: Option<&Accuracy>,
) -> Vec<Regression> {
    let mut regressions = Vec::new();
    if golden.max_abs_logit_diff > limits.max_golden_delta {
        regressions.push(Regression {
            figure: "golden.max_abs_logit_diff".into(),
            measured: golden.max_abs_logit_diff,
            limit: limits.max_golden_delta,
            message: format!(
                "the golden images' logits differ from the recorded fp32 logits by up to {:.6}, \
                 {:.6} more than the {:.6} allowed: the image model on this device does not \
                 compute what was exported",
                golden.max_abs_logit_diff,
                golden.max_abs_logit_diff - limits.max_golden_delta,
                limits.max_golden_delta
            ),
        });
    }
    if let (Some(accuracy), Some(min_top1)) = (labelled, limits.min_top1) {
        if accuracy.top1 < min_top1 {
            regressions.push(Regression {
                figure: "labelled.top1".into(),
                measured: accuracy.top1,
                limit: min_top1,
                message: format!(
                    "top-1 on the labelled set is {:.2} %, {:.2} points below the {:.2} % \
                     accepted{}",
                    100.0 * accuracy.top1,
                    100.0 * (min_top1 - accuracy.top1),
                    100.0 * min_top1,
                    limits
                        .reference_top1
                        .map(|r| format!(" (the manifest's reference is {:.2} %)", 100.0 * r))
                        .unwrap_or_default()
                ),
            });
        }
    }
    let recall = labelled.and_then(|a| a.known_recall.as_ref());
    if let (Some(recall), Some(min_recall)) = (recall, limits.min_recall) {
        if recall.recall < min_recall {
            regressions.push(Regression {
                figure: "labelled.known_recall".into(),
                measured: recall.recall,
                limit: min_recall,
                message: format!(
                    "{:.2} % of the labelled set's {} known-species images are kept (not \
                     answered unknown), {:.2} points below the {:.2} % accepted (the manifest's \
                     figure is {:.2} %): this device rejects known species more often than the \
                     export measured",
                    100.0 * recall.recall,
                    recall.images,
                    100.0 * (min_recall - recall.recall),
                    100.0 * min_recall,
                    100.0 * limits.reference_recall.unwrap_or(min_recall)
                ),
            });
        }
    }
    regressions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::measure::{KnownRecall, Latency};

    fn golden(diff: f64) -> GoldenParity {
        GoldenParity {
            images: 8,
            max_abs_logit_diff: diff,
            top1_agreement: 1.0,
        }
    }

    fn accuracy(top1: f64) -> Accuracy {
        Accuracy {
            images: 10,
            top1,
            top5: 1.0,
            per_class: Vec::new(),
            worst: Vec::new(),
            known_recall: None,
            failures: Vec::new(),
            latency_ms: Latency {
                median: 1.0,
                p90: 1.0,
                max: 1.0,
            },
        }
    }

    fn limits(golden: f64, min_top1: Option<f64>) -> Limits {
        Limits {
            max_golden_delta: golden,
            reference_top1: Some(0.8),
            min_top1,
            reference_recall: None,
            min_recall: None,
        }
    }

    #[test]
    fn within_tolerance_passes() {
        let l = limits(0.3, Some(0.75));
        assert!(judge(&l, &golden(0.29), Some(&accuracy(0.75))).is_empty());
        assert!(judge(&l, &golden(0.29), None).is_empty());
    }

    #[test]
    fn each_figure_out_of_tolerance_is_named_with_how_far() {
        let l = limits(0.3, Some(0.75));
        let r = judge(&l, &golden(1.3), Some(&accuracy(0.5)));
        let figures: Vec<&str> = r.iter().map(|r| r.figure.as_str()).collect();
        assert_eq!(figures, ["golden.max_abs_logit_diff", "labelled.top1"]);
        assert!(
            r[0].message.contains("1.000000 more than"),
            "{}",
            r[0].message
        );
        assert!(
            r[1].message.contains("25.00 points below"),
            "{}",
            r[1].message
        );
        assert!(r[1].message.contains("80.00 %"), "{}", r[1].message);
    }

    #[test]
    fn a_known_species_recall_below_the_manifests_less_the_drop_is_a_regression() {
        let with_recall = |recall| Accuracy {
            known_recall: Some(KnownRecall { images: 96, recall }),
            ..accuracy(0.9)
        };
        let l = Limits {
            reference_recall: Some(0.96),
            min_recall: Some(0.91),
            ..limits(1.0, None)
        };
        assert!(judge(&l, &golden(0.0), Some(&with_recall(0.91))).is_empty());
        let r = judge(&l, &golden(0.0), Some(&with_recall(0.85)));
        let figures: Vec<&str> = r.iter().map(|r| r.figure.as_str()).collect();
        assert_eq!(figures, ["labelled.known_recall"]);
        assert!(
            r[0].message.contains("6.00 points below"),
            "{}",
            r[0].message
        );
        assert!(r[0].message.contains("96.00 %"), "{}", r[0].message);
        // Without a reference (a bundle without [open_world]) there is nothing to judge.
        assert!(judge(&limits(1.0, None), &golden(0.0), Some(&with_recall(0.1))).is_empty());
    }
}
