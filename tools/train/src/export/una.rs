//! UnA in eval mode as ONNX nodes, written to compute what [`crate::model::una::Una::forward`]
//! computes with `train = false` (`xrvlm-method.md` §2.3, §11):
//!
//! ```text
//! A0 = (X · scale_x + shift_x) W_φᵀ           (N, T, M+1)   BN(Cx) as its eval affine
//! A1 = softmax over tokens of τ · A0ᵀ          (N, M+1, T)
//! A  = ReLU(A1 · scale_m + shift_m)            BN(M+1) as its eval affine
//! Z  = A F                                     (N, M+1, D)
//! Z  = sign(Z) · sqrt(|Z| + 1e-6);  Z / max(‖Z_b‖₂, 1e-12)
//! parts = Z[:, :M]                             (N, M, D)
//! ```
//! `A1` carries the stable name [`PART_MAPS`], so a runtime can read the maps off either image
//! model by the name the manifest records.
//! Everything stays f32, in the int8 graph too: the part maps' values sit below one u8 step.

use super::graph::{attr, GraphBuilder, GraphError, TensorData, Value};
use super::source::UnaWeights;
use super::tower::Streams;

/// Added under the signed square root (as `model::una`).
const SQRT_EPS: f32 = 1e-6;
/// Floor of the joint L2 norm (as `model::una`).
const NORM_EPS: f32 = 1e-12;
/// The name of the part maps `A1` (N, M+1, T) in both image models, the softmax over the
/// tokens with the background map last: what the manifest's `part_maps` names and
/// `xrvlm classify --explain` draws.
pub const PART_MAPS: &str = "una/maps";

/// Writes UnA on the two streams; the result is the node output named `output`.
pub(crate) fn emit_una(
    g: &mut GraphBuilder,
    u: &UnaWeights,
    streams: &Streams,
    output: &str,
) -> Result<Value, GraphError> {
    g.set_scope("una");
    let maps = maps(g, u, &streams.x)?;
    let z = g.node("MatMul", &[&maps, &streams.f], vec![])?;
    let z = signed_sqrt(g, &z)?;
    let norm = g.node(
        "ReduceL2",
        &[&z],
        vec![attr::ints("axes", &[1, 2]), attr::int("keepdims", 1)],
    )?;
    let floor = g.constant(TensorData::scalar_f32(NORM_EPS))?;
    let norm = g.node("Max", &[&norm, &floor], vec![])?;
    let z = g.node("Div", &[&z, &norm], vec![])?;
    let starts = g.constant(TensorData::i64_vec(&[0]))?;
    let ends = g.constant(TensorData::i64_vec(&[u.parts as i64]))?;
    let axes = g.constant(TensorData::i64_vec(&[1]))?;
    g.node_named("Slice", output, &[&z, &starts, &ends, &axes], vec![])
}

/// The part maps `A` `(N, M+1, T)`.
fn maps(g: &mut GraphBuilder, u: &UnaWeights, x: &Value) -> Result<Value, GraphError> {
    let width = u.bn_x.scale.len();
    let maps = u.queries.rows;
    let sx = g.initializer(
        "una.bn_x.scale",
        TensorData::f32(&[width], u.bn_x.scale.clone()),
    )?;
    let bx = g.initializer(
        "una.bn_x.shift",
        TensorData::f32(&[width], u.bn_x.shift.clone()),
    )?;
    let xb = g.node("Mul", &[x, &sx], vec![])?;
    let xb = g.node("Add", &[&xb, &bx], vec![])?;
    let qt = u.queries.transposed();
    let q = g.initializer(
        "una.queries_t",
        TensorData::f32(&[qt.rows, qt.cols], qt.data),
    )?;
    let logits = g.node("MatMul", &[&xb, &q], vec![])?; // (N, T, M+1)
    let mut logits = g.node(
        "Transpose",
        &[&logits],
        vec![attr::ints("perm", &[0, 2, 1])],
    )?;
    if u.tau != 1.0 {
        let tau = g.constant(TensorData::scalar_f32(u.tau as f32))?;
        logits = g.node("Mul", &[&logits, &tau], vec![])?;
    }
    let a1 = g.node_named(
        "Softmax",
        PART_MAPS,
        &[&logits],
        vec![attr::int("axis", -1)],
    )?;
    let sm = g.initializer(
        "una.bn_maps.scale",
        TensorData::f32(&[maps, 1], u.bn_maps.scale.clone()),
    )?;
    let bm = g.initializer(
        "una.bn_maps.shift",
        TensorData::f32(&[maps, 1], u.bn_maps.shift.clone()),
    )?;
    let a = g.node("Mul", &[&a1, &sm], vec![])?;
    let a = g.node("Add", &[&a, &bm], vec![])?;
    g.node("Relu", &[&a], vec![])
}

/// `sign(z) · sqrt(|z| + 1e-6)`.
fn signed_sqrt(g: &mut GraphBuilder, z: &Value) -> Result<Value, GraphError> {
    let eps = g.constant(TensorData::scalar_f32(SQRT_EPS))?;
    let abs = g.node("Abs", &[z], vec![])?;
    let shifted = g.node("Add", &[&abs, &eps], vec![])?;
    let root = g.node("Sqrt", &[&shifted], vec![])?;
    let sign = g.node("Sign", &[z], vec![])?;
    g.node("Mul", &[&sign, &root], vec![])
}
