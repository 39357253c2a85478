//! The portable kernels: each kernel's definition, written as plainly as its arithmetic
//! allows, on every CPU. They are the oracle of every kernel test, and what a pass runs on
//! where this CPU has no kernel of its own (in tests: a device's plan leaves such a pass to
//! tract, see [`super`]).
//!
//! - [`int8_gemm`]: exact i32 sums `Σ (a − z) · w`, then tract's float steps in tract's order
//!   (convert, multiply by the scale, add the bias, each rounded), so the output is the bits of
//!   the ONNX graph `MatMulInteger → Cast → Mul → Add` run by tract. QuickGELU, where fused, is
//!   computed in f64 and rounded once.
//! - [`attention`] and [`layer_norm`]: the definitions computed in f64 and rounded once.
//! - [`quantize`]: tract's `QuantizeLinearU8` bytes with a branch-free rounding the compiler
//!   vectorizes (see `passes::quantize`).

use super::{Activation, Heads, Int8Gemm, LayerNormParams, Quantization};

/// `out` (rows × n) from `a` (rows × k) through `gemm`; lengths as [`super::Kernels::int8_gemm`]
/// checks them.
pub fn int8_gemm(gemm: &Int8Gemm, a: &[u8], out: &mut [f32]) {
    let (k, n) = (gemm.k(), gemm.n());
    let z = gemm.zero_point() as i32;
    for (row, out) in a.chunks_exact(k).zip(out.chunks_exact_mut(n)) {
        for (col, y) in out.iter_mut().enumerate() {
            let sum: i32 = row
                .iter()
                .enumerate()
                .map(|(i, &x)| (x as i32 - z) * gemm.weight(i, col) as i32)
                .sum();
            let linear = sum as f32 * gemm.scale()[col] + gemm.bias()[col];
            *y = activate(gemm.activation(), linear);
        }
    }
}

/// The activation of one finished output.
fn activate(activation: Activation, y: f32) -> f32 {
    match activation {
        Activation::Identity => y,
        // α·y is rounded to f32 first, as the graph's own `Mul` does.
        Activation::QuickGelu { alpha } => {
            (y as f64 / (1.0 + (-((alpha * y) as f64)).exp())) as f32
        }
    }
}

