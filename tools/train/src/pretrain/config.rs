//! The settings of a pre-training run: the model's sizes ([`ModelSize`]) and the run itself
//! ([`PretrainConfig`]). The defaults train in a few minutes on two CPU cores and still give the
//! image tower the depth XR-VLM needs (it reads block L−2).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::PretrainError;
use crate::clip::{Activation, ClipConfig, ImageConfig, TextConfig, VisionConfig};

/// Sizes of the small CLIP (transformers' `CLIPConfig` fields, all `quick_gelu`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSize {
    /// Input side in pixels.
    pub image_size: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Image transformer width.
    pub vision_width: usize,
    /// Image transformer blocks (at least 4: XR-VLM reads block L−2 and needs blocks after it).
    pub vision_layers: usize,
    /// Image attention heads.
    pub vision_heads: usize,
    /// Text transformer width.
    pub text_width: usize,
    /// Text transformer blocks.
    pub text_layers: usize,
    /// Text attention heads.
    pub text_heads: usize,
    /// Joint embedding size D.
    pub projection_dim: usize,
    /// MLP width as a multiple of the transformer width (CLIP: 4).
    pub mlp_ratio: usize,
}

impl Default for ModelSize {
    fn default() -> Self {
        Self {
            image_size: 64,
            patch_size: 8,
            vision_width: 128,
            vision_layers: 4,
            vision_heads: 4,
            text_width: 64,
            text_layers: 3,
            text_heads: 4,
            projection_dim: 64,
            mlp_ratio: 4,
        }
    }
}

/// Fewest image blocks accepted: block L−2 must exist and leave two blocks after it.
pub const MIN_VISION_LAYERS: usize = 4;

impl ModelSize {
    /// The text tower of these sizes (see [`ModelSize::clip_config`]), its heads checked.
    pub fn text_config(
        &self,
        vocab_size: usize,
        context: usize,
        eot_id: u32,
    ) -> Result<TextConfig, PretrainError> {
        if self.text_heads == 0 || !self.text_width.is_multiple_of(self.text_heads) {
            return Err(PretrainError::Config(format!(
                "--text-width {} is not divisible by --text-heads {}",
                self.text_width, self.text_heads
            )));
        }
        Ok(TextConfig {
            vocab_size,
            hidden_size: self.text_width,
            intermediate_size: self.mlp_ratio * self.text_width,
            num_hidden_layers: self.text_layers,
            num_attention_heads: self.text_heads,
            max_position_embeddings: context,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
            eos_token_id: eot_id,
            pad_token_id: eot_id,
        })
    }

    /// The HF config of a model of these sizes for a tokenizer of `vocab_size` tokens whose
    /// `<|endoftext|>` is `eot_id`, with a text context of `context` tokens. The config is
    /// checked as `config.json` would be.
    pub fn clip_config(
        &self,
        vocab_size: usize,
        context: usize,
        eot_id: u32,
    ) -> Result<ClipConfig, PretrainError> {
        if self.vision_layers < MIN_VISION_LAYERS {
            return Err(PretrainError::Config(format!(
                "--vision-layers {} is too few; XR-VLM needs at least {MIN_VISION_LAYERS}",
                self.vision_layers
            )));
        }
        let config = ClipConfig {
            text: self.text_config(vocab_size, context, eot_id)?,
            vision: ImageConfig::Vit(VisionConfig {
                hidden_size: self.vision_width,
                intermediate_size: self.mlp_ratio * self.vision_width,
                num_hidden_layers: self.vision_layers,
                num_attention_heads: self.vision_heads,
                image_size: self.image_size,
                patch_size: self.patch_size,
                num_channels: 3,
                hidden_act: Activation::QuickGelu,
                layer_norm_eps: 1e-5,
            }),
            projection_dim: self.projection_dim,
        };
        // The same checks as a loaded config.json (patch divides image, heads divide width).
        ClipConfig::parse(
            &config.to_hf_json()?.to_string(),
            Path::new("the model size flags"),
        )
        .map_err(|e| PretrainError::Config(e.to_string()))
    }
}

