//! Proving a written bundle: it is opened through the runtime (hashes, shapes, format checked
//! there), its golden images are run through tract at fp32 against the training crate's logits,
//! and an evaluation set is run at fp32 and int8 for the reference figures of `[metrics]`.

use std::num::NonZeroUsize;
use std::path::Path;

use xrvlm_runtime::bundle::Bundle;
use xrvlm_runtime::classifier::Classifier;
use xrvlm_runtime::engine::{PlanOptions, Precision};
use xrvlm_runtime::manifest::Metrics;

use super::images::preprocess_files;
use super::BundleError;
use crate::data::Dataset;

/// Images per tract run while measuring.
const BATCH: usize = 32;

/// Logits `(N·C)` of `dataset`'s readable images through `classifier`, with their labels.
fn logits_of(
    classifier: &Classifier,
    ds: &Dataset,
) -> Result<(Vec<Vec<f32>>, Vec<usize>), BundleError> {
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for chunk in ds.samples.chunks(BATCH) {
        let (pixels, kept) = preprocess_files(chunk, classifier.preprocess())?;
        if kept.is_empty() {
            continue;
        }
        let logits = classifier.logits(&pixels).map_err(BundleError::runtime)?;
        rows.extend(logits.rows().map(<[f32]>::to_vec));
        labels.extend(kept.iter().map(|s| s.label));
    }
    Ok((rows, labels))
}

/// Index of the largest value (first on ties).
fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}

/// Whether `label` is among the `k` largest values of `row`.
fn in_top_k(row: &[f32], label: usize, k: usize) -> bool {
    let beaten = row.iter().filter(|&&v| v > row[label]).count();
    beaten < k
}

/// Fraction of rows whose top-`k` holds the label.
fn accuracy(rows: &[Vec<f32>], labels: &[usize], k: usize) -> f64 {
    let hits = rows
        .iter()
        .zip(labels)
        .filter(|(r, &l)| in_top_k(r, l, k))
        .count();
    hits as f64 / rows.len().max(1) as f64
}

/// Largest |x − y| over paired values.
fn max_abs_diff_row(x: &[f32], y: &[f32]) -> f64 {
    x.iter()
        .zip(y)
        .map(|(p, q)| (p - q).abs() as f64)
        .fold(0.0, f64::max)
}

/// Largest |a − b| over paired rows.
fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| max_abs_diff_row(x, y))
        .fold(0.0, f64::max)
}

/// The bundle at `dir` opened (verified) through the runtime, with a plan for `precision`.
pub fn classifier(
    dir: &Path,
    precision: Precision,
    threads: usize,
) -> Result<Classifier, BundleError> {
    let bundle = Bundle::open(dir).map_err(BundleError::runtime)?;
    let options = PlanOptions {
        precision,
        threads: NonZeroUsize::new(threads.max(1)).expect("at least one"),
    };
    Classifier::new(bundle, options).map_err(BundleError::runtime)
}

/// Largest |tract fp32 − training crate| logit over the bundle's golden images.
pub fn golden_parity(fp32: &Classifier) -> Result<f64, BundleError> {
    let bundle = fp32.bundle();
    let mut worst = 0.0f64;
    for entry in bundle.golden() {
        let pixels = fp32
            .load_image(&bundle.golden_image(entry))
            .map_err(BundleError::runtime)?;
        let logits = fp32.logits(&pixels).map_err(BundleError::runtime)?;
        let row = logits.rows().next().expect("one image, one row");
        worst = worst.max(max_abs_diff_row(row, &entry.logits));
    }
    Ok(worst)
}

/// The reference figures of `ds` through the bundle at fp32 and int8, with the golden parity
/// ([`golden_parity`]) of the fp32 plan.
pub fn measure(
    fp32_plan: &Classifier,
    int8_plan: &Classifier,
    ds: &Dataset,
) -> Result<Metrics, BundleError> {
    let golden_diff = golden_parity(fp32_plan)?;
    let (fp32, labels) = logits_of(fp32_plan, ds)?;
    let (int8, _) = logits_of(int8_plan, ds)?;
    if fp32.is_empty() {
        return Err(BundleError::Data(format!(
            "no readable image in the evaluation set {}",
            ds.name
        )));
    }
    let agree = fp32
        .iter()
        .zip(&int8)
        .filter(|(a, b)| argmax(a) == argmax(b))
        .count();
    Ok(Metrics {
        eval_set: ds.name.clone(),
        eval_images: fp32.len() as u64,
        fp32_top1: accuracy(&fp32, &labels, 1),
        fp32_top5: accuracy(&fp32, &labels, 5),
        int8_top1: Some(accuracy(&int8, &labels, 1)),
        int8_top5: Some(accuracy(&int8, &labels, 5)),
        int8_agreement: Some(agree as f64 / fp32.len() as f64),
        int8_max_abs_logit_diff: Some(max_abs_diff(&fp32, &int8)),
        golden_fp32_max_abs_logit_diff: Some(golden_diff),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_counts_strictly_larger_values() {
        let row = [0.1, 0.5, 0.3, 0.9];
        assert!(in_top_k(&row, 3, 1));
        assert!(!in_top_k(&row, 1, 1));
        assert!(in_top_k(&row, 1, 2));
        assert_eq!(argmax(&row), 3);
        let rows = vec![row.to_vec(), vec![1.0, 0.0, 0.0, 0.0]];
        assert_eq!(accuracy(&rows, &[3, 1], 1), 0.5);
        assert_eq!(
            max_abs_diff(&rows, &[row.to_vec(), vec![1.0, 0.5, 0.0, 0.0]]),
            0.5
        );
    }
}
