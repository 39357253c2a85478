//! Export of the image model to ONNX, written from Rust through tract-onnx's protobuf types:
//! `visual.onnx` (fp32) and `visual.int8.onnx` (int8 QOperator form) of the bundle contract
//! (`models/BUNDLE.md`, `xrvlm-method.md` §11). Both map a preprocessed image batch
//! `image` `(N, 3, S, S)` to the multi-part visual features `parts` `(N, M, D)`: the frozen CLIP
//! image tower (both token streams) plus UnA in eval mode.
//!
//! ```no_run
//! # use std::path::Path;
//! # fn demo(model: &xrvlm_train::model::Model, calibration: &candle_core::Tensor)
//! #     -> Result<(), xrvlm_train::export::ExportError> {
//! use xrvlm_train::export::{int8, visual};
//! visual::write_fp32(model, Path::new("models/demo/visual.onnx"))?;
//! let report = int8::write_int8(
//!     model,
//!     calibration,
//!     Path::new("models/demo/visual.int8.onnx"),
//!     &int8::Int8Options::default(),
//!     None,
//! )?;
//! println!("{report}");
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`graph`]: a small ONNX graph builder (values, initializers, nodes, atomic write).
//! - [`source`]: the tower's and UnA's numbers, read out of a [`crate::model::Model`].
//! - [`linear`]: the linear layers and their float and int8 forms.
//! - [`tower`], [`resnet_tower`], [`una`]: the image tower (ViT, ModifiedResNet) and UnA as
//!   nodes.
//! - [`visual`]: the fp32 graph, `visual.onnx`.
//! - [`quant`]: per-channel weight and static activation quantization.
//! - [`tract_run`]: running a graph in tract (calibration, checks).
//! - [`calibrate`]: activation ranges and per-layer errors over calibration images.
//! - [`agreement`]: the accuracy-aware fallback (int8 layers back to float until the top-1
//!   class agrees with fp32 on the calibration images).
//! - [`int8`]: the int8 graph, `visual.int8.onnx`, and its [`int8::QuantReport`].
//! - [`bundle`]: the whole bundle (`xrvlm-train export`): graphs, prompts, golden set,
//!   manifest, verified through the runtime.
//! - [`npy`], [`reference`]: reference inputs and outputs for `tools/check_onnx.py`.

pub mod agreement;
pub mod bundle;
pub mod calibrate;
pub mod graph;
pub mod int8;
pub mod linear;
pub mod npy;
pub mod quant;
pub mod reference;
pub mod resnet_tower;
pub mod smoothing;
pub mod source;
pub mod tower;
pub mod tract_run;
pub mod una;
pub mod visual;

use std::path::PathBuf;

pub use int8::{write_int8, Int8Options, QuantReport};
pub use linear::LinearId;
pub use visual::{write_fp32, Written};

use crate::clip::ClipError;
use crate::model::{HeadKind, ModelError};

/// Everything that can go wrong while exporting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The head has no multi-part visual features to export.
    #[error(
        "the {0:?} head has no UnA parts; only the xrvlm, alignment and vision-only heads \
         export an image graph"
    )]
    NoParts(HeadKind),
    /// A tensor the graph needs is missing from the model or has the wrong shape.
    #[error("model tensor {name}: {msg}")]
    Tensor {
        /// The tensor's name.
        name: String,
        /// What is wrong and what was expected.
        msg: String,
    },
    /// The calibration images cannot be used.
    #[error("calibration images: {0}")]
    Calibration(String),
    /// An option is out of its range.
    #[error("int8 option {name}: {msg}")]
    Option {
        /// The option.
        name: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// The graph could not be built.
    #[error("building the ONNX graph: {0}")]
    Graph(#[from] graph::GraphError),
    /// tract could not load or run one of our graphs.
    #[error("tract could not {stage} the {graph} graph: {msg}")]
    Tract {
        /// Which graph (`fp32`, `int8`, `calibration`).
        graph: &'static str,
        /// Load, optimize or run.
        stage: &'static str,
        /// tract's error chain.
        msg: String,
    },
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The CLIP checkpoint's tensors could not be read.
    #[error(transparent)]
    Clip(#[from] ClipError),
    /// The training crate's model failed (reference outputs).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
