//! The linear layers of the image tower and the two forms a layer can take in a graph:
//! - float: `MatMul(x, Wᵀ)` then the bias `Add`;
//! - int8 (`performance.md`, the form tract and onnxruntime both run fast):
//!   `QuantizeLinear(x, s_x, 128)` (u8) → `MatMulInteger(·, W_q, a_zero_point 128)` (s8
//!   per-channel symmetric weights, no weight zero point) → `Cast` (f32) →
//!   `Mul(s_x · s_w[n])` → bias `Add`.
//!
//! A ModifiedResNet's convolutions take the same two forms over `(N, C, H, W)`: float `Conv`,
//! or `QuantizeLinear` → `ConvInteger` (the same s8 per-output-channel kernel, u8 input with
//! zero point 128) → `Cast` → `Mul(s_x · s_w[o])`; then the bias (the folded batch norm's shift)
//! and the ReLU when one follows.
//!
//! Every layer's input can be recorded while the graph is built ("probes"), so that a
//! calibration graph exposes exactly the values the quantized graph will quantize.

use std::collections::BTreeMap;
use std::fmt;

use super::graph::{attr, ElemType, GraphBuilder, GraphError, TensorData, Value};
use super::quant::{ActivationQuant, QuantizedWeight};
use super::smoothing::ChannelSmoothing;
use super::source::{ConvWeights, LinearWeights};

/// One linear layer of the image tower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinearId {
    /// The patch embedding (a stride-p convolution, as a matrix over flattened patches).
    Patch,
    /// Block `i`'s stacked q, k, v projections.
    Qkv(usize),
    /// Block `i`'s attention output projection.
    AttnOut(usize),
    /// Block `i`'s first MLP layer.
    Fc1(usize),
    /// Block `i`'s second MLP layer.
    Fc2(usize),
    /// `visual_projection`, applied to every token.
    Projection,
    /// A ModifiedResNet's `i`-th convolution (stem, then each bottleneck's conv1, conv2, conv3
    /// and downsample), its batch norm folded in.
    Conv(usize),
    /// A ModifiedResNet's value path (`v_proj` then `c_proj`, folded into one layer).
    Values,
}

impl fmt::Display for LinearId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Patch => write!(f, "patch"),
            Self::Qkv(i) => write!(f, "block{i}.qkv"),
            Self::AttnOut(i) => write!(f, "block{i}.out_proj"),
            Self::Fc1(i) => write!(f, "block{i}.fc1"),
            Self::Fc2(i) => write!(f, "block{i}.fc2"),
            Self::Projection => write!(f, "projection"),
            Self::Conv(i) => write!(f, "conv{i}"),
            Self::Values => write!(f, "values"),
        }
    }
}

/// How one layer is written.
#[derive(Clone, Debug, PartialEq)]
pub enum LinearForm {
    /// f32 `MatMul`.
    Float,
    /// int8 `MatMulInteger` / `ConvInteger` with a static activation quantization.
    Int8 {
        /// The input's step `s_x` and zero point (of the smoothed input when smoothed).
        input: ActivationQuant,
        /// A convolution's per-channel smoothing, if any.
        smoothing: Option<ChannelSmoothing>,
    },
}

impl LinearForm {
    /// The int8 form with one step for the whole input.
    pub fn int8(input: ActivationQuant) -> Self {
        Self::Int8 {
            input,
            smoothing: None,
        }
    }
}

/// The form of every layer; a layer not listed is float.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinearPlan {
    forms: BTreeMap<LinearId, LinearForm>,
}

impl LinearPlan {
    /// Every layer float.
    pub fn float() -> Self {
        Self::default()
    }

    /// Sets the form of layer `id`.
    pub fn set(&mut self, id: LinearId, form: LinearForm) {
        self.forms.insert(id, form);
    }

    /// The form of layer `id`.
    pub fn form(&self, id: LinearId) -> LinearForm {
        self.forms.get(&id).cloned().unwrap_or(LinearForm::Float)
    }

    /// The int8 layers, in id order.
    pub fn int8_ids(&self) -> Vec<LinearId> {
        self.forms
            .iter()
            .filter(|(_, f)| matches!(f, LinearForm::Int8 { .. }))
            .map(|(&id, _)| id)
            .collect()
    }

