//! From logits to probabilities (the order of classes is [`crate::ranking`]'s).

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
}
