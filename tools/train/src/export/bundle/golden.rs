//! `golden/`: a few evaluation images copied into the bundle with the training crate's fp32
//! logits, so that any device can check its own arithmetic against the workstation's
//! (`golden/golden.json`, read by `xrvlm_runtime::bundle::golden`).

use std::path::Path;

use candle_core::{Device, Tensor};
use xrvlm_runtime::bundle::golden::GoldenEntry;
use xrvlm_runtime::bundle::manifest::GOLDEN_JSON;
use xrvlm_runtime::preprocess::Preprocess;

use super::images::{pick_per_class, preprocess_files};
use super::BundleError;
use crate::data::{Dataset, Sample};
use crate::model::Model;

/// Copies up to `count` images of `ds` (classes in turn) into `dir/golden/`, computes their
/// logits with `model` in eval mode and writes `golden/golden.json`. Returns the entries.
pub fn write_golden(
    model: &Model,
    ds: &Dataset,
    count: usize,
    preprocess: &Preprocess,
    dir: &Path,
) -> Result<Vec<GoldenEntry>, BundleError> {
    let picked = pick_per_class(ds, count);
    let (pixels, kept) = preprocess_files(&picked, preprocess)?;
    if kept.is_empty() {
        return Err(BundleError::Data(format!(
            "no readable image in {} for golden/",
            ds.name
        )));
    }
    let s = preprocess.crop as usize;
    let pixels = Tensor::from_vec(pixels, (kept.len(), 3, s, s), &Device::Cpu)?;
    let logits = model.logits(&pixels, false)?.to_vec2::<f32>()?;
    let golden_dir = dir.join("golden");
    std::fs::create_dir_all(&golden_dir).map_err(|e| BundleError::io(&golden_dir, e))?;
    let mut entries = Vec::new();
    for (i, (sample, row)) in kept.iter().zip(logits).enumerate() {
        let name = golden_name(i, &ds.classes[sample.label], sample);
        let target = golden_dir.join(&name);
        write_golden_image(sample, &target)?;
        entries.push(GoldenEntry {
            file: name,
            label: ds.classes[sample.label].clone(),
            logits: row,
        });
    }
    let json = serde_json::to_vec_pretty(&entries).expect("golden entries serialize");
    let path = dir.join(GOLDEN_JSON);
    std::fs::write(&path, json).map_err(|e| BundleError::io(&path, e))?;
    Ok(entries)
}

/// The golden image of `sample`: its file as it is, or for a boxed sample its crop as PNG
/// (the device classifies a golden image whole).
fn write_golden_image(sample: &Sample, target: &Path) -> Result<(), BundleError> {
    match sample.region {
        None => std::fs::copy(&sample.path, target)
            .map(drop)
            .map_err(|e| BundleError::io(&sample.path, e)),
        Some(_) => sample
            .image()
            .map_err(|e| BundleError::Data(e.to_string()))?
            .save(target)
            .map_err(|e| BundleError::Data(format!("{}: {e}", target.display()))),
    }
}

/// `NN_<class>.<ext>`: unique, sortable and labelled; a crop is a PNG.
fn golden_name(index: usize, class: &str, sample: &Sample) -> String {
    let ext = match sample.region {
        Some(_) => "png".to_string(),
        None => sample
            .path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("png")
            .to_ascii_lowercase(),
    };
    let class: String = class
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{index:02}_{class}.{ext}")
}
