//! The colour-histogram baseline: nearest class centroid of global RGB histograms.
//!
//! Each image becomes an L1-normalised 8×8×8 RGB histogram; each class' centroid is the mean
//! histogram of its training images; a test image is given the class whose centroid is nearest by
//! the chi-square distance. It sees how much of each colour an image holds and nothing of where,
//! so on a fine-grained set (species differing only in small parts) it should stay near chance;
//! a model that reaches far above it has learnt parts, not palettes.
//!
//! Unreadable images are skipped and counted, never fatal.

use image::RgbImage;
use serde::Serialize;
use xrvlm_runtime::image_io::load_rgb;

use crate::data::Dataset;

/// Histogram bins per channel.
pub const BINS_PER_CHANNEL: usize = 8;
/// Total histogram bins.
const BINS: usize = BINS_PER_CHANNEL * BINS_PER_CHANNEL * BINS_PER_CHANNEL;
/// Right shift from an 8-bit channel value to its bin (256 / 8 = 32 levels per bin).
const BIN_SHIFT: u32 = 5;

/// Why the baseline could not run.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    /// Train and test have different class lists.
    #[error(
        "{train} and {test} have different classes ({detail}); \
         expected the same class folders in both"
    )]
    ClassMismatch {
        /// Train dataset name.
        train: String,
        /// Test dataset name.
        test: String,
        /// Which classes differ.
        detail: String,
    },
    /// No training image could be read.
    #[error("{dataset}: no readable training image; expected at least one decodable image")]
    NoTrainImages {
        /// Train dataset name.
        dataset: String,
    },
}

/// Accuracy on one test class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassAccuracy {
    /// Class name.
    pub class: String,
    /// Correctly classified readable test images.
    pub correct: usize,
    /// Readable test images.
    pub total: usize,
}

/// The baseline's result on a test set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramReport {
    /// Train dataset name.
    pub train: String,
    /// Test dataset name.
    pub test: String,
    /// Method, in words.
    pub method: String,
    /// Number of classes.
    pub classes: usize,
    /// Readable training images.
    pub train_images: usize,
    /// Readable test images.
    pub test_images: usize,
    /// Unreadable training images (skipped).
    pub skipped_train: usize,
    /// Unreadable test images (skipped).
    pub skipped_test: usize,
    /// Correctly classified test images.
    pub correct: usize,
    /// Top-1 accuracy on the readable test images (0 when there are none).
    pub top1: f64,
    /// Accuracy of always guessing one class, with balanced classes: `1 / classes`.
    pub chance: f64,
    /// Per-class accuracy, in label order.
    pub per_class: Vec<ClassAccuracy>,
}

impl HistogramReport {
    /// A one-paragraph human summary.
    pub fn summary(&self) -> String {
        format!(
            "{}: top-1 {:.4} ({}/{}) on {} with {} classes (chance {:.4}); trained on {} images \
             of {}; skipped unreadable: {} train, {} test",
            self.method,
            self.top1,
            self.correct,
            self.test_images,
            self.test,
            self.classes,
            self.chance,
            self.train_images,
            self.train,
            self.skipped_train,
            self.skipped_test
        )
    }
}

/// The L1-normalised 8×8×8 RGB histogram of an image.
pub fn colour_histogram(img: &RgbImage) -> Vec<f64> {
    let mut h = vec![0.0; BINS];
    for p in img.pixels() {
        let [r, g, b] = p.0.map(|c| usize::from(c >> BIN_SHIFT));
        h[(r * BINS_PER_CHANNEL + g) * BINS_PER_CHANNEL + b] += 1.0;
    }
    let total = (img.width() as f64 * img.height() as f64).max(1.0);
    h.iter_mut().for_each(|v| *v /= total);
    h
}

/// Chi-square distance between two histograms.
pub fn chi_square(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let s = x + y;
            if s > 0.0 {
                (x - y) * (x - y) / s
            } else {
                0.0
            }
        })
        .sum()
}

/// Histograms of a dataset's readable images with their labels, and the unreadable count.
fn histograms(ds: &Dataset) -> (Vec<(Vec<f64>, usize)>, usize) {
    let mut out = Vec::with_capacity(ds.samples.len());
    let mut skipped = 0;
    for s in &ds.samples {
        match load_rgb(&s.path) {
            Ok(img) => out.push((colour_histogram(&img), s.label)),
            Err(_) => skipped += 1,
        }
    }
    (out, skipped)
}

