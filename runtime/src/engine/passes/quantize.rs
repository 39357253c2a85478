//! Our pass over tract's optimized int8 plan: every static `QuantizeLinear` to u8 (tract's
//! `QuantizeLinearU8`) becomes [`Quantize`], which computes the same bytes with a loop the
//! compiler vectorizes (the quantize kernels, `kernels::reference::quantize`).
//!
//! tract 0.23.9 quantizes element by element through a branchy scalar rounding function; on a
//! ViT-B/16 the 50 activation quantizations (12.7 M values per frame) took 16 % of the int8
//! frame, more than every op but the matrix products (`xrvlm bench --profile`,
//! BENCHMARKS.md). The kernel clamps first, then rounds to nearest even by adding 1.5·2²³
//! (exact in IEEE single precision for |v| < 2²², which the clamp guarantees) and reading the
//! integer off the sum's low bits, so the loop has no branch, no call and no float-to-int
//! cast. The output is bit-identical to tract's op (tested around every rounding tie in the
//! kernels' tests, and end to end on a model in `engine`'s tests)
//! except where tract's own integer addition overflows, for x / scale ≥ 2³¹ − zero point: there
//! tract wraps (to 0 in a release build) and this op saturates to 255, as ONNX specifies.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::quant::QuantizeLinearU8;

use crate::engine::kernels::{Kernels, Quantization};

/// `y = clamp(round_ties_even(x · inv_scale) + zero_point, 0, 255)` as u8, for f32 `x`: the
/// arithmetic of tract's `QuantizeLinearU8`, which multiplies by the reciprocal of the ONNX
/// scale, on the quantize kernel of a [`Kernels`] table.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantize {
    quantization: Quantization,
    kernels: &'static Kernels,
}

impl Op for Quantize {
    fn name(&self) -> StaticName {
        "Quantize(xrvlm)".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "1/scale: {} zero_point: {}, {}",
            self.quantization.inv_scale,
            self.quantization.zero_point,
            self.kernels.quantize_kernel().name
        )])
    }

    op_as_typed_op!();
}

impl Eq for Quantize {}

impl EvalOp for Quantize {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = &inputs[0];
        // SAFETY: u8 has no invalid bit patterns, and the kernel writes every value of the
        // output before anything reads it.
        let mut output = unsafe { Tensor::uninitialized::<u8>(input.shape())? };
        {
            let plain = input.try_as_plain_ram()?;
            let xs = plain.as_slice::<f32>()?;
            let mut out = output.try_as_plain_ram_mut()?;
            let ys = out.as_slice_mut::<u8>()?;
            let len = ys.len();
            tract_linalg::multithread::par_chunks_mut(ys, 1, len, |first, chunk| {
                let xs = &xs[first..first + chunk.len()];
                self.kernels.quantize(self.quantization, xs, chunk);
                Ok(())
            })?;
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for Quantize {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        if inputs[0].datum_type != f32::datum_type() {
            bail!("Quantize(xrvlm) takes f32, got {:?}", inputs[0].datum_type);
        }
        Ok(tvec!(u8::datum_type().fact(inputs[0].shape.clone())))
    }

    as_op!();
}

/// Replaces every f32 → u8 `QuantizeLinearU8` of an optimized model by [`Quantize`] on
/// `kernels`; returns how many were replaced.
pub fn replace_quantizers(model: &mut TypedModel, kernels: &'static Kernels) -> TractResult<usize> {
    let mut replaced = 0;
    for id in 0..model.nodes().len() {
        let Some(quantize) = fast_quantize(model, id, kernels)? else {
            continue;
        };
        model.node_mut(id).op = Box::new(quantize);
        replaced += 1;
    }
    Ok(replaced)
}

/// The [`Quantize`] for node `id`, if it is a plain f32 → u8 `QuantizeLinearU8`.
fn fast_quantize(
    model: &TypedModel,
    id: usize,
    kernels: &'static Kernels,
) -> TractResult<Option<Quantize>> {
    let node = model.node(id);
    let Some(ElementWiseOp(mini, out_dt)) = node.op_as::<ElementWiseOp>() else {
        return Ok(None);
    };
    let Some(op) = mini.downcast_ref::<QuantizeLinearU8>() else {
        return Ok(None);
    };
    let input = model.outlet_fact(node.inputs[0])?;
    let output = model.outlet_fact(OutletId::new(id, 0))?;
    let plain_u8 = out_dt.is_none_or(|dt| dt == u8::datum_type());
    if input.datum_type != f32::datum_type() || output.datum_type != u8::datum_type() || !plain_u8 {
        return Ok(None);
    }
    let quantization = Quantization {
        inv_scale: op.scale,
        zero_point: op.zero_point,
    };
    Ok(Some(Quantize {
        quantization,
        kernels,
    }))
}
