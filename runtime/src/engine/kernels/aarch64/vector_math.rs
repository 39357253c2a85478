//! Element functions on NEON registers (4 f32 lanes) shared by the aarch64 kernels: the
//! exponential (the attention's softmax) and QuickGELU `y·σ(1.702·y)`, the activation of CLIP's
//! MLPs (the int8 kernel's epilogue). The same definitions as the x86-64 kernels'
//! (`x86_64/vector_math.rs`), to a few ulp against f64 (the tests), written with what NEON has:
//! rounding by `frintn`, 2ⁿ built in the exponent bits.

use std::arch::aarch64::*;

/// f32 lanes of one register.
pub const LANES: usize = 4;

/// eˣ lane by lane, to about 1 ulp for −87.3 ≤ x ≤ 88: x = n·ln 2 + r with |r| ≤ ln 2 / 2
/// (ln 2 split in two so that n·ln 2 is exact), eʳ by its Taylor series to r⁷ (remainder below
/// 6·10⁻⁹ relative), then × 2ⁿ built in the exponent bits. Below −87.3 the result is e^−87.3
/// (1.2·10⁻³⁸, the smallest normal float), not a subnormal or 0: what the kernels add it to
/// (a softmax's sum ≥ 1, QuickGELU's 1 + eˣ) cannot tell the difference, and one factor of 2ⁿ
/// instead of the two a subnormal needs saves five instructions of about twenty (measured: 0.7 %
/// of an int8 ViT-B/16 block in modelled A76 cycles). Above 88 it is +∞ (e^x overflows from
/// 88.72; between, n = 128 and 2¹²⁸ is not a float).
///
/// The constants live in registers built once by [`Exp::new`], before a loop: written inline,
/// LLVM rebuilt ten of them with a `dup` on every call inside the loops (13 of the softmax
/// loop's 31 vector instructions; a64-cycles, ViT-B/16 width).
#[derive(Clone, Copy)]
pub struct Exp {
    lowest: float32x4_t,
    highest: float32x4_t,
    log2_e: float32x4_t,
    ln2_high: float32x4_t,
    ln2_low: float32x4_t,
    /// The Taylor coefficients 1/7! … 1/2!, highest first; the last two (1, 1) are `one`.
    taylor: [float32x4_t; 6],
    one: float32x4_t,
    /// 127, the exponent field's bias.
    bias: int32x4_t,
}

impl Exp {
    /// The constants, in registers that the compiler cannot rebuild from immediates.
    #[inline(always)]
    pub fn new() -> Self {
        /// ln(2⁻¹²⁶) rounded up: n ≥ −126 below, so 2ⁿ is a normal float.
        const LOWEST: f32 = -87.33;
        let taylor = [5040.0f32, 720.0, 120.0, 24.0, 6.0, 2.0].map(|f| constant(1.0 / f));
        Self {
            lowest: constant(LOWEST),
            highest: constant(89.0),
            log2_e: constant(std::f32::consts::LOG2_E),
            ln2_high: constant(0.693_359_4),
            ln2_low: constant(-2.121_944_4e-4),
            taylor,
            one: constant(1.0),
            // SAFETY: NEON is part of every aarch64 CPU; an opaque copy of the register.
            bias: unsafe { vreinterpretq_s32_f32(opaque(vreinterpretq_f32_s32(vdupq_n_s32(127)))) },
        }
    }

    /// eˣ lane by lane.
    #[inline(always)]
    pub fn of(&self, x: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is part of every aarch64 CPU (the target's baseline).
        unsafe {
            // `fmax` and `fmin` return NaN when either operand is NaN: a NaN score stays NaN.
            // Past the upper clamp the result is +∞ whatever x is, and n stays far inside an
            // i32.
            let x = vminq_f32(self.highest, vmaxq_f32(self.lowest, x));
            let n = vrndnq_f32(vmulq_f32(x, self.log2_e));
            let r = vfmsq_f32(x, n, self.ln2_high);
            let r = vfmsq_f32(r, n, self.ln2_low);
            let mut p = self.taylor[0];
            for c in &self.taylor[1..] {
                p = vfmaq_f32(*c, p, r);
            }
            p = vfmaq_f32(self.one, p, r);
            p = vfmaq_f32(self.one, p, r);
            // −126 ≤ n ≤ 128 (x clamped to [−87.33, 89]): 2ⁿ's exponent field 1 to 255, the
            // last being +∞.
            let n = vcvtq_s32_f32(n);
            let power = vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(n, self.bias)));
            vmulq_f32(p, power)
        }
    }
}