/// Trains the nearest-centroid colour-histogram classifier on `train` and reports its top-1
/// accuracy on `test`. Both must have the same classes.
pub fn histogram_nearest_centroid(
    train: &Dataset,
    test: &Dataset,
) -> Result<HistogramReport, HistogramError> {
    check_classes(train, test)?;
    let k = train.classes.len();
    let (train_h, skipped_train) = histograms(train);
    if train_h.is_empty() {
        return Err(HistogramError::NoTrainImages {
            dataset: train.name.clone(),
        });
    }
    let centroids = centroids(&train_h, k);
    let (test_h, skipped_test) = histograms(test);
    let mut per_class: Vec<ClassAccuracy> = train
        .classes
        .iter()
        .map(|c| ClassAccuracy {
            class: c.clone(),
            correct: 0,
            total: 0,
        })
        .collect();
    for (h, label) in &test_h {
        let predicted = nearest(&centroids, h);
        if let Some(acc) = per_class.get_mut(*label) {
            acc.total += 1;
            acc.correct += usize::from(predicted == Some(*label));
        }
    }
    let correct = per_class.iter().map(|c| c.correct).sum();
    Ok(HistogramReport {
        train: train.name.clone(),
        test: test.name.clone(),
        method: "nearest centroid of 8x8x8 RGB histograms (chi-square)".to_owned(),
        classes: k,
        train_images: train_h.len(),
        test_images: test_h.len(),
        skipped_train,
        skipped_test,
        correct,
        top1: if test_h.is_empty() {
            0.0
        } else {
            correct as f64 / test_h.len() as f64
        },
        chance: 1.0 / k.max(1) as f64,
        per_class,
    })
}

fn check_classes(train: &Dataset, test: &Dataset) -> Result<(), HistogramError> {
    if train.classes == test.classes {
        return Ok(());
    }
    let only = |a: &Dataset, b: &Dataset| -> Vec<String> {
        a.classes
            .iter()
            .filter(|c| !b.classes.contains(c))
            .cloned()
            .collect()
    };
    Err(HistogramError::ClassMismatch {
        train: train.name.clone(),
        test: test.name.clone(),
        detail: format!(
            "only in train: {:?}, only in test: {:?}",
            only(train, test),
            only(test, train)
        ),
    })
}

/// Mean histogram per class; `None` for a class without readable training images.
fn centroids(hists: &[(Vec<f64>, usize)], k: usize) -> Vec<Option<Vec<f64>>> {
    let mut sums = vec![vec![0.0; BINS]; k];
    let mut counts = vec![0usize; k];
    for (h, label) in hists {
        if let (Some(sum), Some(n)) = (sums.get_mut(*label), counts.get_mut(*label)) {
            sum.iter_mut().zip(h).for_each(|(s, v)| *s += v);
            *n += 1;
        }
    }
    sums.into_iter()
        .zip(counts)
        .map(|(mut sum, n)| {
            (n > 0).then(|| {
                sum.iter_mut().for_each(|s| *s /= n as f64);
                sum
            })
        })
        .collect()
}

/// The label of the nearest centroid (lowest label on ties).
fn nearest(centroids: &[Option<Vec<f64>>], h: &[f64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (label, c) in centroids.iter().enumerate() {
        let Some(c) = c else { continue };
        let d = chi_square(h, c);
        if best.is_none_or(|(_, bd)| d < bd) {
            best = Some((label, d));
        }
    }
    best.map(|(label, _)| label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn histogram_is_normalised_and_binned() {
        let mut img = RgbImage::from_pixel(4, 4, Rgb([0, 0, 0]));
        img.put_pixel(0, 0, Rgb([255, 255, 255]));
        let h = colour_histogram(&img);
        assert!((h.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(h[0], 15.0 / 16.0);
        assert_eq!(h[BINS - 1], 1.0 / 16.0);
        assert_eq!(chi_square(&h, &h), 0.0);
    }

    #[test]
    fn nearest_skips_empty_classes() {
        let a = vec![1.0, 0.0];
        let b = vec![0.0, 1.0];
        let cs = vec![None, Some(a.clone()), Some(b.clone())];
        assert_eq!(nearest(&cs, &[0.9, 0.1]), Some(1));
        assert_eq!(nearest(&cs, &[0.1, 0.9]), Some(2));
        assert_eq!(nearest(&[None], &a), None);
    }
}
