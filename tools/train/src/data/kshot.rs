//! Seeded k-shot sampling: k training images per class, drawn reproducibly.
//!
//! The reference recipe (`xrvlm-method.md` §6) draws 16 shots per class from the official train
//! split without a seed; we always seed. Class `c` draws from its own ChaCha8 stream
//! (`ChaCha8Rng::seed_from_u64(seed)` with `set_stream(c)`), so the shots of a class depend only
//! on the seed, the class index and that class's samples in dataset order: not on other classes,
//! nor on the order samples are visited in memory.
//!
//! The draw is a partial Fisher–Yates shuffle of the class's sample indices; the chosen samples
//! are then put back in dataset order, class by class.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::dataset::Dataset;

/// The result of [`k_shot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KShot {
    /// The chosen samples: up to k per class, grouped by label, in dataset order within a class.
    pub train: Dataset,
    /// Every sample not chosen, in dataset order; a held-out set when there is no test split.
    pub rest: Dataset,
    /// Classes with fewer than k samples, all of which were taken: `(class name, available)`.
    pub short_classes: Vec<(String, usize)>,
}

/// Draws `k` samples per class with `seed`. A class with fewer than `k` samples gives all of them
/// and is listed in [`KShot::short_classes`]. Datasets are named `"<name>/<k>-shot-seed<seed>"`
/// and `"<name>/rest"`.
pub fn k_shot(ds: &Dataset, k: usize, seed: u64) -> KShot {
    let by_class = indices_by_class(ds);
    let mut chosen = vec![false; ds.samples.len()];
    let mut train_indices = Vec::new();
    let mut short_classes = Vec::new();
    for (class, members) in by_class.iter().enumerate() {
        if members.len() < k {
            short_classes.push((ds.classes[class].clone(), members.len()));
        }
        let mut picked = pick(members, k, seed, class as u64);
        picked.sort_unstable();
        for &i in &picked {
            chosen[i] = true;
        }
        train_indices.extend(picked);
    }
    KShot {
        train: take(
            ds,
            format!("{}/{k}-shot-seed{seed}", ds.name),
            &train_indices,
        ),
        rest: ds.filter(format!("{}/rest", ds.name), |i, _| !chosen[i]),
        short_classes,
    }
}

/// Sample indices of each class, in dataset order. Out-of-range labels are ignored.
fn indices_by_class(ds: &Dataset) -> Vec<Vec<usize>> {
    let mut by_class = vec![Vec::new(); ds.classes.len()];
    for (i, s) in ds.samples.iter().enumerate() {
        if let Some(members) = by_class.get_mut(s.label) {
            members.push(i);
        }
    }
    by_class
}

/// `min(k, members.len())` members drawn without replacement from the class's own stream.
fn pick(members: &[usize], k: usize, seed: u64, class: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(class);
    let mut pool = members.to_vec();
    let take = k.min(pool.len());
    for i in 0..take {
        let j = rng.random_range(i..pool.len());
        pool.swap(i, j);
    }
    pool.truncate(take);
    pool
}

/// The samples of `ds` at `indices` (in range by construction), keeping the classes.
fn take(ds: &Dataset, name: String, indices: &[usize]) -> Dataset {
    Dataset {
        name,
        classes: ds.classes.clone(),
        samples: indices
            .iter()
            .filter_map(|&i| ds.samples.get(i).cloned())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::Sample;
    use std::collections::HashSet;
    use std::path::PathBuf;

    /// `per_class[c]` samples of class c, interleaved across classes.
    fn toy(per_class: &[usize]) -> Dataset {
        let mut samples = Vec::new();
        let max = per_class.iter().copied().max().unwrap_or(0);
        for i in 0..max {
            for (label, &n) in per_class.iter().enumerate() {
                if i < n {
                    samples.push(Sample {
                        path: PathBuf::from(format!("c{label}/{i}.png")),
                        label,
                        region: None,
                    });
                }
            }
        }
        let classes = (0..per_class.len()).map(|c| format!("class{c}")).collect();
        Dataset::new("toy", classes, samples).unwrap()
    }

    #[test]
    fn takes_k_per_class_and_partitions_the_rest() {
        let ds = toy(&[10, 20, 5]);
        let shot = k_shot(&ds, 4, 7);
        assert_eq!(shot.train.class_counts(), vec![4, 4, 4]);
        assert_eq!(shot.rest.class_counts(), vec![6, 16, 1]);
        assert!(shot.short_classes.is_empty());
        let train: HashSet<_> = shot.train.samples.iter().collect();
        let rest: HashSet<_> = shot.rest.samples.iter().collect();
        assert!(train.is_disjoint(&rest));
        assert_eq!(train.len() + rest.len(), ds.len());
        assert_eq!(shot.train.name, "toy/4-shot-seed7");
        assert_eq!(shot.rest.name, "toy/rest");
    }

    #[test]
    fn short_classes_give_everything_and_are_reported() {
        let ds = toy(&[10, 3]);
        let shot = k_shot(&ds, 5, 1);
        assert_eq!(shot.train.class_counts(), vec![5, 3]);
        assert_eq!(shot.short_classes, vec![("class1".to_string(), 3)]);
    }

    #[test]
    fn same_seed_same_shots_other_seed_other_shots() {
        let ds = toy(&[50, 50]);
        assert_eq!(k_shot(&ds, 8, 42), k_shot(&ds, 8, 42));
        assert_ne!(
            k_shot(&ds, 8, 42).train.samples,
            k_shot(&ds, 8, 43).train.samples
        );
    }

    #[test]
    fn shots_of_a_class_do_not_depend_on_other_classes_or_sample_order() {
        let ds = toy(&[30, 30, 30]);
        let shot = k_shot(&ds, 5, 9);

        // Same samples, grouped by class instead of interleaved.
        let mut grouped = ds.clone();
        grouped.samples.sort_by_key(|s| s.label);
        assert_eq!(k_shot(&grouped, 5, 9).train.samples.len(), 15);
        let of = |d: &Dataset, c: usize| -> Vec<PathBuf> {
            d.samples
                .iter()
                .filter(|s| s.label == c)
                .map(|s| s.path.clone())
                .collect()
        };
        for c in 0..3 {
            assert_eq!(of(&shot.train, c), of(&k_shot(&grouped, 5, 9).train, c));
        }

        // Class 0 shots are unchanged when class 2 loses samples.
        let mut fewer = ds.clone();
        let mut dropped = 0;
        fewer.samples.retain(|s| {
            let drop = s.label == 2 && dropped < 10;
            dropped += usize::from(drop);
            !drop
        });
        assert_eq!(of(&shot.train, 0), of(&k_shot(&fewer, 5, 9).train, 0));
    }

    #[test]
    fn train_is_grouped_by_class_in_dataset_order() {
        let ds = toy(&[6, 6]);
        let shot = k_shot(&ds, 3, 0);
        let labels: Vec<_> = shot.train.samples.iter().map(|s| s.label).collect();
        assert_eq!(labels, vec![0, 0, 0, 1, 1, 1]);
    }

    #[test]
    fn zero_shots_put_everything_in_rest() {
        let ds = toy(&[2, 2]);
        let shot = k_shot(&ds, 0, 0);
        assert!(shot.train.is_empty());
        assert_eq!(shot.rest.len(), 4);
    }
}
