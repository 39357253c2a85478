//! The frozen ModifiedResNet image tower as ONNX nodes, written to compute what
//! [`crate::clip::resnet::ResNetTower::streams`] computes (`xrvlm-method.md` §2.2), every batch
//! norm folded into its convolution ([`super::source::ResNetWeights`]):
//!
//! ```text
//! image (N,3,S,S) → conv+ReLU ×3 (the first with stride 2) → AveragePool 2
//!   → bottlenecks: relu(conv3(pool(relu(conv2(relu(conv1 x))))) + shortcut),
//!     shortcut = downsample(pool x) or x, pool = AveragePool(stride) when stride > 1
//!   → map (N, C, g, g) → X = tokens (N, g², C)
//!   → F = X · valuesᵀ + values_bias   (N, g², D), the attention pool's value path
//! ```

use super::graph::{attr, GraphBuilder, GraphError, TensorData, Value};
use super::linear::{LinearEmitter, LinearId};
use super::source::ResNetWeights;
use super::tower::Streams;

/// Writes the tower from the `(N, 3, S, S)` input `image`.
pub(crate) fn emit_resnet(
    g: &mut GraphBuilder,
    src: &ResNetWeights,
    image: &Value,
    linears: &mut LinearEmitter,
) -> Result<Streams, GraphError> {
    g.set_scope("stem");
    let mut h = image.clone();
    for i in 0..3 {
        h = conv(g, src, i, &h, linears)?;
    }
    h = average_pool(g, &h, 2)?;
    for (b, block) in src.blocks.iter().enumerate() {
        g.set_scope(&format!("block{b}"));
        let [c1, c2, c3] = block.convs;
        let y = conv(g, src, c1, &h, linears)?;
        let y = conv(g, src, c2, &y, linears)?;
        let y = average_pool(g, &y, block.stride)?;
        let y = conv(g, src, c3, &y, linears)?;
        let shortcut = match block.downsample {
            Some(d) => {
                let pooled = average_pool(g, &h, block.stride)?;
                conv(g, src, d, &pooled, linears)?
            }
            None => h.clone(),
        };
        let sum = g.node("Add", &[&y, &shortcut], vec![])?;
        h = g.node("Relu", &[&sum], vec![])?;
    }
    g.set_scope("values");
    let (tokens, channels) = (
        src.config.tokens() as i64,
        src.config.feature_channels() as i64,
    );
    let flat = g.constant(TensorData::i64_vec(&[-1, channels, tokens]))?;
    let flat = g.node("Reshape", &[&h, &flat], vec![])?;
    let x = g.node("Transpose", &[&flat], vec![attr::ints("perm", &[0, 2, 1])])?;
    let v = linears.apply(g, LinearId::Values, &x, &src.values)?;
    let b = &src.values_bias;
    let bias = g.initializer(
        "values.token_bias",
        TensorData::f32(&[b.rows, b.cols], b.data.clone()),
    )?;
    let f = g.node("Add", &[&v, &bias], vec![])?;
    Ok(Streams { x, f })
}

fn conv(
    g: &mut GraphBuilder,
    src: &ResNetWeights,
    i: usize,
    x: &Value,
    linears: &mut LinearEmitter,
) -> Result<Value, GraphError> {
    let layer = src
        .convs
        .get(i)
        .ok_or_else(|| GraphError::UnknownValue(format!("convolution {i}")))?;
    linears.conv(g, LinearId::Conv(i), x, layer)
}

/// `AveragePool` with a `side × side` window and stride (the identity for side 1).
fn average_pool(g: &mut GraphBuilder, x: &Value, side: usize) -> Result<Value, GraphError> {
    if side <= 1 {
        return Ok(x.clone());
    }
    let s = side as i64;
    g.node(
        "AveragePool",
        &[x],
        vec![
            attr::ints("kernel_shape", &[s, s]),
            attr::ints("strides", &[s, s]),
        ],
    )
}
