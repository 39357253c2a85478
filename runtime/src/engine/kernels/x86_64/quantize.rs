//! The reference quantize loop compiled for wider vectors: a default x86-64 build is SSE2
//! only, and quantizing a ViT-B/16 frame took 25 ms there against 5 ms built for the CPU.
//! Every copy does the same IEEE operations, so the bytes are the reference's.

use super::super::{reference, Quantization};

/// How plans name the AVX-512 copy.
pub const AVX512_NAME: &str = "xrvlm_avx512_quantize";
/// How plans name the AVX2 copy.
pub const AVX2_NAME: &str = "xrvlm_avx2_quantize";

/// Whether this CPU runs [`quantize_avx512`] (AVX-512 F and BW).
pub fn avx512_available() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")
}

/// Whether this CPU runs [`quantize_avx2`].
pub fn avx2_available() -> bool {
    is_x86_feature_detected!("avx2")
}

/// [`reference::quantize`] compiled for AVX-512.
///
/// # Safety
/// As [`super::super::QuantizeFn`]; the CPU has AVX-512 F and BW ([`avx512_available`]).
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn quantize_avx512(quantization: Quantization, xs: &[f32], ys: &mut [u8]) {
    reference::quantize(quantization, xs, ys)
}

/// [`reference::quantize`] compiled for AVX2.
///
/// # Safety
/// As [`super::super::QuantizeFn`]; the CPU has AVX2 ([`avx2_available`]).
#[target_feature(enable = "avx2")]
pub unsafe fn quantize_avx2(quantization: Quantization, xs: &[f32], ys: &mut [u8]) {
    reference::quantize(quantization, xs, ys)
}
