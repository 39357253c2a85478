//! Running our graphs in tract, in memory, two ways:
//! - [`device_plan`]: the plan a device runs ([`Plan::from_onnx`], the runtime's one pipeline:
//!   batch 1, the engine's passes). Every check that speaks for devices uses it: the int8
//!   fallback's agreement and the int8 report.
//! - [`TractGraph`]: tract's plain optimization of a graph with several outputs and any batch,
//!   for the calibration graph, whose extra outputs expose every linear layer's input. It is
//!   not what a device runs, and nothing judges a bundle with it.

use candle_core::{DType, Tensor};
use prost::Message;
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::{
    Framework, InferenceModelExt, IntoRunnable, IntoTValue, TypedModel, TypedRunnableModel,
};
use xrvlm_runtime::engine::{ModelShape, Plan, PlanOptions, Precision};

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

/// The graph optimized by tract alone (no fixed batch, none of the engine's passes); `label`
/// names the graph in errors.
fn optimize(proto: &ModelProto, label: &'static str) -> Result<TypedModel, ExportError> {
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

/// The plan a device runs for `proto` at `precision`, on one thread; `label` names the graph
/// in errors.
pub fn device_plan(
    proto: &ModelProto,
    shape: ModelShape,
    precision: Precision,
    label: &'static str,
) -> Result<Plan, ExportError> {
    let options = PlanOptions {
        precision,
        ..PlanOptions::default()
    };
    let name = std::path::PathBuf::from(format!("{label}.onnx"));
    Plan::from_onnx(&name, &proto.encode_to_vec(), shape, options).map_err(|e| ExportError::Tract {
        graph: label,
        stage: "plan",
        msg: e.to_string(),
    })
}

/// `parts` (N·M·D) of `plan` on preprocessed images `(N, 3, S, S)`.
pub fn run_plan(
    plan: &Plan,
    images: &Tensor,
    label: &'static str,
) -> Result<Vec<f32>, ExportError> {
    let data = images
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    plan.run(&data).map_err(|e| ExportError::Tract {
        graph: label,
        stage: "run",
        msg: e.to_string(),
    })
}
