//! CLIP checkpoints, loaded offline: a ViT as Hugging Face writes it (`config.json`,
//! `model.safetensors` with HF tensor names), or a ModifiedResNet in open_clip's layout
//! (`open_clip_config.json`, `open_clip_model.safetensors` with OpenAI's names, [`open_clip`]);
//! either with a `tokenizer.json`.
//!
//! Reference: transformers `models/clip/modeling_clip.py` (`CLIPModel`). Every op on the text
//! path has a backward pass ([`ops`]), because MPP's context vectors learn through the frozen
//! text tower.

pub mod config;
pub mod image;
pub mod layers;
pub mod open_clip;
pub mod ops;
pub mod resnet;
pub mod text;
pub mod tokenizer;
pub mod vision;
pub mod weights;

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

pub use config::{Activation, ClipConfig, ImageConfig, TextConfig, VisionConfig};
pub use image::ImageTower;
pub use text::TextTower;
pub use tokenizer::ClipTokenizer;
pub use vision::{VisionStreams, VisionTower};
pub use weights::Weights;

/// Everything that can go wrong while loading or running a CLIP checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `config.json` is not a CLIP config we can run.
    #[error("{path}: {msg}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong and what is expected.
        msg: String,
    },
    /// A tensor is missing from the checkpoint or has the wrong shape or type.
    #[error("{path}: tensor {name}: {msg}")]
    Tensor {
        /// The safetensors file.
        path: PathBuf,
        /// The HF tensor name.
        name: String,
        /// What is wrong and what is expected.
        msg: String,
    },
    /// The safetensors file itself could not be parsed.
    #[error("{path}: not a readable safetensors file: {msg}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        msg: String,
    },
    /// `tokenizer.json` could not be used.
    #[error("{path}: {msg}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// Bad input to a forward pass (shape, token ids, text too long).
    #[error("{0}")]
    Input(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// The text of a checkpoint's config file, or an error naming it.
pub(crate) fn read_text(path: &Path) -> Result<String, ClipError> {
    std::fs::read_to_string(path).map_err(|source| ClipError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A loaded CLIP checkpoint: both towers, their projections and the tokenizer.
pub struct Clip {
    /// The parsed `config.json`.
    pub config: ClipConfig,
    /// The image tower with its projection (ViT) or attention pool (ResNet).
    pub vision: ImageTower,
    /// The text tower with `text_projection`.
    pub text: TextTower,
    /// The tokenizer, when the directory has a `tokenizer.json`.
    pub tokenizer: Option<ClipTokenizer>,
    /// CLIP's learned `logit_scale` (log of the softmax temperature's inverse).
    pub logit_scale: f32,
    /// Where the checkpoint was read from.
    pub dir: PathBuf,
    /// Every checkpoint tensor, shared with the towers (constants: they never get a gradient).
    frozen: Weights,
}

impl Clip {
    /// Loads `dir/open_clip_config.json` and `dir/open_clip_model.safetensors` when the
    /// directory has them, else `dir/config.json` and `dir/model.safetensors`; and, when present,
    /// `dir/tokenizer.json`. The weights are constants (not variables): the towers are frozen and
    /// receive no gradient.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ClipError> {
        if open_clip::is_open_clip(dir) {
            let path = dir.join(open_clip::CONFIG_FILE);
            let config = open_clip::OpenClipConfig::load(&path)?.clip_config(&path)?;
            let weights = Weights::load(&dir.join(open_clip::MODEL_FILE), device)?;
            let weights = weights.map_tensors(open_clip::text_to_hf)?;
            return Self::from_weights(config, weights, dir);
        }
        let config = ClipConfig::load(&dir.join("config.json"))?;
        let weights = Weights::load(&dir.join("model.safetensors"), device)?;
        Self::from_weights(config, weights, dir)
    }

    /// Builds the towers from already loaded weights.
    pub fn from_weights(
        config: ClipConfig,
        weights: Weights,
        dir: &Path,
    ) -> Result<Self, ClipError> {
        let vision = match &config.vision {
            ImageConfig::Vit(v) => {
                ImageTower::Vit(VisionTower::new(&weights, v, config.projection_dim)?)
            }
            ImageConfig::ResNet(r) => ImageTower::ResNet(resnet::ResNetTower::new(&weights, r)?),
        };
        let text = TextTower::new(&weights, &config.text, config.projection_dim)?;
        let logit_scale = match weights.get_optional("logit_scale")? {
            Some(t) => t
                .flatten_all()?
                .to_vec1::<f32>()?
                .first()
                .copied()
                .unwrap_or(0.0),
            None => (1.0f32 / 0.07).ln(),
        };
        let tok_path = dir.join("tokenizer.json");
        let tokenizer = if tok_path.exists() {
            Some(ClipTokenizer::load(&tok_path, &config.text)?)
        } else {
            None
        };
        Ok(Self {
            config,
            vision,
            text,
            tokenizer,
            logit_scale,
            dir: dir.to_path_buf(),
            frozen: weights,
        })
    }

    /// The checkpoint's tensors by HF name, as the towers hold them.
    pub fn frozen_tensors(&self) -> impl Iterator<Item = (&String, &Tensor)> {
        self.frozen.iter()
    }

    /// The tokenizer, or an error naming the missing file.
    pub fn tokenizer(&self) -> Result<&ClipTokenizer, ClipError> {
        self.tokenizer.as_ref().ok_or_else(|| ClipError::Tokenizer {
            path: self.dir.join("tokenizer.json"),
            msg: "missing; the checkpoint needs a tokenizer.json to encode text".into(),
        })
    }

    /// `get_image_features`: projected, not normalised, CLS features (N, D).
    pub fn image_features(&self, pixels: &Tensor) -> Result<Tensor, ClipError> {
        self.vision.image_features(pixels)
    }

    /// `get_text_features`: projected, not normalised, EOT features (N, D) of token ids (N, L).
    pub fn text_features(&self, ids: &Tensor) -> Result<Tensor, ClipError> {
        self.text.text_features(ids)
    }

    /// Encodes texts with the checkpoint's tokenizer and returns their text features.
    pub fn encode_texts(&self, texts: &[String], device: &Device) -> Result<Tensor, ClipError> {
        let tok = self.tokenizer()?;
        let ids = tok.encode_batch(texts)?;
        let ids = tok.pad_to_tensor(&ids, device)?;
        self.text_features(&ids)
    }
}
