//! What the check measures: the golden images' logits against the training crate's recorded
//! fp32 logits, and a labelled set's accuracy, per class and with its worst confusions, the
//! share of its known-species images the open-world rule keeps (not answered `unknown`), and
//! the latency of one image end to end (decode, preprocessing, image model, scoring).

use std::time::Instant;

use serde::Serialize;

use super::labelled_set::LabelledImage;
use crate::classifier::{Classifier, ClassifyError};
use crate::image_io::{load_rgb, ImageLoadError};
use crate::ranking;

/// How many of the worst classes the report lists with their confusions.
pub const WORST_CLASSES: usize = 5;

/// The golden images at the device's precision against the recorded fp32 logits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoldenParity {
    /// Golden images run.
    pub images: usize,
    /// Largest |logit − recorded fp32 logit| over all images and classes.
    pub max_abs_logit_diff: f64,
    /// Fraction of images whose top-1 class is the recorded fp32 top-1.
    pub top1_agreement: f64,
}

/// Why the check could not measure.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// A golden image cannot be read: the bundle is damaged.
    #[error("golden image: {0}")]
    Golden(#[from] ImageLoadError),
    /// An image could not be classified (a golden image, or the image model failed).
    #[error(transparent)]
    Classify(#[from] ClassifyError),
}

/// Runs the bundle's golden images.
pub fn golden_parity(classifier: &Classifier) -> Result<GoldenParity, MeasureError> {
    let bundle = classifier.bundle();
    let mut max_diff = 0f64;
    let mut agree = 0;
    for entry in bundle.golden() {
        let image = load_rgb(&bundle.golden_image(entry))?;
        let prediction = classifier.classify(&image, 1)?;
        for (got, want) in prediction.logits.iter().zip(&entry.logits) {
            max_diff = max_diff.max(f64::from((got - want).abs()));
        }
        agree += usize::from(prediction.best() == ranking::argmax(&entry.logits));
    }
    let images = bundle.golden().len();
    Ok(GoldenParity {
        images,
        max_abs_logit_diff: max_diff,
        top1_agreement: agree as f64 / images.max(1) as f64,
    })
}

/// Accuracy on one class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassAccuracy {
    /// The class label.
    pub label: String,
    /// Its images in the set (that could be read).
    pub images: usize,
    /// Fraction classified as this class.
    pub top1: f64,
    /// The classes its images were mistaken for, most frequent first: (label, count).
    pub confused_with: Vec<(String, usize)>,
}

/// A labelled set's accuracy and latency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accuracy {
    /// Images classified (unreadable ones are in `failures`, not counted).
    pub images: usize,
    /// Fraction whose top-1 class is the label.
    pub top1: f64,
    /// Fraction whose label is among the top 5.
    pub top5: f64,
    /// Per class, in bundle order; classes without images are left out.
    pub per_class: Vec<ClassAccuracy>,
    /// The classes with the lowest top-1, worst first, at most [`WORST_CLASSES`].
    pub worst: Vec<String>,
    /// The open-world rule on the set's known-species images (all but the blank class's);
    /// `None` when the bundle has no `[open_world]` or the set no such image.
    pub known_recall: Option<KnownRecall>,
    /// Images that could not be read: (path, error).
    pub failures: Vec<(String, String)>,
    /// End-to-end latency of one image, milliseconds.
    pub latency_ms: Latency,
}

/// How many known-species images the open-world rule kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KnownRecall {
    /// Known-species images classified.
    pub images: usize,
    /// Fraction not answered `unknown`.
    pub recall: f64,
}

/// A latency distribution, milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub median: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    fn of(mut samples: Vec<f64>) -> Self {
        if samples.is_empty() {
            return Self {
                median: 0.0,
                p90: 0.0,
                max: 0.0,
            };
        }
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Self {
            median: at(0.5),
            p90: at(0.9),
            max: at(1.0),
        }
    }
}

