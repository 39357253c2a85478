//! LayerNorm rows for x86-64 CPUs with AVX-512: each row read once for its mean, once for its
//! variance and once to write the normalised row. Not tract's bits (the sums run in another
//! order): the tests hold it to the reference kernel (the f64 definition).

use std::arch::x86_64::*;

use super::super::LayerNormParams;
use super::vector_math::{lanes, LANES};

/// How plans name this kernel.
pub const NAME: &str = "xrvlm_avx512_layer_norm";

/// Whether this CPU runs the kernel (AVX-512 F).
pub fn available() -> bool {
    is_x86_feature_detected!("avx512f")
}

/// One row into `out`.
///
/// # Safety
/// As [`super::super::LayerNormFn`]: the CPU has AVX-512 F ([`available`]); `x`, `out`, γ and
/// β hold the same number of values, at least one.
#[target_feature(enable = "avx512f")]
pub unsafe fn layer_norm(params: &LayerNormParams<'_>, x: &[f32], out: &mut [f32]) {
    let c = x.len();
    // SAFETY: the mask keeps the lanes below C, inside `x`.
    let load = |at: usize| unsafe { _mm512_maskz_loadu_ps(lanes(at, c), x.as_ptr().add(at)) };
    // Everything is taken relative to the row's first value x₀: x − x₀ is exact for values of
    // one magnitude, and so x − mean = (x − x₀) − (mean − x₀) stays accurate on rows far from
    // zero, where the mean itself rounded to f32 would be off by up to |mean|·2⁻²⁴.
    let pivot = _mm512_set1_ps(x[0]);
    let centred = |at: usize, shift: __m512| {
        let mask = lanes(at, c);
        _mm512_maskz_sub_ps(mask, _mm512_maskz_sub_ps(mask, load(at), pivot), shift)
    };
    let mut sum = _mm512_setzero_ps();
    for at in (0..c).step_by(LANES) {
        sum = _mm512_add_ps(sum, centred(at, _mm512_setzero_ps()));
    }
    let shift = _mm512_set1_ps(_mm512_reduce_add_ps(sum) * params.mean_factor);
    let mut squares = _mm512_setzero_ps();
    for at in (0..c).step_by(LANES) {
        let d = centred(at, shift);
        squares = _mm512_fmadd_ps(d, d, squares);
    }
    let variance = _mm512_reduce_add_ps(squares) / c as f32;
    let inverse = _mm512_set1_ps((variance + params.eps).sqrt().recip());
    for at in (0..c).step_by(LANES) {
        let mask = lanes(at, c);
        // SAFETY: the mask keeps the lanes below C, inside γ and β (C values each).
        let (gamma, beta) = unsafe {
            (
                _mm512_maskz_loadu_ps(mask, params.gamma.as_ptr().add(at)),
                _mm512_maskz_loadu_ps(mask, params.beta.as_ptr().add(at)),
            )
        };
        let normed = _mm512_mul_ps(centred(at, shift), inverse);
        let y = _mm512_fmadd_ps(normed, gamma, beta);
        // SAFETY: the mask keeps the lanes below C, inside `out`.
        unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().add(at), mask, y) };
    }
}
