//! The synthetic fine-grained bird world and the colour-histogram baseline that shows the task
//! cannot be solved from global colour.
//!
//! The generator lives in the `xrvlm-synth` crate (so that the edge runtime can render frames
//! from it too) and is re-exported here whole, so `xrvlm_train::synth::...` paths keep working.
//! The baseline reads ImageFolder datasets through [`crate::data`], so it stays in this crate.
//!
//! # Layout
//! - everything from `xrvlm_synth`: species, rendering, captions and [`generate`].
//! - [`histogram`]: the nearest-centroid colour-histogram baseline.

pub mod histogram;

pub use histogram::{histogram_nearest_centroid, HistogramError, HistogramReport};
pub use xrvlm_synth::*;
