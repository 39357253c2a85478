//! Our pass over the decluttered int8 model, before tract optimizes it: each block's attention
//! core, which tract-onnx decodes from the export's `MatMul → Softmax → MatMul` into
//! `EinSum(mbk,nbk->bmn) → Softmax(axis 2) → EinSum(bmk,kbn->mbn)` over q, k, v of shape
//! (tokens, heads, width), becomes one [`Attention`] node running the attention kernel of its
//! [`Kernels`] table.
//!
//! Unlike [`super::linear`], the output is not tract's bits: tract's softmax uses a faster,
//! coarser exponential. The kernels are held to the f64 definition (their tests), and the int8
//! plan with this pass to tract's int8 plan end to end (`engine`'s int8 tests). A pattern that
//! differs in any way (another contraction, a softmax over another axis, a product read by
//! anything else, shapes that are not concrete) is left to tract.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::nn::{Softmax, SoftmaxKind};

use super::rewrite::{only_successor, replace_each, Replacement};
use crate::engine::kernels::{Heads, Kernels};
use crate::engine::ATTENTION_OP;

/// Attention over q, k, v of shape (tokens, heads, width), f32, into the same shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attention {
    shape: Heads,
    kernels: &'static Kernels,
}

impl Op for Attention {
    fn name(&self) -> StaticName {
        ATTENTION_OP.into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let Heads {
            tokens,
            heads,
            width,
        } = self.shape;
        Ok(vec![format!(
            "{tokens} tokens, {heads} heads of {width}, f32, {}",
            self.kernels.attention_kernel().name
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Attention {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let s = self.shape;
        // SAFETY: f32 has no invalid bit patterns, and the kernel writes every value of the
        // output before anything reads it.
        let mut output = unsafe { Tensor::uninitialized::<f32>(&[s.tokens, s.heads, s.width])? };
        {
            let views: Vec<_> = inputs
                .iter()
                .map(|x| x.try_as_plain_ram())
                .collect::<TractResult<_>>()?;
            let [q, k, v] = &views[..] else {
                bail!("{} takes q, k and v", ATTENTION_OP);
            };
            let (q, k, v) = (
                q.as_slice::<f32>()?,
                k.as_slice::<f32>()?,
                v.as_slice::<f32>()?,
            );
            for (name, x) in [("q", q), ("k", k), ("v", v)] {
                if x.len() != s.values() {
                    bail!(
                        "{}: {name} holds {} values, not {s:?}",
                        ATTENTION_OP,
                        x.len()
                    );
                }
            }
            let mut out = output.try_as_plain_ram_mut()?;
            self.kernels
                .attention(s, q, k, v, out.as_slice_mut::<f32>()?);
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for Attention {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let s = self.shape;
        let shape = [s.tokens, s.heads, s.width];
        for (name, fact) in ["q", "k", "v"].iter().zip(inputs) {
            if fact.datum_type != f32::datum_type() || fact.shape.as_concrete() != Some(&shape) {
                bail!(
                    "{} takes {name} of f32 {shape:?}, got {:?}",
                    ATTENTION_OP,
                    fact
                );
            }
        }
        Ok(tvec!(f32::datum_type().fact(shape)))
    }

    as_op!();
}

/// Replaces every attention core of a decluttered model by [`Attention`] on `kernels`;
/// returns how many were replaced.
pub fn replace_attention(model: &mut TypedModel, kernels: &'static Kernels) -> TractResult<usize> {
    replace_each(model, "attention", |model, id| core_at(model, id, kernels))
}

/// The attention core whose scores are node `id`, if the whole pattern holds: our op, its q,
/// k, v and the outlet it replaces.
fn core_at(
    model: &TypedModel,
    id: usize,
    kernels: &'static Kernels,
) -> TractResult<Option<Replacement<Attention>>> {
    let scores = model.node(id);
    if !is_float_product(scores, "mbk,nbk->bmn")? {
        return Ok(None);
    }
    let Some(softmax) = only_successor(model, id)? else {
        return Ok(None);
    };
    let is_softmax = softmax.op_as::<Softmax>().is_some_and(|op| {
        op.kind == SoftmaxKind::Softmax && op.quant_output_dt.is_none() && *op.axes == [2]
    });
    if !is_softmax {
        return Ok(None);
    }
    let Some(weighted) = only_successor(model, softmax.id)? else {
        return Ok(None);
    };
    if !is_float_product(weighted, "bmk,kbn->mbn")?
        || weighted.inputs[0] != OutletId::new(softmax.id, 0)
    {
        return Ok(None);
    }
    let inputs = [scores.inputs[0], scores.inputs[1], weighted.inputs[1]];
    let output = OutletId::new(weighted.id, 0);
    let Some(shape) = common_shape(model, &inputs, output)? else {
        return Ok(None);
    };
    Ok(Some(Replacement {
        op: Attention { shape, kernels },
        inputs: inputs.into_iter().collect(),
        output,
    }))
}

/// Whether `node` is a two-operand f32 `EinSum` with the axes of `expected`, whatever letters
/// tract gave them.
fn is_float_product(node: &TypedNode, expected: &str) -> TractResult<bool> {
    let Some(einsum) = node.op_as::<EinSum>() else {
        return Ok(false);
    };
    Ok(einsum.q_params.is_none()
        && einsum.operating_dt == f32::datum_type()
        && node.inputs.len() == 2
        && places(&einsum.axes) == places(&expected.parse()?))
}

/// Each axis as its positions in the two inputs and the output, sorted: the mapping with the
/// letters forgotten.
fn places(axes: &AxesMapping) -> Vec<[Vec<usize>; 3]> {
    let mut places: Vec<[Vec<usize>; 3]> = axes
        .iter_all_axes()
        .map(|axis| {
            [
                axis.inputs[0].to_vec(),
                axis.inputs.get(1).map_or(vec![], |p| p.to_vec()),
                axis.outputs[0].to_vec(),
            ]
        })
        .collect();
    places.sort();
    places
}

/// The shape q, k, v and the output share, if they are all f32 (tokens, heads, width).
fn common_shape(
    model: &TypedModel,
    inputs: &[OutletId; 3],
    output: OutletId,
) -> TractResult<Option<Heads>> {
    let mut shapes = vec![];
    for &outlet in inputs.iter().chain([&output]) {
        let fact = model.outlet_fact(outlet)?;
        if fact.datum_type != f32::datum_type() {
            return Ok(None);
        }
        shapes.push(fact.shape.as_concrete().map(<[usize]>::to_vec));
    }
    Ok(match &shapes[..] {
        [Some(first), rest @ ..] if rest.iter().all(|s| s.as_ref() == Some(first)) => {
            match first[..] {
                [tokens, heads, width] if tokens * heads * width > 0 => Some(Heads {
                    tokens,
                    heads,
                    width,
                }),
                _ => None,
            }
        }
        _ => None,
    })
}
