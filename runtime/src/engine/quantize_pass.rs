//! Our pass over tract's optimized int8 plan: every static `QuantizeLinear` to u8 (tract's
//! `QuantizeLinearU8`) becomes [`Quantize`], which computes the same bytes with a loop the
//! compiler vectorizes.
//!
//! tract 0.23.9 quantizes element by element through a branchy scalar rounding function; on a
//! ViT-B/16 the 50 activation quantizations (12.7 M values per frame) took 16 % of the int8
//! frame, more than every op but the matrix products (`xrvlm bench --profile`,
//! BENCHMARKS.md). [`Quantize`] clamps first, then rounds to nearest even by adding 1.5·2²³
//! (exact in IEEE single precision for |v| < 2²², which the clamp guarantees) and reading the
//! integer off the sum's low bits, so the loop has no branch, no call and no float-to-int cast. The output is bit-identical to tract's
//! op (tested around every rounding tie here, and end to end on a model in `engine`'s tests)
//! except where tract's own integer addition overflows, for x / scale ≥ 2³¹ − zero point: there
//! tract wraps (to 0 in a release build) and this op saturates to 255, as ONNX specifies.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::quant::QuantizeLinearU8;

/// `y = clamp(round_ties_even(x · inv_scale) + zero_point, 0, 255)` as u8, for f32 `x`: the
/// arithmetic of tract's `QuantizeLinearU8`, which multiplies by the reciprocal of the ONNX
/// scale.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantize {
    /// 1 / the ONNX `y_scale`.
    pub inv_scale: f32,
    /// The u8 zero point.
    pub zero_point: u8,
}

/// 1.5 · 2²³: adding it to an f32 of magnitude below 2²² rounds it to the nearest integer,
/// ties to even (the FPU's default rounding), and leaves that integer in the sum's low
/// mantissa bits.
const ROUND: f32 = 12_582_912.0;

impl Quantize {
    /// Quantizes `xs` into `ys` (same length), with the widest vectors this CPU has: the same
    /// loop compiled for AVX-512 or AVX2 where the CPU has them (a default x86-64 build is
    /// SSE2 only, and quantizing a ViT-B/16 frame took 25 ms there against 5 ms built for the
    /// CPU). Every path does the same IEEE operations, so the bytes are the same.
    pub fn apply(&self, xs: &[f32], ys: &mut [u8]) {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") {
                // SAFETY: the features were just detected.
                return unsafe { self.apply_avx512(xs, ys) };
            }
            if is_x86_feature_detected!("avx2") {
                // SAFETY: the feature was just detected.
                return unsafe { self.apply_avx2(xs, ys) };
            }
        }
        self.apply_portable(xs, ys)
    }

    /// [`Self::apply_portable`] compiled for AVX-512.
    ///
    /// # Safety
    /// The CPU has AVX-512 F and BW.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn apply_avx512(&self, xs: &[f32], ys: &mut [u8]) {
        self.apply_portable(xs, ys)
    }

    /// [`Self::apply_portable`] compiled for AVX2.
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn apply_avx2(&self, xs: &[f32], ys: &mut [u8]) {
        self.apply_portable(xs, ys)
    }

    /// The loop, for whatever vectors the build targets.
    #[inline(always)]
    fn apply_portable(&self, xs: &[f32], ys: &mut [u8]) {
        // Anything beyond ±256 saturates to 0 or 255 whatever the zero point, so clamping
        // before rounding changes no output and keeps |v| far below 2²².
        // After adding ROUND, the low bits of the sum are the rounded integer: r is read off
        // the bit pattern, which vectorizes where a float-to-int cast does not (measured:
        // 7 ms against 23–48 ms for 12.7 M values). NaN becomes 0 first, as tract's cast
        // makes it.
        let zp = self.zero_point as i32;
        let offset = ROUND.to_bits() as i32;
        for (x, y) in xs.iter().zip(ys.iter_mut()) {
            let v = (x * self.inv_scale).clamp(-256.0, 256.0);
            let v = if v.is_nan() { 0.0 } else { v };
            let rounded = (v + ROUND).to_bits() as i32 - offset;
            *y = (rounded + zp).clamp(0, 255) as u8;
        }
    }
}

impl Op for Quantize {
    fn name(&self) -> StaticName {
        "Quantize(xrvlm)".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "1/scale: {} zero_point: {}",
            self.inv_scale, self.zero_point
        )])
    }

    op_as_typed_op!();
}

impl Eq for Quantize {}

impl EvalOp for Quantize {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = &inputs[0];
        let mut output = unsafe { Tensor::uninitialized::<u8>(input.shape())? };
        {
            let plain = input.try_as_plain_ram()?;
            let xs = plain.as_slice::<f32>()?;
            let mut out = output.try_as_plain_ram_mut()?;
            let ys = out.as_slice_mut::<u8>()?;
            let len = ys.len();
            tract_linalg::multithread::par_chunks_mut(ys, 1, len, |first, chunk| {
                self.apply(&xs[first..first + chunk.len()], chunk);
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

/// Replaces every f32 → u8 `QuantizeLinearU8` of an optimized model by [`Quantize`]; returns
/// how many were replaced.
pub fn replace_quantizers(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in 0..model.nodes().len() {
        let Some(quantize) = fast_quantize(model, id)? else {
            continue;
        };
        model.node_mut(id).op = Box::new(quantize);
        replaced += 1;
    }
    Ok(replaced)
}

/// The [`Quantize`] for node `id`, if it is a plain f32 → u8 `QuantizeLinearU8`.
fn fast_quantize(model: &TypedModel, id: usize) -> TractResult<Option<Quantize>> {
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
    Ok(Some(Quantize {
        inv_scale: op.scale,
        zero_point: op.zero_point,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::tract_core::ops::quant::quantize_linear_f32_u8;

    /// Values on, just below and just above every rounding tie from −300 to 300, the
    /// saturation edges, signed zeros, infinities and NaN, at several scales and zero points.
    fn awkward_values() -> Vec<f32> {
        let mut xs = vec![
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
            1e30,
            -1e30,
        ];
        for half in -600..=600 {
            let tie = half as f32 * 0.5;
            xs.extend([tie, tie.next_down(), tie.next_up()]);
        }
        xs
    }

    #[test]
    fn matches_tracts_quantize_linear_bit_for_bit() {
        let values = awkward_values();
        for inv_scale in [1.0f32, 0.5, 2.0, 1.0 / 0.037, 31.75, 1e-3] {
            for zero_point in [0u8, 1, 127, 128, 200, 255] {
                let op = Quantize {
                    inv_scale,
                    zero_point,
                };
                let mut ours = vec![0u8; values.len()];
                op.apply(&values, &mut ours);
                let mut portable = vec![0u8; values.len()];
                op.apply_portable(&values, &mut portable);
                assert_eq!(ours, portable, "1/scale {inv_scale} zp {zero_point}");
                for (x, y) in values.iter().zip(&ours) {
                    if x * inv_scale >= 2f32.powi(30) {
                        // tract's `as i32 + zero_point` overflows there (see the module doc).
                        assert_eq!(*y, 255, "x {x:e} saturates");
                        continue;
                    }
                    let theirs = quantize_linear_f32_u8(*x, inv_scale, zero_point as i32);
                    assert_eq!(*y, theirs, "x {x:e} 1/scale {inv_scale} zp {zero_point}");
                }
            }
        }
    }
}
