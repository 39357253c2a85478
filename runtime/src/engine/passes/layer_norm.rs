//! Our pass over the decluttered model, before tract optimizes it: each LayerNorm, which
//! tract-onnx decomposes into six ops (`Reduce<Sum>` over the last axis, `Mul` by 1/C, `Sub`
//! from the input, `RmsNorm`, `Mul` by γ, `Add` of β), becomes one [`LayerNorm`] node that
//! runs the LayerNorm kernel of its [`Kernels`] table over each row.
//!
//! Like [`super::attention`], the output is not tract's bits (the sums run in another order);
//! the kernels' tests hold them to the f64 definition, and the int8 plan with it to tract's plan
//! (`engine`'s int8 tests). Anything else than exactly this chain over the last axis is left
//! to tract.

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::math::{Add, Mul, Sub};
use tract_onnx::tract_core::ops::nn::{Reduce, Reducer, RmsNorm};

use super::rewrite::{column_constant, only_successor, replace_each, Replacement};
use crate::engine::kernels::{Kernels, LayerNormParams};
use crate::engine::LAYER_NORM_OP;

/// LayerNorm over the last axis: `(x − mean) / √(variance + eps) · γ + β` per row.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNorm {
    /// The input's (and output's) shape; the last axis is normalised.
    shape: TVec<usize>,
    /// What the row sum is multiplied by to give the mean (1/C in the export's graph).
    mean_factor: f32,
    eps: f32,
    gamma: Arc<Vec<f32>>,
    beta: Arc<Vec<f32>>,
    kernels: &'static Kernels,
}

impl Eq for LayerNorm {}

impl LayerNorm {
    /// The constants the kernel needs.
    fn params(&self) -> LayerNormParams<'_> {
        LayerNormParams {
            mean_factor: self.mean_factor,
            eps: self.eps,
            gamma: &self.gamma,
            beta: &self.beta,
        }
    }
}

impl Op for LayerNorm {
    fn name(&self) -> StaticName {
        LAYER_NORM_OP.into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{:?}, eps {}, {}",
            self.shape,
            self.eps,
            self.kernels.layer_norm_kernel().name
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for LayerNorm {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        // SAFETY: f32 has no invalid bit patterns, and the kernel writes every value of the
        // output before anything reads it.
        let mut output = unsafe { Tensor::uninitialized::<f32>(&self.shape)? };
        {
            let view = inputs[0].try_as_plain_ram()?;
            let x = view.as_slice::<f32>()?;
            let mut out = output.try_as_plain_ram_mut()?;
            let out = out.as_slice_mut::<f32>()?;
            if x.len() != out.len() {
                bail!(
                    "{}: {} values for shape {:?}",
                    LAYER_NORM_OP,
                    x.len(),
                    self.shape
                );
            }
            self.kernels.layer_norm(&self.params(), x, out);
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for LayerNorm {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let fact = inputs[0];
        if fact.datum_type != f32::datum_type() || fact.shape.as_concrete() != Some(&self.shape) {
            bail!(
                "{} takes f32 {:?}, got {:?}",
                LAYER_NORM_OP,
                self.shape,
                fact
            );
        }
        Ok(tvec!(f32::datum_type().fact(self.shape.clone())))
    }

    as_op!();
}

/// Replaces every LayerNorm of a decluttered model by [`LayerNorm`] on `kernels`; returns how
/// many were replaced.
pub fn replace_layer_norms(
    model: &mut TypedModel,
    kernels: &'static Kernels,
) -> TractResult<usize> {
    replace_each(model, "layer_norm", |model, id| {
        layer_norm_at(model, id, kernels)
    })
}

/// The LayerNorm whose row sum is node `id`, if the whole chain holds: our op, the outlet it
/// normalises and the outlet it replaces.
fn layer_norm_at(
    model: &TypedModel,
    id: usize,
    kernels: &'static Kernels,
) -> TractResult<Option<Replacement<LayerNorm>>> {
    let sum = model.node(id);
    let Some(reduce) = sum.op_as::<Reduce>() else {
        return Ok(None);
    };
    let x = sum.inputs[0];
    let fact = model.outlet_fact(x)?;
    let Some(shape) = fact.shape.as_concrete().map(TVec::from) else {
        return Ok(None);
    };
    let last = shape.len().saturating_sub(1);
    let columns = shape.last().copied().unwrap_or(0);
    if fact.datum_type != f32::datum_type()
        || reduce.reducer != Reducer::Sum
        || *reduce.axes != [last]
        || columns == 0
    {
        return Ok(None);
    }
    let Some(scaled) = only_successor(model, id)? else {
        return Ok(None);
    };
    let Some(mean_factor) = column_constant::<Mul>(model, scaled, id, 1)? else {
        return Ok(None);
    };
    let Some(centred) = only_successor(model, scaled.id)? else {
        return Ok(None);
    };
    let subtracts_mean = centred
        .op_as::<TypedBinOp>()
        .is_some_and(|op| op.0.is::<Sub>() && op.1.is_none())
        && centred.inputs[..] == [x, OutletId::new(scaled.id, 0)];
    if !subtracts_mean {
        return Ok(None);
    }
    let Some(normed) = only_successor(model, centred.id)? else {
        return Ok(None);
    };
    let Some(eps) = normed
        .op_as::<RmsNorm>()
        .filter(|op| op.axis == last)
        .and_then(|op| op.eps.cast_to_scalar::<f32>().ok())
    else {
        return Ok(None);
    };
    let Some(scaling) = only_successor(model, normed.id)? else {
        return Ok(None);
    };
    let Some(gamma) = column_constant::<Mul>(model, scaling, normed.id, columns)? else {
        return Ok(None);
    };
    let Some(shifting) = only_successor(model, scaling.id)? else {
        return Ok(None);
    };
    let Some(beta) = column_constant::<Add>(model, shifting, scaling.id, columns)? else {
        return Ok(None);
    };
    let output = OutletId::new(shifting.id, 0);
    if model.outlet_fact(output)?.shape.as_concrete() != Some(&shape[..]) {
        return Ok(None);
    }
    let op = LayerNorm {
        shape,
        mean_factor: mean_factor[0],
        eps,
        gamma: Arc::new(gamma),
        beta: Arc::new(beta),
        kernels,
    };
    Ok(Some(Replacement {
        op,
        inputs: tvec![x],
        output,
    }))
}
