//! Caption clause dropout, a text augmentation: each clause of a caption (the pieces between
//! `,`, `.` and ` and `) is dropped with some probability, keeping at least one.
//!
//! Why: a synth caption mixes the species' parts ("a grey conical beak, no wing bars") with
//! details of that one photo ("a rust bird", "perched on a branch", "at night", "partly hidden
//! by leaves"). The photo details are large and easy to see, so a small CLIP can match every
//! caption of a batch from them alone and never needs the small parts, which are what a
//! species description (the zero-shot class text) is made of. When the photo's clauses are
//! dropped, only the parts are left to match. The kept clauses stay in their order.

use rand::Rng;

/// Splits a caption into clauses (trimmed, non-empty, in order).
pub fn clauses(caption: &str) -> Vec<&str> {
    caption
        .split([',', '.'])
        .flat_map(|c| c.split(" and "))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

/// `caption` with each clause dropped with probability `p` (at least one kept), rejoined as
/// `clause, clause, clause.`; the caption itself when `p` is 0 or it has a single clause.
pub fn drop_clauses(caption: &str, p: f64, rng: &mut impl Rng) -> String {
    let parts = clauses(caption);
    if p <= 0.0 || parts.len() < 2 {
        return caption.to_string();
    }
    let mut kept: Vec<&str> = parts
        .iter()
        .copied()
        .filter(|_| rng.random::<f64>() >= p)
        .collect();
    if kept.is_empty() {
        kept.push(parts[rng.random_range(0..parts.len())]);
    }
    format!("{}.", kept.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const CAPTION: &str = "a rust bird with a grey beak, no crest and orange legs. it is at night.";

    #[test]
    fn clauses_split_on_commas_stops_and_and() {
        assert_eq!(
            clauses(CAPTION),
            [
                "a rust bird with a grey beak",
                "no crest",
                "orange legs",
                "it is at night"
            ]
        );
    }

    #[test]
    fn dropout_keeps_order_and_at_least_one_clause() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert_eq!(drop_clauses(CAPTION, 0.0, &mut rng), CAPTION);
        for _ in 0..50 {
            let out = drop_clauses(CAPTION, 0.5, &mut rng);
            let kept = clauses(&out);
            assert!(!kept.is_empty());
            let positions: Vec<usize> = kept
                .iter()
                .map(|k| clauses(CAPTION).iter().position(|c| c == k).unwrap())
                .collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "{out}");
        }
        assert_eq!(clauses(&drop_clauses(CAPTION, 1.0, &mut rng)).len(), 1);
    }
}
