//! The training crate's integration tests, in one test binary (one link instead of eight).
//!
//! Modules:
//! - `bad_input`: bad input gives errors that name the file and what is wrong.
//! - `clip_parity`: the CLIP towers against transformers' reference outputs.
//! - `committed_models`: the models under `models/` stay readable by the code that made them.
//! - `export_onnx`: the exported image graphs (fp32, int8) against the training crate.
//! - `gradients`: gradient flow through the frozen towers to every trainable tensor.
//! - `pretrain`: `xrvlm-train pretrain` end to end on a tiny synthetic directory.
//! - `synth`: `xrvlm-train synth` and `histogram-baseline` through the binary.
//! - `training`: training end to end through the binary on a generated ImageFolder.

mod bad_input;
mod clip_parity;
mod committed_models;
mod common;
mod export_onnx;
mod gradients;
mod pretrain;
mod synth;
mod training;