/// Classifies `set` one image at a time (as the field loop does) and scores the answers. An
/// image that cannot be read or preprocessed is a recorded failure; only the image model's
/// failure stops the measurement.
pub fn accuracy(classifier: &Classifier, set: &[LabelledImage]) -> Result<Accuracy, MeasureError> {
    let labels: Vec<&str> = classifier.bundle().manifest().labels().collect();
    let classes = labels.len();
    let mut confusion = vec![vec![0usize; classes]; classes];
    let (mut top1, mut top5) = (0, 0);
    let blank = classifier.open_world().map(|rule| rule.blank);
    let (mut known, mut kept) = (0usize, 0usize);
    let mut latencies = Vec::with_capacity(set.len());
    let mut failures = Vec::new();
    for image in set {
        let started = Instant::now();
        let mut fail = |why: String| failures.push((image.path.display().to_string(), why));
        let decoded = match load_rgb(&image.path) {
            Ok(decoded) => decoded,
            Err(e) => {
                fail(e.to_string());
                continue;
            }
        };
        let prediction = match classifier.classify(&decoded, 1) {
            Ok(prediction) => prediction,
            Err(ClassifyError::Preprocess(e)) => {
                fail(e.to_string());
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        let predicted = prediction.best();
        confusion[image.class][predicted] += 1;
        top1 += usize::from(predicted == image.class);
        top5 += usize::from(ranking::in_top_k(&prediction.logits, image.class, 5));
        if blank.is_some_and(|blank| blank != Some(image.class)) {
            known += 1;
            kept += usize::from(!prediction.is_unknown());
        }
    }
    let images = latencies.len();
    let per_class = per_class(&confusion, &labels);
    let mut worst: Vec<&ClassAccuracy> = per_class.iter().collect();
    worst.sort_by(|a, b| a.top1.total_cmp(&b.top1));
    Ok(Accuracy {
        images,
        top1: top1 as f64 / images.max(1) as f64,
        top5: top5 as f64 / images.max(1) as f64,
        worst: worst
            .iter()
            .take(WORST_CLASSES)
            .map(|c| c.label.clone())
            .collect(),
        per_class,
        known_recall: (known > 0).then(|| KnownRecall {
            images: known,
            recall: kept as f64 / known as f64,
        }),
        failures,
        latency_ms: Latency::of(latencies),
    })
}

fn per_class(confusion: &[Vec<usize>], labels: &[&str]) -> Vec<ClassAccuracy> {
    confusion
        .iter()
        .enumerate()
        .filter(|(_, row)| row.iter().sum::<usize>() > 0)
        .map(|(truth, row)| {
            let images: usize = row.iter().sum();
            let mut confused_with: Vec<(String, usize)> = row
                .iter()
                .enumerate()
                .filter(|&(predicted, &n)| predicted != truth && n > 0)
                .map(|(predicted, &n)| (labels[predicted].to_string(), n))
                .collect();
            confused_with.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            ClassAccuracy {
                label: labels[truth].to_string(),
                images,
                top1: row[truth] as f64 / images as f64,
                confused_with,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_class_accuracy_and_confusions_come_from_the_matrix() {
        let confusion = vec![vec![3, 1, 0], vec![0, 0, 0], vec![2, 2, 1]];
        let got = per_class(&confusion, &["a", "b", "c"]);
        assert_eq!(got.len(), 2, "class b has no images");
        assert_eq!(
            (got[0].label.as_str(), got[0].images, got[0].top1),
            ("a", 4, 0.75)
        );
        assert_eq!(got[0].confused_with, [("b".to_string(), 1)]);
        assert_eq!(got[1].top1, 0.2);
        assert_eq!(
            got[1].confused_with,
            [("a".to_string(), 2), ("b".to_string(), 2)]
        );
    }

    #[test]
    fn latency_quantiles() {
        let l = Latency::of((1..=10).map(f64::from).collect());
        assert_eq!((l.median, l.p90, l.max), (6.0, 9.0, 10.0));
        assert_eq!(Latency::of(Vec::new()).max, 0.0);
    }
}
