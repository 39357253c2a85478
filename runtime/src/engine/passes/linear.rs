//! Our pass over the decluttered int8 model, before tract optimizes it: every int8 linear layer
//! our export writes (`MatMulInteger(u8 x, s8 W, a_zero_point) → Cast(f32) → Mul(rescale) →
//! Add(bias)`, which tract-onnx turns into a quantized `EinSum` and three float ops) becomes one
//! [`Int8Linear`] node running the int8 product kernel of its [`Kernels`] table on an
//! [`Int8Gemm`].
//!
//! The weights, the zero-point correction, the rescale and the bias are read from the graph's
//! constants once, at load; the output is bit-identical to tract's plan for the same layer
//! (`engine`'s int8 tests, end to end). With [`Fusion::QuickGelu`] a QuickGELU after a layer
//! becomes part of it too, computed over each finished output tile; that activation is not
//! tract's bits but a few ulp from the definition. A layer that is not exactly this pattern (a
//! weight zero point, weights that are not constant, an output whose columns do not come last)
//! is left to tract.

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cast::Cast;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::math::{Add, Mul};
use tract_onnx::tract_core::ops::nn::Sigmoid;

use super::rewrite::{column_constant, constant_values, only_successor, replace_each, Replacement};
use crate::engine::kernels::{Activation, Int8Gemm, Kernels};
use crate::engine::INT8_LINEAR_OP;

/// One int8 linear layer: u8 activations `T × K` in, f32 `T × N` out, each in the shape of the
/// product it replaces.
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Linear {
    gemm: Arc<Int8Gemm>,
    kernels: &'static Kernels,
    /// The permutation that makes the input rows × k ([`Geometry::a_order`]).
    a_order: Option<Vec<usize>>,
    output_shape: TVec<usize>,
}

impl Eq for Int8Linear {}

impl Int8Linear {
    /// The name of the kernel the layer runs on.
    pub fn kernel_name(&self) -> &'static str {
        self.kernels.int8_gemm_kernel().name
    }
}