/// Which species are kept out of pre-training.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Holdout {
    /// The last K species of `species.json`.
    Last(usize),
    /// These species, by name.
    Named(Vec<String>),
}

/// A whole pre-training run.
#[derive(Debug, Clone, Serialize)]
pub struct PretrainConfig {
    /// The synth directory to pre-train on.
    pub data: PathBuf,
    /// Where the checkpoint and reports go.
    pub out: PathBuf,
    /// A separate synth directory to measure zero-shot accuracy on (else held-back images).
    pub eval: Option<PathBuf>,
    /// Species never seen in pre-training.
    pub holdout: Holdout,
    /// Images per pre-training species held back for the seen-species zero-shot check when
    /// there is no `eval` directory.
    pub eval_per_species: usize,
    /// Passes over the pre-training pairs.
    pub epochs: usize,
    /// Pairs per batch (the number of negatives + 1).
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW decoupled weight decay on weight matrices (not on gains, biases, embeddings).
    pub weight_decay: f64,
    /// Steps of linear warm-up before the cosine decay.
    pub warmup_steps: usize,
    /// Smallest crop area fraction of the random resized crop.
    pub min_crop_scale: f64,
    /// Probability of dropping each clause of a caption ([`super::clauses`]).
    pub clause_dropout: f64,
    /// Initial softmax temperature (learned afterwards, never below 0.01).
    pub temperature: f64,
    /// Seed of initialisation, shuffling and augmentation.
    pub seed: u64,
    /// Measure held-out zero-shot accuracy every N epochs (0: only at the end).
    pub eval_every: usize,
    /// Model sizes (only the text tower's when the image tower is locked).
    pub size: ModelSize,
    /// A trained ModifiedResNet image tower (a `pretrain-vision` checkpoint) to keep frozen
    /// while only the text tower learns (LiT, [`super::locked`]); the checkpoint is then written
    /// in open_clip's layout.
    pub lock_image: Option<PathBuf>,
    /// Store the weights in f16 (half the file; loaders read them back as f32, and the
    /// zero-shot figures are measured on what was stored).
    pub half_weights: bool,
    /// Replace a checkpoint already in `out`.
    pub overwrite: bool,
    /// Show a progress bar.
    #[serde(skip)]
    pub progress: bool,
}

impl PretrainConfig {
    /// Defaults for everything but the two directories.
    pub fn new(data: PathBuf, out: PathBuf) -> Self {
        Self {
            data,
            out,
            eval: None,
            holdout: Holdout::Last(0),
            eval_per_species: 10,
            epochs: 20,
            batch_size: 64,
            lr: 5e-4,
            weight_decay: 0.1,
            warmup_steps: 50,
            min_crop_scale: 0.6,
            temperature: 0.07,
            clause_dropout: 0.0,
            seed: 0,
            eval_every: 0,
            size: ModelSize::default(),
            lock_image: None,
            half_weights: false,
            overwrite: false,
            progress: false,
        }
    }

    /// Checks the numbers that do not depend on the data.
    pub fn validate(&self) -> Result<(), PretrainError> {
        let bad = |msg: &str| Err(PretrainError::Config(msg.into()));
        if self.epochs == 0 {
            return bad("--epochs must be at least 1");
        }
        if self.batch_size < 2 {
            return bad("--batch-size must be at least 2: a contrastive batch needs negatives");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("--lr must be a positive number");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("--weight-decay must be a non-negative number");
        }
        if !(self.temperature >= 0.01 && self.temperature <= 1.0) {
            return bad("--temperature must be in [0.01, 1]");
        }
        if !(0.0..1.0).contains(&self.clause_dropout) {
            return bad("--clause-dropout must be in [0, 1)");
        }
        if !(self.min_crop_scale > 0.0 && self.min_crop_scale <= 1.0) {
            return bad("--min-crop-scale must be in (0, 1]");
        }
        Ok(())
    }
}