    /// Number of int8 layers.
    pub fn int8_count(&self) -> usize {
        self.forms
            .values()
            .filter(|f| matches!(f, LinearForm::Int8 { .. }))
            .count()
    }
}

/// The integer product of one int8 layer: `MatMulInteger` with a `(K, out)` weight, or
/// `ConvInteger` with an `(out, in, k, k)` kernel, and the shape of its per-channel rescale.
struct Int8Product {
    op: &'static str,
    weight: TensorData,
    rescale_dims: Vec<usize>,
    attrs: Vec<tract_onnx::pb::AttributeProto>,
}

/// Writes linear layers into a graph according to a plan, recording each layer's input.
pub(crate) struct LinearEmitter<'a> {
    plan: &'a LinearPlan,
    zero_points: BTreeMap<u8, Value>,
    probes: Vec<(LinearId, Value)>,
}

impl<'a> LinearEmitter<'a> {
    pub(crate) fn new(plan: &'a LinearPlan) -> Self {
        Self {
            plan,
            zero_points: BTreeMap::new(),
            probes: Vec::new(),
        }
    }

    /// The input of every layer written so far, in graph order.
    pub(crate) fn into_probes(self) -> Vec<(LinearId, Value)> {
        self.probes
    }

    /// `x Wᵀ + b` over the last axis of `x`, in the form the plan gives layer `id`.
    pub(crate) fn apply(
        &mut self,
        g: &mut GraphBuilder,
        id: LinearId,
        x: &Value,
        layer: &LinearWeights,
    ) -> Result<Value, GraphError> {
        self.probes.push((id, x.clone()));
        let y = match self.plan.form(id) {
            LinearForm::Float => float_matmul(g, id, x, layer)?,
            // Dense layers keep one step: the runtime's int8 kernels are built for it.
            LinearForm::Int8 { input, .. } => self.int8_matmul(g, id, x, layer, input)?,
        };
        match &layer.bias {
            Some(b) => {
                let bias = g.initializer(
                    &format!("{id}.bias"),
                    TensorData::f32(&[b.len()], b.clone()),
                )?;
                g.node("Add", &[&y, &bias], vec![])
            }
            None => Ok(y),
        }
    }

    /// The convolution `layer` on `x` `(N, C, H, W)`, in the form the plan gives layer `id`,
    /// with its bias and, when it has one, its ReLU.
    pub(crate) fn conv(
        &mut self,
        g: &mut GraphBuilder,
        id: LinearId,
        x: &Value,
        layer: &ConvWeights,
    ) -> Result<Value, GraphError> {
        self.probes.push((id, x.clone()));
        let (out, k) = (layer.out_channels(), layer.kernel);
        let p = layer.padding as i64;
        let attrs = || {
            vec![
                attr::ints("kernel_shape", &[k as i64, k as i64]),
                attr::ints("strides", &[layer.stride as i64, layer.stride as i64]),
                attr::ints("pads", &[p, p, p, p]),
            ]
        };
        let kernel = [out, layer.in_channels(), k, k];
        let bias = layer.linear.bias.clone().unwrap_or_else(|| vec![0.0; out]);
        let y = match self.plan.form(id) {
            LinearForm::Float => {
                let w = g.initializer(
                    &format!("{id}.weight"),
                    TensorData::f32(&kernel, layer.linear.weight.data.clone()),
                )?;
                // The bias as Conv's own input: tract folds a broadcast `Add` of shape
                // (C, 1, 1) into the convolution and then rejects it once it drops the batch
                // axis (tract 0.23, `ChangeAxes`).
                let b = g.initializer(&format!("{id}.bias"), TensorData::f32(&[out], bias))?;
                g.node("Conv", &[x, &w, &b], attrs())?
            }
            LinearForm::Int8 { input, smoothing } => {
                // One scale per output channel, over that channel's flattened kernel: the
                // matrix form of the kernel is exactly what `QuantizedWeight` quantizes.
                let q = match &smoothing {
                    Some(s) => QuantizedWeight::of(&s.smoothed(layer)),
                    None => QuantizedWeight::of(&layer.linear),
                };
                let product = Int8Product {
                    op: "ConvInteger",
                    weight: TensorData::i8(&kernel, q.by_output()),
                    rescale_dims: vec![out, 1, 1],
                    attrs: attrs(),
                };
                let y = self.int8_product(g, id, x, &q, input, smoothing.as_ref(), product)?;
                let b =
                    g.initializer(&format!("{id}.bias"), TensorData::f32(&[out, 1, 1], bias))?;
                g.node("Add", &[&y, &b], vec![])?
            }
        };
        if layer.relu {
            g.node("Relu", &[&y], vec![])
        } else {
            Ok(y)
        }
    }

