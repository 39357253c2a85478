//! Our pass over the decluttered model, before tract optimizes it: each LayerNorm, which
//! tract-onnx decomposes into six ops (`Reduce<Sum>` over the last axis, `Mul` by 1/C, `Sub`
//! from the input, `RmsNorm`, `Mul` by γ, `Add` of β), becomes one [`LayerNorm`] node that
//! reads each row once for its mean, once for its variance and once to write the normalised
//! row, on AVX-512.
//!
//! Like [`super::attention_pass`], the output is not tract's bits (the sums run in another
//! order); the tests hold it to the f64 definition, and the int8 plan with it to tract's plan
//! (`engine`'s int8 tests). Anything else than exactly this chain over the last axis is left
//! to tract.

use std::arch::x86_64::*;
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::math::{Add, Mul, Sub};
use tract_onnx::tract_core::ops::nn::{Reduce, Reducer, RmsNorm};

use super::rewrite::{column_constant, only_successor, replace_each, Replacement};
use super::vector_math::{available, lanes, LANES};

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
}

impl Eq for LayerNorm {}

impl LayerNorm {
    fn columns(&self) -> usize {
        self.gamma.len()
    }

    /// Normalises `x` (rows of [`Self::columns`] values) into `out`.
    ///
    /// # Panics
    /// If the CPU lacks AVX-512 F or the lengths disagree.
    fn apply(&self, x: &[f32], out: &mut [f32]) {
        assert!(available(), "LayerNorm(xrvlm) needs AVX-512 F");
        assert_eq!(x.len(), out.len(), "input and output differ in length");
        let c = self.columns();
        for (row, out) in x.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
            // SAFETY: AVX-512 F checked above; `row` and `out` are C values each, as are γ, β.
            unsafe { self.row(row, out) };
        }
    }

    /// One row.
    ///
    /// # Safety
    /// AVX-512 F; `x`, `out`, γ and β all hold C values.
    #[target_feature(enable = "avx512f")]
    unsafe fn row(&self, x: &[f32], out: &mut [f32]) {
        let c = x.len();
        let load = |at: usize| unsafe { _mm512_maskz_loadu_ps(lanes(at, c), x.as_ptr().add(at)) };
        // Everything is taken relative to the row's first value x₀: x − x₀ is exact for values
        // of one magnitude, and so x − mean = (x − x₀) − (mean − x₀) stays accurate on rows far
        // from zero, where the mean itself rounded to f32 would be off by up to |mean|·2⁻²⁴.
        let pivot = _mm512_set1_ps(x[0]);
        let centred = |at: usize, shift: __m512| {
            let mask = lanes(at, c);
            _mm512_maskz_sub_ps(mask, _mm512_maskz_sub_ps(mask, load(at), pivot), shift)
        };
        let mut sum = _mm512_setzero_ps();
        for at in (0..c).step_by(LANES) {
            sum = _mm512_add_ps(sum, centred(at, _mm512_setzero_ps()));
        }
        let shift = _mm512_set1_ps(_mm512_reduce_add_ps(sum) * self.mean_factor);
        let mut squares = _mm512_setzero_ps();
        for at in (0..c).step_by(LANES) {
            let d = centred(at, shift);
            squares = _mm512_fmadd_ps(d, d, squares);
        }
        let variance = _mm512_reduce_add_ps(squares) / c as f32;
        let inverse = _mm512_set1_ps((variance + self.eps).sqrt().recip());
        for at in (0..c).step_by(LANES) {
            let mask = lanes(at, c);
            let (gamma, beta) = unsafe {
                (
                    _mm512_maskz_loadu_ps(mask, self.gamma.as_ptr().add(at)),
                    _mm512_maskz_loadu_ps(mask, self.beta.as_ptr().add(at)),
                )
            };
            let normed = _mm512_mul_ps(centred(at, shift), inverse);
            let y = _mm512_fmadd_ps(normed, gamma, beta);
            unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().add(at), mask, y) };
        }
    }
}

impl Op for LayerNorm {
    fn name(&self) -> StaticName {
        super::LAYER_NORM_OP.into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{:?}, eps {}", self.shape, self.eps)])
    }

    op_as_typed_op!();
}

impl EvalOp for LayerNorm {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let mut output = unsafe { Tensor::uninitialized::<f32>(&self.shape)? };
        {
            let view = inputs[0].try_as_plain_ram()?;
            let x = view.as_slice::<f32>()?;
            let mut out = output.try_as_plain_ram_mut()?;
            let out = out.as_slice_mut::<f32>()?;
            if x.len() != out.len() {
                bail!(
                    "{}: {} values for shape {:?}",
                    super::LAYER_NORM_OP,
                    x.len(),
                    self.shape
                );
            }
            self.apply(x, out);
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
                super::LAYER_NORM_OP,
                self.shape,
                fact
            );
        }
        Ok(tvec!(f32::datum_type().fact(self.shape.clone())))
    }

    as_op!();
}

/// Replaces every LayerNorm of a decluttered model by [`LayerNorm`]; returns how many were
/// replaced. Call only where [`available`] (AVX-512 F).
pub fn replace_layer_norms(model: &mut TypedModel) -> TractResult<usize> {
    replace_each(model, "layer_norm", layer_norm_at)
}

/// The LayerNorm whose row sum is node `id`, if the whole chain holds: our op, the outlet it
/// normalises and the outlet it replaces.
fn layer_norm_at(model: &TypedModel, id: usize) -> TractResult<Option<Replacement<LayerNorm>>> {
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
    };
    Ok(Some(Replacement {
        op,
        inputs: tvec![x],
        output,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition in f64.
    fn reference(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32) -> Vec<f64> {
        let c = gamma.len();
        let mut out = vec![];
        for row in x.chunks_exact(c) {
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / c as f64;
            let inv = 1.0 / (var + eps as f64).sqrt();
            for (i, &v) in row.iter().enumerate() {
                out.push((v as f64 - mean) * inv * gamma[i] as f64 + beta[i] as f64);
            }
        }
        out
    }

    #[test]
    fn matches_the_definition_on_partial_and_whole_registers() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512 F");
            return;
        }
        let mut rng = crate::test_support::rng::Rng::new(5);
        for (rows, c, offset) in [(1, 1, 0.0), (3, 7, 2.0), (5, 64, -30.0), (197, 768, 100.0)] {
            let x: Vec<f32> = rng
                .vec(rows * c, -3.0, 3.0)
                .iter()
                .map(|v| v + offset)
                .collect();
            let gamma = rng.vec(c, 0.5, 1.5);
            let beta = rng.vec(c, -0.2, 0.2);
            let op = LayerNorm {
                shape: tvec![rows, c],
                mean_factor: 1.0 / c as f32,
                eps: 1e-5,
                gamma: Arc::new(gamma.clone()),
                beta: Arc::new(beta.clone()),
            };
            let mut out = vec![f32::NAN; x.len()];
            op.apply(&x, &mut out);
            let want = reference(&x, &gamma, &beta, 1e-5);
            // Measured: at most 7·10⁻⁷, the row offset by 100 included.
            let bound = 2e-6;
            for (i, (&got, &w)) in out.iter().zip(&want).enumerate() {
                assert!(
                    (got as f64 - w).abs() <= bound,
                    "{rows}×{c}: value {i}: {got} vs {w}"
                );
            }
        }
    }
}