impl Op for Int8Linear {
    fn name(&self) -> StaticName {
        INT8_LINEAR_OP.into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let activation = match self.gemm.activation() {
            Activation::Identity => String::new(),
            Activation::QuickGelu { alpha } => format!(", then QuickGELU (alpha {alpha})"),
        };
        Ok(vec![format!(
            "{}×{} int8{activation}, {}",
            self.gemm.k(),
            self.gemm.n(),
            self.kernel_name()
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Int8Linear {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let plain = inputs[0].try_as_plain_ram()?;
        let ordered;
        let a = match &self.a_order {
            None => plain.as_slice::<u8>()?,
            Some(order) => {
                ordered = permuted(plain.as_slice::<u8>()?, inputs[0].shape(), order);
                &ordered[..]
            }
        };
        // SAFETY: f32 has no invalid bit patterns, and the kernel writes every value of the
        // output before anything reads it.
        let mut output = unsafe { Tensor::uninitialized::<f32>(&self.output_shape)? };
        {
            let mut out = output.try_as_plain_ram_mut()?;
            let out = out.as_slice_mut::<f32>()?;
            if a.len() / self.gemm.k() != out.len() / self.gemm.n() {
                bail!(
                    "{INT8_LINEAR_OP}: {} input values for {} outputs of {}×{}",
                    a.len(),
                    out.len(),
                    self.gemm.k(),
                    self.gemm.n()
                );
            }
            self.kernels.int8_gemm(&self.gemm, a, out);
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for Int8Linear {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        if inputs[0].datum_type != u8::datum_type() {
            bail!("{INT8_LINEAR_OP} takes u8, got {:?}", inputs[0].datum_type);
        }
        let rows: usize = self.output_shape.iter().product::<usize>() / self.gemm.n();
        if inputs[0].shape.volume() != (rows * self.gemm.k()).to_dim() {
            bail!(
                "{INT8_LINEAR_OP} takes {rows}×{} values, got shape {:?}",
                self.gemm.k(),
                inputs[0].shape
            );
        }
        Ok(tvec!(f32::datum_type().fact(self.output_shape.clone())))
    }

    as_op!();
}

/// Which activations after a layer [`replace_linears`] takes into the layer's op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fusion {
    /// None: every output bit stays tract's.
    Exact,
    /// QuickGELU `x · σ(1.702 · x)` (CLIP's MLP) too, computed over each finished output tile
    /// to a few ulp of the definition ([`Activation::QuickGelu`]) rather than with tract's
    /// coarser sigmoid.
    QuickGelu,
}

/// Replaces every int8 linear layer of a decluttered model by [`Int8Linear`] on `kernels`,
/// with the activations `fusion` allows; returns how many were replaced.
pub fn replace_linears(
    model: &mut TypedModel,
    fusion: Fusion,
    kernels: &'static Kernels,
) -> TractResult<usize> {
    replace_each(model, "int8_linear", |model, id| {
        linear_at(model, id, fusion, kernels)
    })
}

/// The layer whose quantized `EinSum` is node `id`, if the whole pattern holds: our op, the
/// activations it reads and the outlet it replaces.
fn linear_at(
    model: &TypedModel,
    id: usize,
    fusion: Fusion,
    kernels: &'static Kernels,
) -> TractResult<Option<Replacement<Int8Linear>>> {
    let node = model.node(id);
    let Some(einsum) = node.op_as::<EinSum>() else {
        return Ok(None);
    };
    if einsum.q_params != Some(i32::datum_type()) || node.inputs.len() != 9 {
        return Ok(None);
    }
    let facts = model.node_input_facts(id)?;
    let output_fact = model.outlet_fact(OutletId::new(id, 0))?;
    let Some(geometry) = Geometry::of(einsum, &facts, output_fact) else {
        return Ok(None);
    };
    let Some(zero_point) = trivial_quant_params(&facts)? else {
        return Ok(None);
    };
    let Some(rescaled) = rescale_chain(model, id, geometry.n)? else {
        return Ok(None);
    };
    if rescaled.shape.iter().product::<usize>() != geometry.outputs {
        return Ok(None);
    }
    let w = geometry.weights(facts[1])?;
    let Ok(mut gemm) = Int8Gemm::new(
        &w,
        geometry.k,
        geometry.n,
        zero_point,
        &rescaled.scale,
        &rescaled.bias,
    ) else {
        return Ok(None);
    };
    let mut output = rescaled.output;
    if fusion == Fusion::QuickGelu {
        if let Some((alpha, activated)) = quick_gelu_after(model, output)? {
            gemm = gemm.with_activation(Activation::QuickGelu { alpha });
            output = activated;
        }
    }
    Ok(Some(Replacement {
        op: Int8Linear {
            gemm: Arc::new(gemm),
            kernels,
            a_order: geometry.a_order,
            output_shape: rescaled.shape,
        },
        inputs: tvec![node.inputs[0]],
        output,
    }))
}

/// If `x` is read only by the three nodes of QuickGELU, `x · Sigmoid(x · alpha)` (a `Mul` by one
/// constant, a `Sigmoid`, a `Mul` by `x`), alpha and the last node's output.
fn quick_gelu_after(model: &TypedModel, x: OutletId) -> TractResult<Option<(f32, OutletId)>> {
    let readers = model.outlet_successors(x);
    if model.output_outlets()?.contains(&x) || readers.len() != 2 {
        return Ok(None);
    }
    for reader in readers {
        let scaled = model.node(reader.node);
        let Some(alpha) = column_constant::<Mul>(model, scaled, x.node, 1)? else {
            continue;
        };
        let Some(sigmoid) = only_successor(model, scaled.id)? else {
            continue;
        };
        let is_sigmoid = sigmoid
            .op_as::<ElementWiseOp>()
            .is_some_and(|op| op.0.is::<Sigmoid>() && op.1.is_none());
        let Some(product) = only_successor(model, sigmoid.id)? else {
            continue;
        };
        let is_product = product
            .op_as::<TypedBinOp>()
            .is_some_and(|op| op.0.is::<Mul>() && op.1.is_none());
        // The product of x and the sigmoid (so also x's other reader): x · σ(alpha · x).
        let of_x_and_sigmoid = product.inputs.len() == 2
            && product.inputs.contains(&x)
            && product.inputs.contains(&OutletId::new(sigmoid.id, 0));
        if is_sigmoid && is_product && of_x_and_sigmoid {
            return Ok(Some((alpha[0], OutletId::new(product.id, 0))));
        }
    }
    Ok(None)
}

/// How a quantized `EinSum` maps onto rows × k times k × n. tract folds reshapes and
/// transposes into its products, so one layer can have several row axes (the patch
/// embedding's grid), several contraction axes (attention heads × head width) and axes of
/// length 1 anywhere.
struct Geometry {
    k: usize,
    n: usize,
    /// The permutation that puts the activations in the order unit axes, rows…, contraction…
    /// (`None` where they already are, up to axes of length 1).
    a_order: Option<Vec<usize>>,
    /// The permutation that puts the weights in the order unit axes, contraction…, n.
    w_order: Vec<usize>,
    /// Values of the product's output, rows × n.
    outputs: usize,
}

impl Geometry {
    /// The geometry of a product of u8 activations by constant s8 weights into rows × n
    /// (output axes in the order rows…, n, up to axes of length 1); `None` for anything else.
    fn of(einsum: &EinSum, facts: &[&TypedFact], output: &TypedFact) -> Option<Self> {
        let (a, w) = (facts[0], facts[1]);
        if a.datum_type != u8::datum_type() || output.datum_type != i32::datum_type() {
            return None;
        }
        let weights = w.konst.as_ref()?;
        if weights.datum_type() != i8::datum_type() {
            return None;
        }
        let (a_shape, o_shape) = (a.shape.as_concrete()?, output.shape.as_concrete()?);
        let w_shape = weights.shape();
        // (position in a, position in the output) of rows; (in a, in w) of contractions.
        let (mut rows, mut contractions, mut columns) = (vec![], vec![], vec![]);
        for axis in einsum.axes.iter_all_axes() {
            let at = |positions: &TVec<usize>| match positions.as_slice() {
                [] => Some(None),
                [p] => Some(Some(*p)),
                _ => None,
            };
            let places = (
                at(&axis.inputs[0])?,
                at(&axis.inputs[1])?,
                at(&axis.outputs[0])?,
            );
            let unit = |shape: &[usize], p: Option<usize>| p.is_none_or(|p| shape[p] == 1);
            match places {
                (Some(pa), None, Some(po)) => rows.push((pa, po)),
                (Some(pa), Some(pw), None) => contractions.push((pa, pw)),
                (None, Some(pw), Some(po)) => columns.push((pw, po)),
                (pa, pw, po) if unit(a_shape, pa) && unit(w_shape, pw) && unit(o_shape, po) => {}
                _ => return None,
            }
        }
        let [(w_n, o_n)] = columns[..] else {
            return None;
        };
        rows.sort_by_key(|&(_, po)| po);
        contractions.sort_by_key(|&(_, pw)| pw);
        let rows_before_n = rows.iter().all(|&(_, po)| po < o_n || o_shape[po] == 1);
        let same_k = contractions
            .iter()
            .all(|&(pa, pw)| a_shape[pa] == w_shape[pw]);
        let same_rows = rows.iter().all(|&(pa, po)| a_shape[pa] == o_shape[po]);
        if !(rows_before_n && same_k && same_rows && w_shape[w_n] == o_shape[o_n]) {
            return None;
        }
        let a_axes: Vec<usize> = rows
            .iter()
            .map(|&(pa, _)| pa)
            .chain(contractions.iter().map(|&(pa, _)| pa))
            .collect();
        let w_axes: Vec<usize> = contractions
            .iter()
            .map(|&(_, pw)| pw)
            .chain([w_n])
            .collect();
        let a_order = with_unit_axes_first(&a_axes, a_shape.len());
        let in_order = a_axes.iter().filter(|&&p| a_shape[p] != 1).is_sorted();
        Some(Self {
            k: contractions.iter().map(|&(pa, _)| a_shape[pa]).product(),
            n: o_shape[o_n],
            a_order: (!in_order).then_some(a_order),
            w_order: with_unit_axes_first(&w_axes, w_shape.len()),
            outputs: o_shape.iter().product(),
        })
    }

    /// The weights as k × n, row-major.
    fn weights(&self, fact: &TypedFact) -> TractResult<Vec<i8>> {
        let tensor = fact.konst.as_ref().context("constant weights")?;
        let ordered = tensor.as_ref().clone().permute_axes(&self.w_order)?;
        let plain = ordered.try_as_plain_ram()?;
        Ok(plain.as_slice::<i8>()?.to_vec())
    }
}

/// `x` (row-major, of `shape`) with its axes in `order` (the result's axis i is the input's
/// axis `order[i]`, as tract's `permute_axes`), copied run by run: where the result's last axis
/// is the input's last, each of its rows is one contiguous copy. (tract's `permute_axes` built
/// an index on the heap for every value: on the patch embedding of a ViT-B/16, 150 528 values,
/// a fifth of an int8 frame's instructions on aarch64 went to `malloc` and `free`.)
fn permuted(x: &[u8], shape: &[usize], order: &[usize]) -> Vec<u8> {
    let rank = shape.len();
    let mut strides = vec![1; rank];
    for axis in (0..rank.saturating_sub(1)).rev() {
        strides[axis] = strides[axis + 1] * shape[axis + 1];
    }
    let sizes: Vec<usize> = order.iter().map(|&axis| shape[axis]).collect();
    let steps: Vec<usize> = order.iter().map(|&axis| strides[axis]).collect();
    // The run: the result's last axis where it is contiguous in the input, else one value.
    let (run, outer) = match steps.last() {
        Some(1) => (sizes[rank - 1], rank - 1),
        _ => (1, rank),
    };
    let mut out = Vec::with_capacity(x.len());
    let mut index = vec![0; outer];
    for _ in 0..x.len().checked_div(run).unwrap_or(0) {
        let at: usize = index.iter().zip(&steps).map(|(i, step)| i * step).sum();
        out.extend_from_slice(&x[at..at + run]);
        for axis in (0..outer).rev() {
            index[axis] += 1;
            if index[axis] < sizes[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

/// A permutation of `rank` axes: those not in `axes` (all of length 1) first, then `axes`.
fn with_unit_axes_first(axes: &[usize], rank: usize) -> Vec<usize> {
    (0..rank)
        .filter(|p| !axes.contains(p))
        .chain(axes.iter().copied())
        .collect()
}

/// The activation zero point, if the other quantization inputs of the `EinSum` are the ones
/// `MatMulInteger` without a weight zero point wires: bias 0, scales 1, weight and output zero
/// points 0. Input order: a, b, bias, a0, a_scale, b0, b_scale, c0, c_scale.
fn trivial_quant_params(facts: &[&TypedFact]) -> TractResult<Option<u8>> {
    for (input, value) in [(2, 0.0), (4, 1.0), (5, 0.0), (6, 1.0), (7, 0.0), (8, 1.0)] {
        if !constant_equal_to(facts[input], value)? {
            return Ok(None);
        }
    }
    let Some(zp) = constant_values(facts[3])? else {
        return Ok(None);
    };
    match zp.as_slice() {
        [z] if (0.0..=255.0).contains(z) && z.fract() == 0.0 => Ok(Some(*z as u8)),
        _ => Ok(None),
    }
}

fn constant_equal_to(fact: &TypedFact, value: f32) -> TractResult<bool> {
    Ok(constant_values(fact)?.is_some_and(|v| v.iter().all(|&x| x == value)))
}

/// The float steps after the product (and any reshapes tract moved behind it): `Cast` to f32, `Mul` by a per-column (or single)
/// constant, then an optional `Add` of a per-column (or single) constant.
struct Rescaled {
    scale: Vec<f32>,
    bias: Vec<f32>,
    /// The last outlet of the chain.
    output: OutletId,
    /// Its shape: rows × n, n last.
    shape: TVec<usize>,
}

fn rescale_chain(model: &TypedModel, einsum: usize, n: usize) -> TractResult<Option<Rescaled>> {
    // Reshapes tract folded out of the product may come first; they keep the element order.
    let mut cast = einsum;
    let cast = loop {
        let Some(next) = only_successor(model, cast)? else {
            return Ok(None);
        };
        match next.op_as::<AxisOp>() {
            Some(AxisOp::Move(..)) => return Ok(None),
            Some(_) => cast = next.id,
            None => break next,
        }
    };
    if cast
        .op_as::<Cast>()
        .is_none_or(|c| c.to != f32::datum_type())
    {
        return Ok(None);
    }
    let Some(mul) = only_successor(model, cast.id)? else {
        return Ok(None);
    };
    let Some(scale) = column_constant::<Mul>(model, mul, cast.id, n)? else {
        return Ok(None);
    };
    let after_mul = OutletId::new(mul.id, 0);
    let add = only_successor(model, mul.id)?;
    let bias = match add {
        Some(add) => column_constant::<Add>(model, add, mul.id, n)?.map(|b| (b, add.id)),
        None => None,
    };
    let (bias, output) = match bias {
        Some((bias, add)) => (bias, OutletId::new(add, 0)),
        // x + (−0) is x for every x, −0 included: "no bias" without changing a bit.
        None => (vec![-0.0; n], after_mul),
    };
    let fact = model.outlet_fact(output)?;
    let shape = fact.shape.as_concrete();
    if fact.datum_type != f32::datum_type() || shape.and_then(|s| s.last()) != Some(&n) {
        return Ok(None);
    }
    Ok(Some(Rescaled {
        scale,
        bias,
        output,
        shape: shape.unwrap_or_default().into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permuted_is_tracts_permutation() {
        // The ViT patch embedding's (1, C, gy, py, gx, px) → (1, gy, gx, C, py, px), a
        // permutation moving the last axis, and ones with axes of length 1 and 0.
        let cases: [(&[usize], &[usize]); 5] = [
            (&[1, 3, 4, 5, 4, 5], &[0, 2, 4, 1, 3, 5]),
            (&[2, 3, 4], &[2, 0, 1]),
            (&[3, 1, 2], &[1, 2, 0]),
            (&[5, 7], &[1, 0]),
            (&[2, 0, 3], &[0, 2, 1]),
        ];
        for (shape, order) in cases {
            let len = shape.iter().product::<usize>();
            let x: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let tensor = Tensor::from_shape(shape, &x).unwrap();
            let theirs = tensor.permute_axes(order).unwrap();
            let ours = permuted(&x, shape, order);
            assert_eq!(
                ours,
                theirs.try_as_plain_ram().unwrap().as_slice::<u8>().unwrap(),
                "{shape:?} by {order:?}"
            );
        }
    }
}
