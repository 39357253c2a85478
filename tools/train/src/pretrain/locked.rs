//! Locked-image tuning (LiT, Zhai et al. 2022, <https://arxiv.org/abs/2111.07991>): the image
//! tower that `pretrain-vision` trained on species and parts stays frozen, and only the text tower
//! (with the temperature) learns to meet it, by the same contrastive loss as full pre-training.
//!
//! [`LockedImage`] is that tower: its `open_clip` checkpoint read as constants, joined with the
//! text tower's variables into the weights the [`crate::clip::Clip`] under training is built
//! from, and written back with the trained text tower as one open_clip checkpoint
//! ([`crate::clip::open_clip`]): `visual.*` as read, the text tower under OpenAI's names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use xrvlm_runtime::preprocess::Preprocess;

use super::export::{safetensors_bytes, stored, write, write_json};
use super::PretrainError;
use crate::clip::open_clip::{text_to_openai, OpenClipConfig, CONFIG_FILE, MODEL_FILE};
use crate::clip::resnet::PREFIX;
use crate::clip::{ClipConfig, ImageConfig, TextConfig, Weights};
use crate::model::params::ParamStore;

/// A trained ModifiedResNet image tower, frozen.
pub struct LockedImage {
    /// Its config (any text tower it had is dropped: a new one is trained).
    pub config: OpenClipConfig,
    /// Its `visual.*` tensors.
    tensors: HashMap<String, Tensor>,
    /// Where it was read from.
    pub dir: PathBuf,
}

impl LockedImage {
    /// Reads the open_clip checkpoint in `dir` (e.g. `pretrain-vision --out`).
    pub fn load(dir: &Path, device: &Device) -> Result<Self, PretrainError> {
        let mut config = OpenClipConfig::load(&dir.join(CONFIG_FILE))?;
        config.text = None;
        let weights = Weights::load(&dir.join(MODEL_FILE), device)?;
        let visual = format!("{PREFIX}.");
        let tensors: HashMap<String, Tensor> = weights
            .iter()
            .filter(|(name, _)| name.starts_with(&visual))
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        if tensors.is_empty() {
            return Err(PretrainError::File {
                path: dir.join(MODEL_FILE),
                msg: format!("has no {visual}* tensors: not an image tower checkpoint"),
            });
        }
        Ok(Self {
            config,
            tensors,
            dir: dir.to_path_buf(),
        })
    }

    /// The CLIP of this image tower and `text`.
    pub fn clip_config(&self, text: TextConfig) -> ClipConfig {
        ClipConfig {
            text,
            vision: ImageConfig::ResNet(self.config.vision.clone()),
            projection_dim: self.config.vision.embed_dim,
        }
    }

    /// The image tower's constants and the text tower's variables (each tensor *is* its
    /// variable, so the text tower trains); `path` names them in errors.
    pub fn weights(&self, text: &ParamStore, path: &Path) -> Weights {
        let mut tensors = self.tensors.clone();
        tensors.extend(
            text.named()
                .into_iter()
                .map(|(name, var)| (name, var.as_tensor().clone())),
        );
        Weights::from_tensors(path, tensors)
    }

    /// Writes `dir/open_clip_config.json` and `dir/open_clip_model.safetensors`: this image
    /// tower, the trained text tower of `config` and the temperature in `text`; in f16 when
    /// `half`.
    pub fn write_checkpoint(
        &self,
        dir: &Path,
        config: &ClipConfig,
        text: &ParamStore,
        half: bool,
    ) -> Result<(), PretrainError> {
        let pre = Preprocess::for_image_size(config.vision.image_size() as u32);
        let file = OpenClipConfig {
            vision: self.config.vision.clone(),
            text: Some(config.text.clone()),
            mean: pre.mean,
            std: pre.std,
        };
        write_json(&dir.join(CONFIG_FILE), &file.to_json())?;
        let trained = text
            .named()
            .into_iter()
            .map(|(name, var)| Ok((name, var.as_tensor().to_device(&Device::Cpu)?)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let mut tensors = text_to_openai(trained)?;
        tensors.extend(self.tensors.iter().map(|(n, t)| (n.clone(), t.clone())));
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let path = dir.join(MODEL_FILE);
        write(&path, &safetensors_bytes(&path, stored(tensors, half)?)?)
    }
}
