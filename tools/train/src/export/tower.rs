//! The frozen CLIP image tower as ONNX nodes, written to compute what
//! [`crate::clip::VisionTower::streams`] computes (`xrvlm-method.md` §2.1):
//!
//! ```text
//! image (N,3,S,S) → patches (N, g², 3·p·p) → patch matrix → (N, g², W)
//!   → Pad one zero token in front → + (position, with the class embedding added to row 0)
//!   → pre LayerNorm → blocks 0 … L−3 → X → blocks L−2, L−1 → post LayerNorm → projection → F
//! ```
//! A block is pre-norm: `h + out(attn(LN1 h))`, then `+ fc2(act(fc1(LN2 ·)))`, attention with
//! softmax over keys. Padding a zero token and adding `class + position[0]` to it gives the
//! same number as concatenating the class token and then adding the position, without any
//! batch-dependent shape arithmetic in the graph.

use std::f32::consts::FRAC_1_SQRT_2;

use super::graph::{attr, GraphBuilder, GraphError, TensorData, Value};
use super::linear::{LinearEmitter, LinearId};
use super::source::{BlockWeights, NormWeights, VitWeights};
use crate::clip::Activation;

/// The two token streams of §2.1 as graph values.
pub(crate) struct Streams {
    /// Block L−2's output `(N, T, W)`, not normalised.
    pub x: Value,
    /// Every token after the post LayerNorm and the projection `(N, T, D)`.
    pub f: Value,
}

/// Writes the tower from the `(N, 3, S, S)` input `image`.
pub(crate) fn emit_tower(
    g: &mut GraphBuilder,
    src: &VitWeights,
    image: &Value,
    linears: &mut LinearEmitter,
) -> Result<Streams, GraphError> {
    g.set_scope("embed");
    let mut h = embed(g, src, image, linears)?;
    let mut x = None;
    for (i, block) in src.blocks.iter().enumerate() {
        if i == src.split_block() {
            x = Some(h.clone());
        }
        g.set_scope(&format!("block{i}"));
        h = emit_block(g, src, i, block, &h, linears)?;
    }
    g.set_scope("post");
    let normed = layer_norm(g, "post_ln", &h, &src.post_ln)?;
    let f = linears.apply(g, LinearId::Projection, &normed, &src.projection)?;
    // `VisualSource` has at least two blocks (ClipConfig checks it), so X exists.
    let x = x.ok_or_else(|| GraphError::UnknownValue("X (block L-2 output)".into()))?;
    Ok(Streams { x, f })
}

fn shape(g: &mut GraphBuilder, dims: &[i64]) -> Result<Value, GraphError> {
    g.constant(TensorData::i64_vec(dims))
}

fn embed(
    g: &mut GraphBuilder,
    src: &VitWeights,
    image: &Value,
    linears: &mut LinearEmitter,
) -> Result<Value, GraphError> {
    let c = &src.vision;
    let (ch, gr, p) = (c.num_channels as i64, c.grid() as i64, c.patch_size as i64);
    // (N, C, g, p, g, p) → (N, g, g, C, p, p) → (N, g², C·p·p): row-major patch order, each
    // patch flattened as (c, y, x) like the convolution weight.
    let s6 = shape(g, &[-1, ch, gr, p, gr, p])?;
    let six = g.node("Reshape", &[image, &s6], vec![])?;
    let perm = attr::ints("perm", &[0, 2, 4, 1, 3, 5]);
    let moved = g.node("Transpose", &[&six], vec![perm])?;
    let s3 = shape(g, &[-1, gr * gr, ch * p * p])?;
    let patches = g.node("Reshape", &[&moved, &s3], vec![])?;
    let tokens = linears.apply(g, LinearId::Patch, &patches, &src.patch)?;
    let pads = shape(g, &[0, 1, 0, 0, 0, 0])?;
    let padded = g.node("Pad", &[&tokens, &pads], vec![])?;
    let mut pos = src.position.clone();
    for (v, cls) in pos.data.iter_mut().zip(&src.class_embedding) {
        *v += cls;
    }
    let pos = g.initializer(
        "embeddings.class_and_position",
        TensorData::f32(&[pos.rows, pos.cols], pos.data),
    )?;
    let h = g.node("Add", &[&padded, &pos], vec![])?;
    layer_norm(g, "pre_ln", &h, &src.pre_ln)
}

