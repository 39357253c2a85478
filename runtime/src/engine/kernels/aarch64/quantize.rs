//! tract's `QuantizeLinearU8` in NEON: `fcvtns` converts to the nearest integer, ties to even
//! (the rounding the reference gets from its 1.5·2²³ trick) and NaN to 0, then the zero point
//! is added and the result narrowed to bytes, saturating at each step. The bytes are the
//! reference's, which are tract's (the tests check every rounding tie and edge).

use std::arch::aarch64::*;

use super::super::Quantization;

/// How plans name this kernel.
pub const NAME: &str = "xrvlm_neon_quantize";

/// Values of one step: four registers of four.
const STEP: usize = 16;

/// `ys[i]` = `xs[i]` quantized.
///
/// # Safety
/// As [`super::super::QuantizeFn`]: `xs` and `ys` have the same length. (NEON is part of
/// every aarch64 CPU.)
pub unsafe fn quantize(quantization: Quantization, xs: &[f32], ys: &mut [u8]) {
    let whole = xs.len() - xs.len() % STEP;
    // SAFETY: `at + 16 ≤ whole ≤ len`: every load and store is inside `xs` and `ys`.
    unsafe {
        let inv = vdupq_n_f32(quantization.inv_scale);
        let zp = vdupq_n_s32(quantization.zero_point as i32);
        let one = |at: *const f32| {
            // Saturating: ±∞ and |x| ≥ 2³¹ become i32's extremes, which the saturating add and
            // narrowings take to 0 or 255.
            let n = vqaddq_s32(vcvtnq_s32_f32(vmulq_f32(vld1q_f32(at), inv)), zp);
            vqmovun_s32(n)
        };
        for at in (0..whole).step_by(STEP) {
            let p = xs.as_ptr().add(at);
            let low = vqmovn_u16(vcombine_u16(one(p), one(p.add(4))));
            let high = vqmovn_u16(vcombine_u16(one(p.add(8)), one(p.add(12))));
            vst1q_u8(ys.as_mut_ptr().add(at), vcombine_u8(low, high));
        }
    }
    super::super::reference::quantize(quantization, &xs[whole..], &mut ys[whole..]);
}