/// `out = softmax(q kᵀ) v` per head; lengths as [`super::Kernels::attention`] checks them.
pub fn attention(shape: Heads, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) {
    let (tokens, width, stride) = (shape.tokens, shape.width, shape.stride());
    let at = |x: &[f32], token: usize, h: usize, d: usize| x[token * stride + h * width + d] as f64;
    for h in 0..shape.heads {
        for i in 0..tokens {
            let scores: Vec<f64> = (0..tokens)
                .map(|j| (0..width).map(|d| at(q, i, h, d) * at(k, j, h, d)).sum())
                .collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().map(|x| (x - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            for d in 0..width {
                let y: f64 = (0..tokens).map(|j| e[j] / sum * at(v, j, h, d)).sum();
                out[i * stride + h * width + d] = y as f32;
            }
        }
    }
}

/// One LayerNorm row; lengths as [`super::Kernels::layer_norm`] checks them.
pub fn layer_norm(params: &LayerNormParams<'_>, x: &[f32], out: &mut [f32]) {
    let c = x.len() as f64;
    // The mean is taken relative to the row's first value x₀, x₀ + Σ(x − x₀) · mean_factor,
    // which is Σx · mean_factor for the 1/C it stands for, but keeps the f32 rounding of
    // 1/C from moving the mean of a row far from zero by |mean| · 2⁻²⁴.
    let pivot = x[0] as f64;
    let centred = x.iter().map(|&v| v as f64 - pivot).sum::<f64>();
    let mean = pivot + centred * params.mean_factor as f64;
    let variance = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / c;
    let inverse = 1.0 / (variance + params.eps as f64).sqrt();
    for (i, (&v, y)) in x.iter().zip(out.iter_mut()).enumerate() {
        let normed = (v as f64 - mean) * inverse;
        *y = (normed * params.gamma[i] as f64 + params.beta[i] as f64) as f32;
    }
}

/// 1.5 · 2²³: adding it to an f32 of magnitude below 2²² rounds it to the nearest integer,
/// ties to even (the FPU's default rounding), and leaves that integer in the sum's low
/// mantissa bits.
const ROUND: f32 = 12_582_912.0;

/// `ys` = `xs` quantized; lengths as [`super::Kernels::quantize`] checks them. Inlined into the
/// architectures' copies compiled for wider vectors, so every copy does the same IEEE
/// operations and writes the same bytes.
#[inline(always)]
pub fn quantize(quantization: Quantization, xs: &[f32], ys: &mut [u8]) {
    // Anything beyond ±256 saturates to 0 or 255 whatever the zero point, so clamping before
    // rounding changes no output and keeps |v| far below 2²². After adding ROUND, the low bits
    // of the sum are the rounded integer: it is read off the bit pattern, which vectorizes
    // where a float-to-int cast does not (measured: 7 ms against 23–48 ms for 12.7 M values).
    // NaN becomes 0 first, as tract's cast makes it.
    let zp = quantization.zero_point as i32;
    let offset = ROUND.to_bits() as i32;
    for (x, y) in xs.iter().zip(ys.iter_mut()) {
        let v = (x * quantization.inv_scale).clamp(-256.0, 256.0);
        let v = if v.is_nan() { 0.0 } else { v };
        let rounded = (v + ROUND).to_bits() as i32 - offset;
        *y = (rounded + zp).clamp(0, 255) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_gemm_is_the_rescaled_integer_product() {
        // a − z = [1, −2], w = [[3, −4], [5, 6]]: sums 1·3 − 2·5 = −7 and 1·−4 − 2·6 = −16.
        let gemm = Int8Gemm::new(&[3, -4, 5, 6], 2, 2, 10, &[0.5, 2.0], &[1.0, -0.0]).unwrap();
        let mut out = [0f32; 2];
        int8_gemm(&gemm, &[11, 8], &mut out);
        assert_eq!(out, [-2.5, -32.0]);
        let gelu = gemm.with_activation(Activation::QuickGelu { alpha: 1.702 });
        int8_gemm(&gelu, &[11, 8], &mut out);
        let want = -2.5 / (1.0 + ((1.702f32 * 2.5) as f64).exp());
        assert_eq!(out[0], want as f32);
    }

    #[test]
    fn attention_of_equal_scores_is_the_mean_of_the_values() {
        // q = 0: every score is 0, every probability 1/T.
        let shape = Heads {
            tokens: 3,
            heads: 2,
            width: 1,
        };
        let (q, k) = (vec![0.0; 6], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let v = [1.0, 10.0, 2.0, 20.0, 6.0, 60.0];
        let mut out = [0f32; 6];
        attention(shape, &q, &k, &v, &mut out);
        assert_eq!(out, [3.0, 30.0, 3.0, 30.0, 3.0, 30.0]);
    }

    #[test]
    fn layer_norm_centres_and_scales_a_row() {
        // Mean 2, variance 1.
        let params = LayerNormParams {
            mean_factor: 0.25,
            eps: 0.0,
            gamma: &[1.0, 1.0, 2.0, 1.0],
            beta: &[0.0, 0.5, 0.0, 0.0],
        };
        let mut out = [0f32; 4];
        layer_norm(&params, &[1.0, 3.0, 1.0, 3.0], &mut out);
        assert_eq!(out, [-1.0, 1.5, -2.0, 1.0]);
    }

    #[test]
    fn quantize_rounds_ties_to_even_and_saturates() {
        let q = Quantization {
            inv_scale: 1.0,
            zero_point: 128,
        };
        let mut ys = [0u8; 7];
        quantize(q, &[0.5, 1.5, -0.5, 300.0, -300.0, f32::NAN, 2.5], &mut ys);
        assert_eq!(ys, [128, 130, 128, 255, 0, 128, 130]);
    }
}
