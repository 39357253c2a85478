//! `prompts.safetensors`: the head's text side and CRM in the eval form the runtime scores with
//! (`models/BUNDLE.md`): the raw prompt features `T` `(P, C, D)` in f32 and every CRM layer,
//! batch norms as their running-statistics affine.

use std::collections::HashMap;
use std::path::Path;

use candle_core::DType;
use xrvlm_runtime::bundle::prompts::parse_prompts;
use xrvlm_runtime::scoring::{CrmDims, FoldedCrm};

use super::BundleError;
use crate::model::classifier::Head as ModelHead;
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
    let write_error = |message: String| BundleError::Write {
        path: path.to_path_buf(),
        message,
    };
    candle_core::safetensors::save(&tensors, path).map_err(|e| write_error(e.to_string()))?;
    // The safetensors writer creates its file owner-only (0600); a bundle is copied to devices
    // where the runtime may run as another user, so it is made readable like the other files.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| write_error(e.to_string()))?;
    }
    Ok(())
}

/// The runtime's scorer of the head written to `path` by [`write_prompts`], read back through
/// the runtime's own parser, as the device will score.
pub fn read_scorer(model: &Model, path: &Path) -> Result<FoldedCrm, BundleError> {
    let ModelHead::Xrvlm { crm, .. } = &model.head else {
        return Err(BundleError::Run("a bundle holds an XR-VLM head".into()));
    };
    let shape = crm.shape();
    let dims = CrmDims::new(
        model.num_classes(),
        shape.parts,
        shape.prompts,
        shape.dim,
        shape.crm_dim,
        shape.hidden,
    )
    .map_err(|e| BundleError::Run(e.to_string()))?;
    let bytes = std::fs::read(path).map_err(|e| BundleError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let weights = parse_prompts(&bytes, path, dims, shape.scale as f32)
        .map_err(|e| BundleError::Runtime(e.to_string()))?;
    Ok(FoldedCrm::new(&weights))
}
