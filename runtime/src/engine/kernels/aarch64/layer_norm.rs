//! LayerNorm rows for aarch64 CPUs, in NEON: each row read once for its mean, once for its
//! variance and once to write the normalised row, the same steps as the x86-64 kernel. Not
//! tract's bits (the sums run in another order): the tests hold it to the reference kernel (the
//! f64 definition).

use std::arch::aarch64::*;

use super::super::LayerNormParams;
use super::vector_math::LANES;

/// How plans name this kernel.
pub const NAME: &str = "xrvlm_neon_layer_norm";

/// One row into `out`.
///
/// # Safety
/// As [`super::super::LayerNormFn`]: `x`, `out`, γ and β hold the same number of values, at
/// least one. (NEON is part of every aarch64 CPU.)
pub unsafe fn layer_norm(params: &LayerNormParams<'_>, x: &[f32], out: &mut [f32]) {
    let c = x.len();
    let whole = c - c % LANES;
    // Everything is taken relative to the row's first value x₀: x − x₀ is exact for values of
    // one magnitude, and so x − mean = (x − x₀) − (mean − x₀) stays accurate on rows far from
    // zero, where the mean itself rounded to f32 would be off by up to |mean|·2⁻²⁴.
    let pivot = x[0];
    let mut sums = [0f32; LANES];
    // SAFETY: `at + 4 ≤ whole ≤ c`: every load is inside `x`.
    unsafe {
        let mut sum = vdupq_n_f32(0.0);
        for at in (0..whole).step_by(LANES) {
            sum = vaddq_f32(
                sum,
                vsubq_f32(vld1q_f32(x.as_ptr().add(at)), vdupq_n_f32(pivot)),
            );
        }
        vst1q_f32(sums.as_mut_ptr(), sum);
    }
    let tail: f32 = x[whole..].iter().map(|v| v - pivot).sum();
    let shift = (sums.iter().sum::<f32>() + tail) * params.mean_factor;
    let centred = |v: f32| (v - pivot) - shift;
    let mut squares = [0f32; LANES];
    // SAFETY: as above.
    unsafe {
        let (pivot, shift) = (vdupq_n_f32(pivot), vdupq_n_f32(shift));
        let mut acc = vdupq_n_f32(0.0);
        for at in (0..whole).step_by(LANES) {
            let d = vsubq_f32(vsubq_f32(vld1q_f32(x.as_ptr().add(at)), pivot), shift);
            acc = vfmaq_f32(acc, d, d);
        }
        vst1q_f32(squares.as_mut_ptr(), acc);
    }
    let tail: f32 = x[whole..].iter().map(|&v| centred(v) * centred(v)).sum();
    let variance = (squares.iter().sum::<f32>() + tail) / c as f32;
    let inverse = (variance + params.eps).sqrt().recip();
    // SAFETY: `at + 4 ≤ whole ≤ c`, and `out`, γ and β hold C values as `x` does.
    unsafe {
        let (p, s, i) = (vdupq_n_f32(pivot), vdupq_n_f32(shift), vdupq_n_f32(inverse));
        for at in (0..whole).step_by(LANES) {
            let d = vsubq_f32(vsubq_f32(vld1q_f32(x.as_ptr().add(at)), p), s);
            let gamma = vld1q_f32(params.gamma.as_ptr().add(at));
            let beta = vld1q_f32(params.beta.as_ptr().add(at));
            let y = vfmaq_f32(beta, vmulq_f32(d, i), gamma);
            vst1q_f32(out.as_mut_ptr().add(at), y);
        }
    }
    for at in whole..c {
        out[at] = (centred(x[at]) * inverse).mul_add(params.gamma[at], params.beta[at]);
    }
}
