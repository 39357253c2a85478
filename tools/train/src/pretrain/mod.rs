//! Contrastive pre-training of a small CLIP from scratch on a synthetic species set
//! (`xrvlm-train synth` output), on CPU in minutes, so that XR-VLM has a frozen backbone whose
//! image and text towers already agree on the parts (beaks, wings, colours) the captions name.
//!
//! The recipe is CLIP's (Radford et al. 2021, <https://arxiv.org/abs/2103.00020>): symmetric
//! InfoNCE over a batch of (image, caption) pairs with L2-normalised features and a learnable
//! temperature clamped to 100, AdamW with warm-up and cosine decay. The model is the same HF
//! CLIP architecture every real checkpoint uses ([`crate::clip`]), only small: its parameters are
//! [`crate::model::ParamStore`] variables named like transformers' tensors, handed to the very
//! tower code that later runs them frozen.
//!
//! What `run` does, in order:
//! 1. reads `captions.jsonl` and `species.json` ([`captions`]) and splits the species into
//!    pre-training and held-out ones ([`split`]; held-out images are never seen);
//! 2. trains a CLIP BPE tokenizer on the caption vocabulary ([`vocab`]);
//! 3. initialises the model like `CLIPModel._init_weights` ([`init`]) and trains it
//!    ([`trainer`], loss in [`loss`], data in [`pairs`]);
//! 4. writes a Hugging Face checkpoint ([`export`]) and measures zero-shot accuracy from it
//!    ([`zero_shot`]). [`run`] strings the steps together.
//!
//! Output directory: `config.json`, `model.safetensors`, `tokenizer.json` (a checkpoint that
//! [`crate::clip::Clip::load`], `xrvlm-train embed` and transformers' `CLIPModel` read),
//! `tokenizer_config.json` and `preprocessor_config.json` (for transformers' processors),
//! `zero_shot.json`, and `pretrain/` with `metrics.jsonl`, `curves.png` and `run.json`.
//!
//! On glibc the command first tunes the allocator ([`alloc`]), which makes CPU training about
//! a fifth faster.
//!
//! There is no checkpoint/resume: a run takes minutes, so a killed run is simply started again.
//! Every output file is written atomically (temporary file, sync, rename).

pub mod alloc;
pub mod captions;
pub mod clauses;
pub mod config;
pub mod export;
pub mod init;
pub mod locked;
pub mod loss;
pub mod pairs;
pub mod probe;
pub mod resnet_init;
pub mod run;
pub mod split;
pub mod supervised;
pub mod trainer;
pub mod vision_eval;
pub mod vocab;
pub mod zero_shot;

use std::path::PathBuf;

pub use config::{Holdout, ModelSize, PretrainConfig};
pub use run::{pretrain, PretrainReport, ZeroShotReport};

use crate::clip::ClipError;
use crate::train::curves::CurvesError;
use crate::train::metrics_log::MetricsLogError;

/// Everything that can go wrong while pre-training.
#[derive(Debug, thiserror::Error)]
pub enum PretrainError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// One line of a JSONL file is not a valid record.
    #[error("{}:{line}: {msg}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A file is unusable as a whole (bad JSON, missing species, unreadable image).
    #[error("{}: {msg}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// The tokenizer could not be built.
    #[error("building the tokenizer: {0}")]
    Tokenizer(String),
    /// The settings or the data cannot make a run (no pairs, bad held-out list, sizes).
    #[error("{0}")]
    Config(String),
    /// The loss became NaN or infinite.
    #[error("training diverged at step {step}: the loss is {loss}; lower --lr")]
    Diverged {
        /// 0-based optimiser step.
        step: usize,
        /// The loss value.
        loss: f32,
    },
    /// Loading or running the CLIP towers failed.
    #[error(transparent)]
    Clip(#[from] ClipError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The metrics log could not be written.
    #[error(transparent)]
    Metrics(#[from] MetricsLogError),
    /// The curves could not be drawn.
    #[error(transparent)]
    Curves(#[from] CurvesError),
}

impl PretrainError {
    /// An [`PretrainError::Io`] for `path`.
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
