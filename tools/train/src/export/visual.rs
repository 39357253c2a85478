//! `visual.onnx`: the fp32 image graph, preprocessed `image` `(N, 3, S, S)` → `parts`
//! `(N, M, D)`, exactly what [`Model::parts`] computes in eval mode on [`Model::streams`]: the
//! frozen CLIP image tower's two token streams ([`super::tower`] for a ViT,
//! [`super::resnet_tower`] for a ModifiedResNet) and UnA ([`super::una`]).
//! The batch axis is the symbol `N`; every other size is static. Opset 17, standard ops only.
//!
//! The same builder writes the int8 graph (a [`LinearPlan`] with int8 layers) and the
//! calibration graph (the fp32 graph with every linear layer's input as an extra output).

use std::path::{Path, PathBuf};

use tract_onnx::pb::ModelProto;

use super::graph::{write_model, Dim, ElemType, GraphBuilder};
use super::linear::{LinearEmitter, LinearId, LinearPlan};
use super::resnet_tower::emit_resnet;
use super::source::{TowerWeights, VisualSource};
use super::tower::emit_tower;
use super::una::emit_una;
use super::ExportError;
use crate::model::Model;

/// The graph input: the preprocessed image batch `(N, 3, S, S)`, f32.
pub const INPUT: &str = "image";
/// The graph output: the multi-part visual features `(N, M, D)`, f32.
pub const OUTPUT: &str = "parts";
/// The symbolic batch axis.
pub const BATCH: &str = "N";

/// What a written graph file holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Nodes in the graph.
    pub nodes: usize,
}

/// A built graph and, if asked for, the extra outputs exposing each linear layer's input.
pub(crate) struct BuiltGraph {
    pub model: ModelProto,
    /// `(layer, output index)`; index 0 is `parts`.
    pub probes: Vec<(LinearId, usize)>,
    pub nodes: usize,
}

/// Builds the image graph of `src` with the linear layers in the forms of `plan`; with
/// `expose_probes`, every linear layer's input is also a graph output.
pub(crate) fn build(
    src: &VisualSource,
    plan: &LinearPlan,
    expose_probes: bool,
    doc: &str,
) -> Result<BuiltGraph, ExportError> {
    let s = src.image_size();
    let batch = || Dim::Symbol(BATCH.into());
    let mut g = GraphBuilder::new("xrvlm_visual");
    let image_dims = [batch(), Dim::Fixed(3), Dim::Fixed(s), Dim::Fixed(s)];
    let image = g.input(INPUT, ElemType::F32, &image_dims)?;
    let mut linears = LinearEmitter::new(plan);
    let streams = match &src.tower {
        TowerWeights::Vit(v) => emit_tower(&mut g, v, &image, &mut linears)?,
        TowerWeights::ResNet(r) => emit_resnet(&mut g, r, &image, &mut linears)?,
    };
    let parts = emit_una(&mut g, &src.una, &streams, OUTPUT)?;
    let parts_dims = [
        batch(),
        Dim::Fixed(src.una.parts),
        Dim::Fixed(src.embed_dim),
    ];
    g.output(&parts, ElemType::F32, &parts_dims)?;
    let mut probes = Vec::new();
    if expose_probes {
        for (id, value) in linears.into_probes() {
            let input = src.input_dims(id).ok_or_else(|| ExportError::Tensor {
                name: id.to_string(),
                msg: "no such layer in the tower".into(),
            })?;
            let dims: Vec<Dim> = std::iter::once(batch())
                .chain(input.into_iter().map(Dim::Fixed))
                .collect();
            // Through an Identity: the first convolution's input is the graph input itself,
            // and tract cannot type a graph whose output is its source.
            let value = g.node("Identity", &[&value], vec![])?;
            g.output(&value, ElemType::F32, &dims)?;
            probes.push((id, probes.len() + 1));
        }
    }
    let nodes = g.node_count();
    Ok(BuiltGraph {
        model: g.finish(doc),
        probes,
        nodes,
    })
}

/// The fp32 graph of `model`'s image path, in memory.
pub fn fp32_graph(model: &Model) -> Result<ModelProto, ExportError> {
    let src = VisualSource::from_model(model)?;
    Ok(build(&src, &LinearPlan::float(), false, FP32_DOC)?.model)
}

/// Writes the fp32 graph of `model`'s image path to `path` (atomically).
pub fn write_fp32(model: &Model, path: &Path) -> Result<Written, ExportError> {
    let src = VisualSource::from_model(model)?;
    let built = build(&src, &LinearPlan::float(), false, FP32_DOC)?;
    write_graph(&built, path)
}

pub(crate) fn write_graph(built: &BuiltGraph, path: &Path) -> Result<Written, ExportError> {
    let bytes = write_model(&built.model, path).map_err(|source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Written {
        path: path.to_path_buf(),
        bytes,
        nodes: built.nodes,
    })
}

const FP32_DOC: &str = "XR-VLM image path (frozen CLIP image tower, both token streams, and UnA \
                        in eval mode), fp32: image (N,3,S,S) -> parts (N,M,D)";
