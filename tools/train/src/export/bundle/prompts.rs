//! `prompts.safetensors`: the head's text side and CRM in the eval form the runtime scores with
//! (`models/BUNDLE.md`): the raw prompt features `T` `(P, C, D)` in f32 and every CRM layer,
//! batch norms as their running-statistics affine.

use std::collections::HashMap;
use std::path::Path;

use candle_core::DType;

use super::BundleError;
use crate::model::Model;

/// File name inside the bundle.
pub const PROMPTS_FILE: &str = "prompts.safetensors";

/// Writes `model`'s eval-form head to `path` (f32, contiguous).
pub fn write_prompts(model: &Model, path: &Path) -> Result<(), BundleError> {
    let tensors = model
        .xrvlm_eval_tensors()?
        .into_iter()
        .map(|(name, t)| Ok((name, t.to_dtype(DType::F32)?.contiguous()?)))
        .collect::<Result<HashMap<_, _>, candle_core::Error>>()?;
    candle_core::safetensors::save(&tensors, path).map_err(|e| BundleError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