/// QuickGELU `y · σ(alpha · y)` lane by lane (CLIP's `quick_gelu` has alpha = 1.702), as
/// `y / (1 + e^(−alpha·y))`: one exponential and one division, to a few ulp. Where e^(−alpha·y)
/// overflows (y below about −52) the result is −0 for a true value below 10⁻²¹; a NaN stays NaN.
/// Its constants, like [`Exp`]'s, are built once before a loop.
#[derive(Clone, Copy)]
pub struct QuickGelu {
    minus_alpha: float32x4_t,
    exp: Exp,
}

impl QuickGelu {
    #[inline(always)]
    pub fn new(alpha: f32) -> Self {
        Self {
            minus_alpha: constant(-alpha),
            exp: Exp::new(),
        }
    }

    /// QuickGELU lane by lane.
    #[inline(always)]
    pub fn of(&self, y: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is part of every aarch64 CPU. −(α·y) is (−α)·y exactly.
        unsafe {
            let e = self.exp.of(vmulq_f32(self.minus_alpha, y));
            vdivq_f32(y, vaddq_f32(self.exp.one, e))
        }
    }
}

/// `value` in every lane, in a register the compiler treats as unknown (so it keeps it rather
/// than rebuilding it inside a loop).
#[inline(always)]
fn constant(value: f32) -> float32x4_t {
    // SAFETY: NEON is part of every aarch64 CPU.
    opaque(unsafe { vdupq_n_f32(value) })
}

/// `x`, through an empty `asm!` block: the same bits, but no longer a known constant.
#[inline(always)]
fn opaque(mut x: float32x4_t) -> float32x4_t {
    // SAFETY: the block is empty: it reads and writes nothing but names the register.
    unsafe {
        std::arch::asm!("/* {0:v} */", inout(vreg) x, options(pure, nomem, nostack, preserves_flags));
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `f` over `xs`, 4 lanes at a time.
    fn map(xs: &[f32], f: impl Fn(float32x4_t) -> float32x4_t) -> Vec<f32> {
        let mut out = vec![0f32; xs.len()];
        for (x, y) in xs.chunks(LANES).zip(out.chunks_mut(LANES)) {
            let mut lanes = [0f32; LANES];
            lanes[..x.len()].copy_from_slice(x);
            // SAFETY: NEON is baseline; 4 values in and out.
            unsafe { vst1q_f32(lanes.as_mut_ptr(), f(vld1q_f32(lanes.as_ptr()))) };
            y.copy_from_slice(&lanes[..y.len()]);
        }
        out
    }

    /// Ulps between `got` and the f64 value `want` rounded to f32.
    fn ulps(got: f32, want: f64) -> u32 {
        (want as f32).to_bits().abs_diff(got.to_bits())
    }

    #[test]
    fn exp_is_within_two_ulp_over_the_normal_floats() {
        // −87.33 to 88 in steps of 5·10⁻⁴.
        let xs: Vec<f32> = (-174_660..=176_000).map(|i| i as f32 * 5e-4).collect();
        let exp = Exp::new();
        let got = map(&xs, |x| exp.of(x));
        for (&x, &y) in xs.iter().zip(&got) {
            let want = (x as f64).exp();
            assert!(ulps(y, want) <= 2, "exp({x}) = {y}, want {want}");
        }
        // Below the normal floats: e^−87.33, the smallest normal float but a little.
        let tiny = [-87.5f32, -100.0, -104.0, -150.0, f32::NEG_INFINITY];
        for (&x, &y) in tiny.iter().zip(&map(&tiny, |x| exp.of(x))) {
            assert!(y.is_normal() && y < 1.3e-38, "exp({x}) = {y}");
        }
        let huge = [88.8f32, 89.0, 1e30, f32::INFINITY];
        assert!(map(&huge, |x| exp.of(x))
            .iter()
            .all(|&y| y == f32::INFINITY));
        assert!(map(&[f32::NAN], |x| exp.of(x))[0].is_nan());
    }

    #[test]
    fn quick_gelu_is_within_four_ulp() {
        let alpha = 1.702f32;
        let gelu = QuickGelu::new(alpha);
        let ys: Vec<f32> = (-160_000..=160_000).map(|i| i as f32 * 6.25e-4).collect();
        let got = map(&ys, |y| gelu.of(y));
        for (&y, &g) in ys.iter().zip(&got) {
            // α·y is rounded to f32 first, as the graph's own `Mul` does.
            let want = y as f64 / (1.0 + (-((alpha * y) as f64)).exp());
            let close = ulps(g, want) <= 4 || (g as f64 - want).abs() < 1e-30;
            assert!(close, "quick_gelu({y}) = {g}, want {want}");
        }
        let edges = map(&[f32::NAN, 200.0, -200.0, 0.0, f32::INFINITY], |y| {
            gelu.of(y)
        });
        assert!(edges[0].is_nan());
        assert_eq!(&edges[1..4], &[200.0, 0.0, 0.0]);
        assert_eq!(edges[4], f32::INFINITY);
    }
}
