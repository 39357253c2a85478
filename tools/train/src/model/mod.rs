//! The trainable heads on top of the frozen CLIP towers: XR-VLM (UnA, MPP, CRM) and its
//! baselines, with their parameters and batch-norm buffers.

pub mod batch_norm;
pub mod classifier;
pub mod crm;
pub mod linear;
pub mod params;
pub mod prompts;
pub mod una;

pub use classifier::{Head, HeadConfig, HeadKind, Model, ModelError};
