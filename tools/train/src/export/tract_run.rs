//! Running our graphs in tract, in memory: load the `ModelProto`, optimize, plan, run a batch
//! of preprocessed images. Calibration and the int8 report use it; so can tests and tools that
//! want tract's view of a graph before it is written.

use candle_core::{DType, Tensor};
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::{
    DatumType, Framework, InferenceModelExt, IntoRunnable, IntoTValue, TypedModel,
    TypedRunnableModel,
};
use tract_onnx::tract_core::ops::matmul::optimized::OptMatMul;

use super::ExportError;

/// One output of a run: its dimensions and its f32 values, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// Dimensions.
    pub dims: Vec<usize>,
    /// Values.
    pub data: Vec<f32>,
}

/// An optimized tract plan of one of our graphs.
pub struct TractGraph {
    plan: std::sync::Arc<TypedRunnableModel>,
    label: &'static str,
}

/// The graph optimized by tract (as the runtime would load it); `label` names the graph in
/// errors.
pub fn optimize(proto: &ModelProto, label: &'static str) -> Result<TypedModel, ExportError> {
    let err = |stage: &'static str| {
        move |e: anyhow::Error| ExportError::Tract {
            graph: label,
            stage,
            msg: format!("{e:#}"),
        }
    };
    let model = tract_onnx::onnx()
        .model_for_proto_model(proto)
        .map_err(err("load"))?;
    model.into_optimized().map_err(err("optimize"))
}

impl TractGraph {
    /// Loads and optimizes `proto`; `label` names the graph in errors.
    pub fn load(proto: &ModelProto, label: &'static str) -> Result<Self, ExportError> {
        Self::from_optimized(optimize(proto, label)?, label)
    }

    /// Plans an already optimized model.
    pub fn from_optimized(model: TypedModel, label: &'static str) -> Result<Self, ExportError> {
        let plan = model.into_runnable().map_err(|e| ExportError::Tract {
            graph: label,
            stage: "plan",
            msg: format!("{e:#}"),
        })?;
        Ok(Self { plan, label })
    }

    /// Runs the graph on `images` `(N, 3, S, S)` and returns every output as f32.
    pub fn run(&self, images: &Tensor) -> Result<Vec<Output>, ExportError> {
        let err = |e: anyhow::Error| ExportError::Tract {
            graph: self.label,
            stage: "run",
            msg: format!("{e:#}"),
        };
        let dims = images.dims().to_vec();
        let data = images
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let input = tract_onnx::prelude::Tensor::from_shape(&dims, &data).map_err(err)?;
        let outputs = self
            .plan
            .run(vec![input.into_tvalue()].into())
            .map_err(err)?;
        outputs
            .iter()
            .map(|o| {
                let view = o.to_plain_array_view::<f32>().map_err(err)?;
                Ok(Output {
                    dims: view.shape().to_vec(),
                    data: view.iter().copied().collect(),
                })
            })
            .collect()
    }
}

/// The int8 matrix products of an optimized tract model: its `OptMatMul` nodes whose kernel
/// accumulates in i32 (tract's lowering of `MatMulInteger`), as `(node name, kernel name)`.
pub fn int8_matmuls(model: &TypedModel) -> Vec<(String, String)> {
    model
        .nodes()
        .iter()
        .filter_map(|node| {
            let op = node.op_as::<OptMatMul>()?;
            let kernel = op
                .mmm
                .iter()
                .find(|k| k.internal_type() == DatumType::I32)?;
            Some((node.name.clone(), kernel.name().to_string()))
        })
        .collect()
}