fn layer_norm(
    g: &mut GraphBuilder,
    name: &str,
    x: &Value,
    n: &NormWeights,
) -> Result<Value, GraphError> {
    let len = n.weight.len();
    let w = g.initializer(
        &format!("{name}.weight"),
        TensorData::f32(&[len], n.weight.clone()),
    )?;
    let b = g.initializer(
        &format!("{name}.bias"),
        TensorData::f32(&[len], n.bias.clone()),
    )?;
    let attrs = vec![attr::int("axis", -1), attr::float("epsilon", n.eps as f32)];
    g.node("LayerNormalization", &[x, &w, &b], attrs)
}

fn emit_block(
    g: &mut GraphBuilder,
    src: &VitWeights,
    i: usize,
    b: &BlockWeights,
    h: &Value,
    linears: &mut LinearEmitter,
) -> Result<Value, GraphError> {
    let a = layer_norm(g, &format!("block{i}.ln1"), h, &b.ln1)?;
    let ctx = attention(g, src, i, b, &a, linears)?;
    let o = linears.apply(g, LinearId::AttnOut(i), &ctx, &b.out)?;
    let h = g.node("Add", &[h, &o], vec![])?;
    let m = layer_norm(g, &format!("block{i}.ln2"), &h, &b.ln2)?;
    let f1 = linears.apply(g, LinearId::Fc1(i), &m, &b.fc1)?;
    let act = activation(g, &f1, src.vision.hidden_act)?;
    let f2 = linears.apply(g, LinearId::Fc2(i), &act, &b.fc2)?;
    g.node("Add", &[&h, &f2], vec![])
}

/// Multi-head self-attention up to (not including) the output projection: `(N, T, W)`.
fn attention(
    g: &mut GraphBuilder,
    src: &VitWeights,
    i: usize,
    b: &BlockWeights,
    a: &Value,
    linears: &mut LinearEmitter,
) -> Result<Value, GraphError> {
    let (t, w) = (src.tokens() as i64, src.width() as i64);
    let heads = src.vision.num_attention_heads as i64;
    let qkv = linears.apply(g, LinearId::Qkv(i), a, &b.qkv)?;
    let split = shape(g, &[w, w, w])?;
    let parts = g.node_multi("Split", &[&qkv, &split], vec![attr::int("axis", -1)], 3)?;
    let heads_shape = shape(g, &[-1, t, heads, w / heads])?;
    let mut per_head = |v: &Value, perm: &[i64]| -> Result<Value, GraphError> {
        let r = g.node("Reshape", &[v, &heads_shape], vec![])?;
        g.node("Transpose", &[&r], vec![attr::ints("perm", perm)])
    };
    let q = per_head(&parts[0], &[0, 2, 1, 3])?; // (N, H, T, hd), already scaled
    let k = per_head(&parts[1], &[0, 2, 3, 1])?; // (N, H, hd, T)
    let v = per_head(&parts[2], &[0, 2, 1, 3])?; // (N, H, T, hd)
    let scores = g.node("MatMul", &[&q, &k], vec![])?;
    let probs = g.node("Softmax", &[&scores], vec![attr::int("axis", -1)])?;
    let ctx = g.node("MatMul", &[&probs, &v], vec![])?;
    let ctx = g.node(
        "Transpose",
        &[&ctx],
        vec![attr::ints("perm", &[0, 2, 1, 3])],
    )?;
    let merged = shape(g, &[-1, t, w])?;
    g.node("Reshape", &[&ctx, &merged], vec![])
}

/// The MLP activation: QuickGELU `x · σ(1.702 x)`, or the exact GELU
/// `(erf(x / √2) + 1) · 0.5 · x` (candle's `gelu_erf`).
fn activation(g: &mut GraphBuilder, x: &Value, act: Activation) -> Result<Value, GraphError> {
    match act {
        Activation::QuickGelu => {
            let k = g.constant(TensorData::scalar_f32(1.702))?;
            let kx = g.node("Mul", &[x, &k], vec![])?;
            let s = g.node("Sigmoid", &[&kx], vec![])?;
            g.node("Mul", &[x, &s], vec![])
        }
        Activation::Gelu => {
            let r = g.constant(TensorData::scalar_f32(FRAC_1_SQRT_2))?;
            let one = g.constant(TensorData::scalar_f32(1.0))?;
            let half = g.constant(TensorData::scalar_f32(0.5))?;
            let xr = g.node("Mul", &[x, &r], vec![])?;
            let e = g.node("Erf", &[&xr], vec![])?;
            let e1 = g.node("Add", &[&e, &one], vec![])?;
            let h = g.node("Mul", &[&e1, &half], vec![])?;
            g.node("Mul", &[&h, x], vec![])
        }
    }
}
