//! Element functions on AVX-512 registers (16 f32 lanes) shared by the x86-64 kernels: the
//! exponential of non-positive values (the attention's softmax), the logistic sigmoid and
//! QuickGELU `y·σ(1.702·y)`, the activation of CLIP's MLPs (the int8 kernel's epilogue). Each
//! is accurate to a few ulp against f64 (the tests), where tract's own are faster, coarser
//! approximations.

use std::arch::x86_64::*;

/// f32 lanes of one register.
pub const LANES: usize = 16;

/// The lanes of a register holding values `start .. start + 16` of a row of `len`: the mask
/// of the masked loads and stores at a row's end.
pub fn lanes(start: usize, len: usize) -> __mmask16 {
    match len - start {
        n if n >= LANES => !0,
        n => (1 << n) - 1,
    }
}

/// eˣ lane by lane for x ≤ 0 (softmax's range), to about 1 ulp: x = n·ln 2 + r with
/// |r| ≤ ln 2 / 2 (ln 2 split in two so that n·ln 2 is exact), eʳ by its Taylor series to r⁷
/// (remainder below 6·10⁻⁹ relative), then × 2ⁿ by `vscalefps`, which also gives the subnormals
/// and 0 below e⁻¹⁰³.
#[inline]
#[target_feature(enable = "avx512f")]
pub fn exp(x: __m512) -> __m512 {
    const LN2_HIGH: f32 = 0.693_359_4;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    const TAYLOR: [f32; 8] = [
        1.0 / 5040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ];
    // `vmaxps` returns its second operand when either is NaN: a NaN score stays NaN.
    let x = _mm512_max_ps(_mm512_set1_ps(-104.0), x);
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HIGH), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LOW), r);
    let mut p = _mm512_set1_ps(TAYLOR[0]);
    for c in &TAYLOR[1..] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(*c));
    }
    _mm512_scalef_ps(p, n)
}

/// σ(z) = 1 / (1 + e⁻ᶻ) lane by lane, with the exponential's argument kept ≤ 0: e = e^−|z|,
/// then σ = 1 / (1 + e) for z ≥ 0 and e / (1 + e) below. A NaN stays NaN.
#[inline]
#[target_feature(enable = "avx512f")]
pub fn sigmoid(z: __m512) -> __m512 {
    let one = _mm512_set1_ps(1.0);
    let e = exp(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(z)));
    let negative = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(z, _mm512_setzero_ps());
    _mm512_div_ps(
        _mm512_mask_blend_ps(negative, one, e),
        _mm512_add_ps(one, e),
    )
}

/// QuickGELU `y · σ(alpha · y)` lane by lane (CLIP's `quick_gelu` has alpha = 1.702).
#[inline]
#[target_feature(enable = "avx512f")]
pub fn quick_gelu(y: __m512, alpha: __m512) -> __m512 {
    _mm512_mul_ps(y, sigmoid(_mm512_mul_ps(alpha, y)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether these x86-only element tests can run here. Where they cannot, the kernels
    /// that use the functions are not in this CPU's table either, and the table-driven kernel
    /// tests (`kernels::tests`) test the reference instead.
    fn runs_here() -> bool {
        let here = is_x86_feature_detected!("avx512f");
        if !here {
            eprintln!("not run: this CPU has no AVX-512 F");
        }
        here
    }

    /// `f` over `xs`, 16 lanes at a time.
    fn map(xs: &[f32], f: impl Fn(__m512) -> __m512) -> Vec<f32> {
        let mut out = vec![0f32; xs.len()];
        for (x, y) in xs.chunks(LANES).zip(out.chunks_mut(LANES)) {
            let mut lanes = [0f32; LANES];
            lanes[..x.len()].copy_from_slice(x);
            // SAFETY: `runs_here()` checked AVX-512 F; 16 values in and out.
            unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), f(_mm512_loadu_ps(lanes.as_ptr()))) };
            y.copy_from_slice(&lanes[..y.len()]);
        }
        out
    }

    /// Ulps between `got` and the f64 value `want` rounded to f32.
    fn ulps(got: f32, want: f64) -> u32 {
        (want as f32).to_bits().abs_diff(got.to_bits())
    }

    #[test]
    fn exp_is_within_two_ulp_down_to_subnormals() {
        if !runs_here() {
            return;
        }
        let xs: Vec<f32> = (0..=200_000).map(|i| -(i as f32) * 5e-4).collect();
        // SAFETY: `runs_here()` checked AVX-512 F.
        let got = map(&xs, |x| unsafe { exp(x) });
        for (&x, &y) in xs.iter().zip(&got) {
            let want = (x as f64).exp();
            assert!(ulps(y, want) <= 2, "exp({x}) = {y}, want {want}");
        }
        let tiny = [-88.0f32, -100.0, -104.0, -150.0, f32::NEG_INFINITY];
        // SAFETY: `runs_here()` checked AVX-512 F.
        let got = map(&tiny, |x| unsafe { exp(x) });
        for (&x, &y) in tiny.iter().zip(&got) {
            let want = (x as f64).max(-104.0).exp();
            assert!((y as f64 - want).abs() <= 1.5e-45, "exp({x}) = {y}");
        }
    }

    #[test]
    fn sigmoid_and_quick_gelu_are_within_four_ulp() {
        if !runs_here() {
            return;
        }
        let zs: Vec<f32> = (-160_000..=160_000).map(|i| i as f32 * 6.25e-4).collect();
        // SAFETY: `runs_here()` checked AVX-512 F.
        let got = map(&zs, |z| unsafe { sigmoid(z) });
        for (&z, &y) in zs.iter().zip(&got) {
            let want = 1.0 / (1.0 + (-(z as f64)).exp());
            assert!(ulps(y, want) <= 4, "σ({z}) = {y}, want {want}");
        }
        let alpha = 1.702f32;
        // SAFETY: `runs_here()` checked AVX-512 F.
        let got = map(&zs, |y| unsafe { quick_gelu(y, _mm512_set1_ps(alpha)) });
        for (&y, &g) in zs.iter().zip(&got) {
            // α·y is rounded to f32 first, as the graph's own `Mul` does: far out on the
            // negative side that rounding alone moves e^(α·y) by |α·y| ulp.
            let want = y as f64 / (1.0 + (-((alpha * y) as f64)).exp());
            let close = ulps(g, want) <= 4 || (g as f64 - want).abs() < 1e-30;
            assert!(close, "quick_gelu({y}) = {g}, want {want}");
        }
        // SAFETY: `runs_here()` checked AVX-512 F.
        let edges = map(&[f32::NAN, 200.0, -200.0, 0.0], |z| unsafe { sigmoid(z) });
        assert!(edges[0].is_nan());
        assert_eq!(&edges[1..], &[1.0, 0.0, 0.5]);
    }
}
