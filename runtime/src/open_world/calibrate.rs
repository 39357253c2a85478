//! The export's calibration step: the threshold that keeps a target share (the recall) of
//! known-species frames, from their scores.
//!
//! The threshold is the largest value `t` such that at least `target_recall` of the scores are
//! `>= t`: with the n scores sorted ascending and `r = ⌊(1 − target)·n⌋` of them allowed
//! below, `t` is the (r+1)-th smallest. Ties at `t` are all kept, so the recall reached can be
//! above the target, never below. A NaN score counts as −∞ (the rule rejects it). The caller
//! passes +∞ for a frame the rule never rejects (its top class is blank), so the recall
//! returned is the rule's own.

/// A threshold and the recall it gives on the scores it was computed from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calibration {
    /// Scores below it are rejected.
    pub threshold: f64,
    /// The share of the scores at or above the threshold.
    pub recall: f64,
    /// How many scores.
    pub images: usize,
}

/// Why no threshold could be computed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CalibrationError {
    /// No scores.
    #[error("no known-species images to calibrate the open-world threshold on")]
    Empty,
    /// A target outside (0, 1].
    #[error("target recall must be in (0, 1], got {0}")]
    TargetRecall(f64),
    /// The threshold would be infinite (too many scores are not numbers, or too many frames
    /// are never rejected).
    #[error(
        "the open-world threshold for a recall of {target} would be {threshold}: too many \
         scores are not finite"
    )]
    NotFinite {
        /// The target recall.
        target: f64,
        /// The threshold found.
        threshold: f32,
    },
}

/// The threshold keeping at least `target_recall` of `scores` (see the module documentation).
pub fn calibrate(scores: &[f32], target_recall: f64) -> Result<Calibration, CalibrationError> {
    if !(target_recall > 0.0 && target_recall <= 1.0) {
        return Err(CalibrationError::TargetRecall(target_recall));
    }
    if scores.is_empty() {
        return Err(CalibrationError::Empty);
    }
    let key = |s: f32| if s.is_nan() { f32::NEG_INFINITY } else { s };
    let mut sorted: Vec<f32> = scores.iter().map(|&s| key(s)).collect();
    sorted.sort_by(f32::total_cmp);
    let n = sorted.len();
    // The small slack keeps (1 − 0.9)·10 = 0.9999… from losing a whole frame to rounding.
    let below = (((1.0 - target_recall) * n as f64) + 1e-9).floor() as usize;
    let threshold = sorted[below.min(n - 1)];
    if !threshold.is_finite() {
        return Err(CalibrationError::NotFinite {
            target: target_recall,
            threshold,
        });
    }
    let kept = sorted.iter().filter(|&&s| s >= threshold).count();
    Ok(Calibration {
        threshold: f64::from(threshold),
        recall: kept as f64 / n as f64,
        images: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_keeps_the_target_share_and_no_more_than_it_must() {
        // 20 scores 1..=20 in a scrambled order: 95 % keeps 19, so the threshold is 2.
        let scores: Vec<f32> = (1..=20).map(|i| ((i * 7) % 20 + 1) as f32).collect();
        let c = calibrate(&scores, 0.95).unwrap();
        assert_eq!((c.threshold, c.recall, c.images), (2.0, 0.95, 20));
        // 90 % of 10: one below, (1 − 0.9)·10 is 0.999… in floating point.
        let ten: Vec<f32> = (1..=10).map(|i| i as f32).collect();
        assert_eq!(calibrate(&ten, 0.9).unwrap().threshold, 2.0);
        // A target between counts rounds towards keeping more: 93 % of 10 keeps all 10.
        let c = calibrate(&ten, 0.93).unwrap();
        assert_eq!((c.threshold, c.recall), (1.0, 1.0));
        assert_eq!(calibrate(&ten, 1.0).unwrap().threshold, 1.0);
        // The target is met on every size.
        for n in 1..60 {
            let scores: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            for target in [0.5, 0.8, 0.95, 0.99] {
                let c = calibrate(&scores, target).unwrap();
                assert!(c.recall >= target, "n {n} target {target}: {c:?}");
                let above = scores
                    .iter()
                    .filter(|&&s| f64::from(s) > c.threshold)
                    .count();
                assert!(
                    (above as f64) < target * n as f64,
                    "a larger threshold would also have met the target: n {n} {c:?}"
                );
            }
        }
    }

    #[test]
    fn ties_are_kept_together_and_nan_counts_as_rejected() {
        let c = calibrate(&[1.0, 3.0, 3.0, 3.0], 0.5).unwrap();
        assert_eq!((c.threshold, c.recall), (3.0, 0.75));
        let c = calibrate(&[f32::NAN, 2.0, 4.0, f32::INFINITY], 0.75).unwrap();
        assert_eq!((c.threshold, c.recall), (2.0, 0.75));
    }

    #[test]
    fn refusals_name_the_problem() {
        assert_eq!(calibrate(&[], 0.95), Err(CalibrationError::Empty));
        for bad in [0.0, 1.5, f64::NAN] {
            assert!(matches!(
                calibrate(&[1.0], bad),
                Err(CalibrationError::TargetRecall(_))
            ));
        }
        let err = calibrate(&[f32::NAN, f32::NAN, 1.0], 0.5).unwrap_err();
        assert!(err.to_string().contains("not finite"), "{err}");
    }
}
