//! `xrvlm-train`: the companion training crate of xrvlm-edge.
//!
//! It loads Hugging Face CLIP checkpoints, adapts the frozen towers to fine-grained recognition
//! with XR-VLM (UnA + MPP + CRM, `shared/design/xrvlm-method.md`) or one of its baselines, trains
//! at full precision on CPU or CUDA, and is the fp32 reference for every parity check of the edge
//! runtime.
//!
//! # Layout
//! - [`clip`]: CLIP config, tokenizer, image and text towers (HF checkpoint layout).
//! - [`model`]: UnA, MPP, CRM, batch norm and the selectable classification heads.
//! - [`data`]: ImageFolder, CUB-200-2011 and COCO Camera Traps datasets, k-shot sampling,
//!   augmentation and batching.
//! - [`train`]: optimiser, schedule, metrics, metrics log, curves, checkpoints and the loop.
//! - [`pretrain`]: contrastive pre-training of a small CLIP from scratch on a synth set.
//! - [`synth`]: the synthetic fine-grained bird world (`xrvlm-train synth`) and the colour-histogram
//!   baseline.
//! - [`device`]: CPU / CUDA selection and precision.
//! - [`export`]: the image model as ONNX graphs (`visual.onnx`, `visual.int8.onnx`).
//! - [`open_world`]: the unknown-species threshold of a bundle, calibrated through the runtime
//!   (the export's step, and `calibrate-open-world` for an existing bundle).
//! - [`ablate`]: the §9 ablation (every head, same backbone, shots and seeds) as one table.
//! - [`cli`]: the `xrvlm-train` subcommands.

pub mod ablate;
pub mod cli;
pub mod clip;
pub mod data;
pub mod device;
pub mod export;
pub mod model;
pub mod open_world;
pub mod pretrain;
pub mod synth;
pub mod taxonomy_file;
pub mod train;
