//! A small ONNX graph builder over tract-onnx's protobuf types (`tract_onnx::pb`, prost 0.14).
//!
//! The exporters of this crate build every graph through it: named values (graph inputs,
//! initializers and node outputs, each name defined once), initializers from f32 / i8 / u8 /
//! i32 / i64 data or candle tensors, nodes with attributes, inputs and outputs with a symbolic
//! batch axis, and an atomic file write. It targets ONNX opset [`OPSET`] (IR version
//! [`IR_VERSION`]), so `LayerNormalization` is a standard op and `Reduce*` ops take their axes
//! as an attribute.
//!
//! # Layout
//! - [`builder`]: [`GraphBuilder`], [`Value`] and [`Dim`].
//! - [`data`]: [`TensorData`], the contents of an initializer.
//! - [`attr`]: attribute constructors.
//! - [`file`]: encoding and the atomic write.

pub mod attr;
pub mod builder;
pub mod data;
pub mod file;

pub use builder::{Dim, GraphBuilder, Value};
pub use data::{ElemType, TensorData};
pub use file::write_model;

/// The ONNX operator set the graphs are written for (`LayerNormalization` needs 17).
pub const OPSET: i64 = 17;
/// The ONNX IR version that goes with opset 17 (ONNX 1.12).
pub const IR_VERSION: i64 = 8;

/// A graph that cannot be built as asked.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Two values (inputs, initializers or node outputs) were given the same name.
    #[error("value name {0:?} is defined twice in the graph")]
    DuplicateName(String),
    /// A node or output refers to a value this graph does not define.
    #[error("value {0:?} is not defined in this graph")]
    UnknownValue(String),
    /// Initializer data whose element count does not match its dimensions.
    #[error("initializer {name:?}: dimensions {dims:?} hold {want} elements, the data has {got}")]
    DataLength {
        /// The initializer's name.
        name: String,
        /// Its dimensions.
        dims: Vec<usize>,
        /// Elements the dimensions hold.
        want: usize,
        /// Elements given.
        got: usize,
    },
}
