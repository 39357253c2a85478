//! Evaluation of a model on a dataset with the test-time preprocessing (§7): logits batch by
//! batch, the class features computed once (they do not depend on the image in eval mode), and
//! every unreadable image reported rather than fatal.

use candle_core::Device;
use xrvlm_runtime::preprocess::Preprocess;

use super::metrics::{EvalAccumulator, Evaluation};
use crate::data::loader::{to_tensor, LoadFailure, Loader, Transform};
use crate::data::Dataset;
use crate::model::Model;

/// An evaluation and the images it had to skip.
pub struct EvalOutcome {
    /// Metrics over the images that loaded.
    pub evaluation: Evaluation,
    /// Images that could not be read.
    pub failures: Vec<LoadFailure>,
}

/// Runs `model` in eval mode over `ds`.
pub fn evaluate(
    model: &Model,
    ds: &Dataset,
    preprocess: &Preprocess,
    batch_size: usize,
    device: &Device,
    mut on_batch: impl FnMut(usize),
) -> anyhow::Result<EvalOutcome> {
    let class_features = model.class_features(false)?;
    let loader = Loader::new(ds, Transform::Eval(preprocess.clone()), batch_size, None, 0);
    let mut acc = EvalAccumulator::new(model.classes.clone())?;
    let mut failures = Vec::new();
    for batch in &loader {
        failures.extend(batch.failures.iter().cloned());
        if !batch.is_empty() {
            let pixels = to_tensor(&batch, preprocess.crop, device)?;
            let streams = model.streams(&pixels)?;
            let logits = model.logits_from(&streams, class_features.as_ref(), false)?;
            let labels: Vec<usize> = batch.labels.iter().map(|&l| l as usize).collect();
            acc.add_tensor(&logits, &labels)?;
        }
        on_batch(batch.len() + batch.failures.len());
    }
    Ok(EvalOutcome {
        evaluation: acc.finish()?,
        failures,
    })
}
