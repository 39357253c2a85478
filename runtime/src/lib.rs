//! Edge runtime for XR-VLM fine-grained species recognition.
//!
//! This crate owns everything that must behave identically at training time and on the edge
//! device. The training crate (`xrvlm-train`) depends on it, never the other way round, so a
//! tensor the edge computes is bit-for-bit the tensor training saw.
//!
//! # Layout
//!
//! - [`preprocess`]: the test-time image pipeline (PIL-exact bilinear resize, center crop,
//!   CLIP normalisation), the only implementation in the workspace.
//! - `resample` (private): Pillow's fixed-point separable resampler behind [`preprocess`].
//! - [`image_io`]: reading image files into RGB8 the way PIL's `convert("RGB")` does.
//! - [`prelude`]: the handful of names most callers need, for `use xrvlm_runtime::prelude::*`.
#![warn(missing_docs)]

pub mod image_io;
pub mod preprocess;
mod resample;

/// Names most callers need: `use xrvlm_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::image_io::{load_rgb, ImageLoadError};
    pub use crate::preprocess::{Interpolation, Preprocess, PreprocessError};
}