    fn int8_matmul(
        &mut self,
        g: &mut GraphBuilder,
        id: LinearId,
        x: &Value,
        layer: &LinearWeights,
        input: ActivationQuant,
    ) -> Result<Value, GraphError> {
        let q = QuantizedWeight::of(layer);
        let product = Int8Product {
            op: "MatMulInteger",
            weight: TensorData::i8(&[q.inputs, q.outputs], q.values.clone()),
            rescale_dims: vec![q.outputs],
            attrs: vec![],
        };
        self.int8_product(g, id, x, &q, input, None, product)
    }

    /// `QuantizeLinear(x)` → the integer product → `Cast` (f32) → `Mul(s_x · s_w)`. With
    /// `smoothing`, the quantization step is `s_x · s_c` along the channel axis (1).
    #[allow(clippy::too_many_arguments)]
    fn int8_product(
        &mut self,
        g: &mut GraphBuilder,
        id: LinearId,
        x: &Value,
        q: &QuantizedWeight,
        input: ActivationQuant,
        smoothing: Option<&ChannelSmoothing>,
        product: Int8Product,
    ) -> Result<Value, GraphError> {
        let zp = self.zero_point(g, input.zero_point)?;
        let (s_x, quantize_attrs) = match smoothing {
            None => (TensorData::scalar_f32(input.scale), vec![]),
            Some(s) => {
                let steps: Vec<f32> = s.factors.iter().map(|f| f * input.scale).collect();
                (
                    TensorData::f32(&[steps.len()], steps),
                    vec![attr::int("axis", 1)],
                )
            }
        };
        let s_x = g.initializer(&format!("{id}.input_scale"), s_x)?;
        let w = g.initializer(&format!("{id}.weight_q"), product.weight)?;
        let rescale: Vec<f32> = q.scales.iter().map(|s| s * input.scale).collect();
        let rescale = g.initializer(
            &format!("{id}.rescale"),
            TensorData::f32(&product.rescale_dims, rescale),
        )?;
        let xq = g.node("QuantizeLinear", &[x, &s_x, &zp], quantize_attrs)?;
        let acc = g.node(product.op, &[&xq, &w, &zp], product.attrs)?;
        let accf = g.node(
            "Cast",
            &[&acc],
            vec![attr::int("to", ElemType::F32.onnx() as i64)],
        )?;
        g.node("Mul", &[&accf, &rescale], vec![])
    }

    /// The u8 zero point `value`, one initializer per value shared by every quantized layer.
    fn zero_point(&mut self, g: &mut GraphBuilder, value: u8) -> Result<Value, GraphError> {
        if let Some(v) = self.zero_points.get(&value) {
            return Ok(v.clone());
        }
        let v = g.initializer(
            &format!("int8.activation_zero_point_{value}"),
            TensorData::scalar_u8(value),
        )?;
        self.zero_points.insert(value, v.clone());
        Ok(v)
    }
}

fn float_matmul(
    g: &mut GraphBuilder,
    id: LinearId,
    x: &Value,
    layer: &LinearWeights,
) -> Result<Value, GraphError> {
    let wt = layer.weight.transposed();
    let w = g.initializer(
        &format!("{id}.weight_t"),
        TensorData::f32(&[wt.rows, wt.cols], wt.data),
    )?;
    g.node("MatMul", &[x, &w], vec![])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_block_and_plans_default_to_float() {
        assert_eq!(LinearId::Fc2(3).to_string(), "block3.fc2");
        assert_eq!(LinearId::Patch.to_string(), "patch");
        let mut plan = LinearPlan::float();
        assert_eq!(plan.form(LinearId::Qkv(0)), LinearForm::Float);
        let input = ActivationQuant::for_range(63.5, false);
        plan.set(LinearId::Qkv(0), LinearForm::int8(input));
        assert_eq!(plan.int8_count(), 1);
        assert!(LinearId::Patch < LinearId::Qkv(0) && LinearId::Fc2(9) < LinearId::Projection);
    }
}
