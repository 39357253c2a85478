//! Proving a written bundle: it is opened through the runtime (hashes, shapes, format checked
//! there), its golden images are run through the runtime's frame path at fp32 against the
//! training crate's logits, and an evaluation set is run at fp32 and int8 for the reference
//! figures of `[metrics]` — every image through [`Classifier`], as on the device.

use std::num::NonZeroUsize;
use std::path::Path;

use xrvlm_runtime::bundle::manifest::Metrics;
use xrvlm_runtime::bundle::Bundle;
use xrvlm_runtime::classifier::Classifier;
use xrvlm_runtime::engine::{PlanOptions, Precision};
use xrvlm_runtime::ranking::{argmax, in_top_k};

use xrvlm_runtime::classifier::ImageError;
use xrvlm_runtime::image_io::load_rgb;

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
        let paths: Vec<_> = chunk.iter().map(|s| s.path.clone()).collect();
        let predictions = classifier
            .classify_files(&paths, 1)
            .map_err(BundleError::runtime)?;
        for (sample, prediction) in chunk.iter().zip(predictions) {
            match prediction {
                Ok(p) => {
                    rows.push(p.logits);
                    labels.push(sample.label);
                }
                Err(ImageError::Load(e)) => eprintln!("warning: skipped {e}"),
                Err(e) => return Err(BundleError::Data(e.to_string())),
            }
        }
    }
    Ok((rows, labels))
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
        let image = load_rgb(&bundle.golden_image(entry)).map_err(BundleError::runtime)?;
        let prediction = fp32.classify(&image, 1).map_err(BundleError::runtime)?;
        worst = worst.max(max_abs_diff_row(&prediction.logits, &entry.logits));
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
    fn accuracy_counts_labels_in_the_top_k_and_diffs_pair_rows() {
        let row = [0.1, 0.5, 0.3, 0.9];
        let rows = vec![row.to_vec(), vec![1.0, 0.0, 0.0, 0.0]];
        assert_eq!(accuracy(&rows, &[3, 1], 1), 0.5);
        assert_eq!(
            max_abs_diff(&rows, &[row.to_vec(), vec![1.0, 0.5, 0.0, 0.0]]),
            0.5
        );
    }
}
