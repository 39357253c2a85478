//! Edge runtime for XR-VLM fine-grained species recognition.
//!
//! This crate owns everything that must behave identically at training time and on the edge
//! device: the bundle format, preprocessing and scoring. The training crate (`xrvlm-train`)
//! depends on it, never the other way round, so a tensor the edge computes is bit-for-bit the
//! tensor training saw, and a bundle export writes is one the runtime reads.
//!
//! # Layout
//!
//! - [`preprocess`]: the test-time image pipeline (PIL-exact bilinear resize, center crop,
//!   CLIP normalisation), the only implementation in the workspace.
//! - `resample` (private): Pillow's fixed-point separable resampler behind [`preprocess`].
//! - [`image_io`]: reading image files into RGB8 the way PIL's `convert("RGB")` does.
//! - [`bundle`]: [`bundle::Bundle::open`], which verifies a bundle directory before anything
//!   runs, and the bundle's files: `manifest.toml` (its types are shared with the exporter),
//!   the SHA-256 digests, the ONNX files' declared inputs and outputs, `prompts.safetensors`,
//!   `golden/golden.json`; signed bundles (`bundle::signing`: Ed25519 keys, `manifest.sig`, the
//!   trust policy of [`bundle::Bundle::open_trusted`]).
//! - [`scoring`]: CRM scoring (eval form, unfolded and folded) and softmax.
//! - [`ranking`]: the one ranking rule (argmax, top-k, rank of a class) of both crates.
//! - [`engine`]: the image model as a tract plan per precision (fp32, int8, f16), threads set.
//! - [`taxonomy`]: each class's genus, family, order and class, and the roll-up to them.
//! - [`timestamp`]: UTC timestamps (RFC 3339 and MegaDetector's form) without a date library.
//! - [`crop`]: how a box (a detection, the motion gate's region, a training box) becomes the
//!   square crop the classifier sees, the one rule of both crates.
//! - [`allowed`]: the species a site allows (SpeciesNet's geofence), applied in the frame path.
//! - [`open_world`]: whether a frame shows a species the model never saw: the candidate
//!   scores, the export's calibration of a threshold, and the rule every prediction gets.
//! - [`classifier`]: the one path of a frame: preprocessing + plan + scoring + ranking.
//! - [`part_maps`]: where each part looks, drawn as a PNG sheet (`classify --explain`).
//! - [`check`]: the accuracy check a device runs on itself (`xrvlm check`).
//! - [`field`]: the field runtime's parts: board profiles, frame sources, the motion gate,
//!   decisions and events, the detection log, saved frames, the status screen and the Camtrap DP
//!   export.
//! - [`detection_file`]: the MegaDetector batch-output file that `classify --detections` reads.
//! - [`resume`]: what `classify --resume` reads back from an output it wrote before.
//! - [`prefetch`]: the next items prepared on worker threads while the caller works, in order.
//! - [`fuzzing`]: one entry per parser of outside input, for the fuzzers (`runtime/fuzz`) and
//!   the test that replays their corpora.
//! - [`prelude`]: the handful of names most callers need, for `use xrvlm_runtime::prelude::*`.
//!
//! The `xrvlm` binary (`src/main.rs`, commands in `src/cli/`) is a thin shell over these.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod allowed;
pub mod bundle;
pub mod check;
pub mod classifier;
pub mod crop;
pub mod detection_file;
pub mod engine;
pub mod field;
pub mod fuzzing;
pub mod image_io;
pub mod open_world;
pub mod part_maps;
pub mod prefetch;
pub mod preprocess;
pub mod ranking;
mod resample;
pub mod resume;
pub mod scoring;
pub mod taxonomy;
#[cfg(test)]
mod test_support;
pub mod timestamp;

/// Names most callers need: `use xrvlm_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::bundle::manifest::{Manifest, ManifestError, ModelPrecision};
    pub use crate::bundle::{Bundle, BundleError};
    pub use crate::classifier::{ClassScore, Classifier, ClassifyError, ImageError, Prediction};
    pub use crate::engine::{EngineError, Plan, PlanOptions, Precision};
    pub use crate::image_io::{load_rgb, ImageLoadError};
    pub use crate::preprocess::{Interpolation, Preprocess, PreprocessError};
    pub use crate::scoring::{CrmDims, CrmWeights, FoldedCrm, Logits, UnfoldedCrm};
}
