//! Writes the pre-trained model as a Hugging Face CLIP checkpoint directory:
//!
//! - `config.json` ([`ClipConfig::to_hf_json`]);
//! - `model.safetensors`: every tensor under its transformers name, `logit_scale` included,
//!   f32, with the `{"format": "pt"}` metadata transformers expects;
//! - `tokenizer.json` (the [`super::vocab`] tokenizer);
//! - `tokenizer_config.json` and `preprocessor_config.json`, so that transformers'
//!   `CLIPProcessor.from_pretrained` gets the special tokens, the context length and the
//!   image pipeline (bilinear resize of the shorter side, centre crop, CLIP mean and std).
//!
//! Every file is written atomically (temporary file, sync, rename).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use tokenizers::Tokenizer;
use xrvlm_runtime::preprocess::Preprocess;

use super::PretrainError;
use crate::clip::tokenizer::{EOT, SOT};
use crate::clip::ClipConfig;
use crate::model::params::ParamStore;
use crate::train::checkpoint::write_atomically;

/// The checkpoint's config file.
pub const CONFIG_FILE: &str = "config.json";
/// The checkpoint's weights file.
pub const MODEL_FILE: &str = "model.safetensors";
/// The checkpoint's tokenizer file.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// PIL's `Image.BILINEAR`, the resampling of our preprocessing.
const PIL_BILINEAR: u32 = 2;

pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<(), PretrainError> {
    write_atomically(path, bytes).map_err(PretrainError::io(path))
}

pub(crate) fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), PretrainError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| PretrainError::File {
        path: path.to_path_buf(),
        msg: format!("cannot serialise: {e}"),
    })?;
    write(path, format!("{text}\n").as_bytes())
}

/// The safetensors file of `tensors` (made contiguous), with the `{"format": "pt"}` metadata
/// PyTorch loaders expect; `path` names the file in errors.
pub(crate) fn safetensors_bytes(
    path: &Path,
    tensors: Vec<(String, Tensor)>,
) -> Result<Vec<u8>, PretrainError> {
    let tensors = tensors
        .into_iter()
        .map(|(n, t)| Ok((n, t.contiguous()?)))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata)).map_err(
        |e| PretrainError::File {
            path: path.to_path_buf(),
            msg: format!("cannot serialise the weights: {e}"),
        },
    )
}

/// `tensors` as stored: f32 ones in f16 when `half` (half the file; every loader here reads them
/// back as f32), else unchanged.
pub(crate) fn stored(
    tensors: Vec<(String, Tensor)>,
    half: bool,
) -> candle_core::Result<Vec<(String, Tensor)>> {
    tensors
        .into_iter()
        .map(|(n, t)| match t.dtype() {
            DType::F32 if half => Ok((n, t.to_dtype(DType::F16)?)),
            _ => Ok((n, t)),
        })
        .collect()
}

/// Writes `dir/tokenizer.json` and `dir/tokenizer_config.json` (context `context` tokens).
pub fn write_tokenizer(
    dir: &Path,
    tokenizer: &Tokenizer,
    context: usize,
) -> Result<(), PretrainError> {
    let text = tokenizer
        .to_string(true)
        .map_err(|e| PretrainError::Tokenizer(e.to_string()))?;
    write(&dir.join(TOKENIZER_FILE), text.as_bytes())?;
    let config = serde_json::json!({
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": context,
        "bos_token": SOT,
        "eos_token": EOT,
        "unk_token": EOT,
        "pad_token": EOT,
        "do_lower_case": true,
        "clean_up_tokenization_spaces": false,
    });
    write_json(&dir.join("tokenizer_config.json"), &config)
}

/// Writes `dir/config.json`, `dir/model.safetensors` (in f16 when `half`) and
/// `dir/preprocessor_config.json`.
pub fn write_model(
    dir: &Path,
    config: &ClipConfig,
    params: &ParamStore,
    half: bool,
) -> Result<(), PretrainError> {
    write_json(&dir.join(CONFIG_FILE), &config.to_hf_json()?)?;
    let tensors = params
        .named()
        .into_iter()
        .map(|(name, var)| Ok((name, var.as_tensor().to_device(&Device::Cpu)?)))
        .collect::<candle_core::Result<Vec<(String, Tensor)>>>()?;
    let path = dir.join(MODEL_FILE);
    write(&path, &safetensors_bytes(&path, stored(tensors, half)?)?)?;
    let pre = Preprocess::for_image_size(config.vision.image_size() as u32);
    let processor = serde_json::json!({
        "image_processor_type": "CLIPImageProcessor",
        "do_convert_rgb": true,
        "do_resize": true,
        "size": {"shortest_edge": pre.resize_shorter},
        "resample": PIL_BILINEAR,
        "do_center_crop": true,
        "crop_size": {"height": pre.crop, "width": pre.crop},
        "do_rescale": true,
        "rescale_factor": 1.0 / 255.0,
        "do_normalize": true,
        "image_mean": pre.mean,
        "image_std": pre.std,
    });
    write_json(&dir.join("preprocessor_config.json"), &processor)
}
