//! From logits to probabilities and the top-k classes.

/// Softmax of one row of logits, computed stably (the maximum is subtracted first).
/// Non-finite logits give non-finite probabilities rather than a silent guess.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits
        .iter()
        .map(|&z| (f64::from(z) - f64::from(max)).exp())
        .collect();
    let total: f64 = exps.iter().sum();
    exps.iter().map(|&e| (e / total) as f32).collect()
}

/// One entry of a top-k list: a class index and its score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ranked {
    /// Index into the class list (logit order).
    pub class: usize,
    /// The score at that index (a probability or a logit, as given).
    pub score: f32,
}

/// The `k` highest scores, best first; ties keep the lower class index first. `k` larger
/// than the number of scores returns them all. NaN ranks below every number.
pub fn top_k(scores: &[f32], k: usize) -> Vec<Ranked> {
    let mut ranked: Vec<Ranked> = scores
        .iter()
        .enumerate()
        .map(|(class, &score)| Ranked { class, score })
        .collect();
    ranked.sort_by(|a, b| {
        let key = |r: &Ranked| {
            if r.score.is_nan() {
                f32::NEG_INFINITY
            } else {
                r.score
            }
        };
        key(b).total_cmp(&key(a)).then(a.class.cmp(&b.class))
    });
    ranked.truncate(k);
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_ignores_a_shift() {
        let p = softmax(&[1.0, 2.0, 3.0]);
        let q = softmax(&[1001.0, 1002.0, 1003.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        for (a, b) in p.iter().zip(&q) {
            assert!((a - b).abs() < 1e-6, "{p:?} vs {q:?}");
        }
        // e^1 / (e^1 + e^2 + e^3)
        assert!((p[0] - 0.090_030_57).abs() < 1e-6);
    }

    #[test]
    fn top_k_orders_best_first_with_stable_ties() {
        let ranked = top_k(&[0.1, 0.5, 0.5, f32::NAN, 0.3], 3);
        let classes: Vec<usize> = ranked.iter().map(|r| r.class).collect();
        assert_eq!(classes, vec![1, 2, 4]);
        assert_eq!(top_k(&[0.2, 0.1], 10).len(), 2);
        assert!(top_k(&[0.2], 0).is_empty());
    }
}
