//! The one ranking rule of the workspace: which class comes first in a row of scores (logits or
//! probabilities). Both crates rank with it: the runtime's predictions, `check`, the export's
//! reference figures and int8 agreement, and the training crate's metrics.
//!
//! The rule: a larger score ranks first; among equal scores the lower class index ranks first;
//! NaN ranks below every number (two NaNs, or a NaN and −∞, again by index). So `argmax` is the
//! first maximum, `top_k` is a stable sort, and `rank_of(row, argmax(row)) == 0`.

use std::cmp::Ordering;

/// One entry of a top-k list: a class index and its score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ranked {
    /// Index into the class list (score order).
    pub class: usize,
    /// The score at that index.
    pub score: f32,
}

/// The score a class ranks by: NaN counts as −∞.
fn key(x: f32) -> f32 {
    if x.is_nan() {
        f32::NEG_INFINITY
    } else {
        x
    }
}

/// How class `a` compares with class `b` in `row`: `Less` when `a` ranks first.
fn order(row: &[f32], a: usize, b: usize) -> Ordering {
    key(row[b]).total_cmp(&key(row[a])).then_with(|| a.cmp(&b))
}

/// The first-ranked class of `row`; 0 for an empty row.
pub fn argmax(row: &[f32]) -> usize {
    (1..row.len()).fold(0, |best, j| {
        if order(row, j, best) == Ordering::Less {
            j
        } else {
            best
        }
    })
}

/// 0-based rank of `class` in `row`: the number of classes ranked before it.
pub fn rank_of(row: &[f32], class: usize) -> usize {
    (0..row.len())
        .filter(|&j| order(row, j, class) == Ordering::Less)
        .count()
}

/// Whether `class` is among the first `k` of `row`.
pub fn in_top_k(row: &[f32], class: usize, k: usize) -> bool {
    rank_of(row, class) < k
}

/// The first `k` classes of `row`, best first; `k` larger than the row returns them all.
pub fn top_k(row: &[f32], k: usize) -> Vec<Ranked> {
    let mut classes: Vec<usize> = (0..row.len()).collect();
    classes.sort_by(|&a, &b| order(row, a, b));
    classes
        .into_iter()
        .take(k)
        .map(|class| Ranked {
            class,
            score: row[class],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_go_to_the_lower_index_and_nan_ranks_last() {
        let row = [0.1, 0.5, 0.5, f32::NAN, 0.3];
        assert_eq!(argmax(&row), 1);
        let classes: Vec<usize> = top_k(&row, 5).iter().map(|r| r.class).collect();
        assert_eq!(classes, [1, 2, 4, 0, 3]);
        for (rank, &class) in classes.iter().enumerate() {
            assert_eq!(rank_of(&row, class), rank);
        }
        assert!(in_top_k(&row, 2, 2));
        assert!(!in_top_k(&row, 4, 2));
    }

    #[test]
    fn nan_and_minus_infinity_tie_and_the_index_decides() {
        let row = [f32::NAN, f32::NEG_INFINITY];
        assert_eq!(argmax(&row), 0);
        assert_eq!(rank_of(&row, 1), 1);
        assert_eq!(argmax(&[f32::NAN, 2.0]), 1);
    }

    #[test]
    fn edge_sizes() {
        assert_eq!(argmax(&[]), 0);
        assert!(top_k(&[0.2], 0).is_empty());
        assert_eq!(top_k(&[0.2, 0.1], 10).len(), 2);
        assert_eq!(top_k(&[0.2, 0.1], 10)[0].score, 0.2);
    }
}
