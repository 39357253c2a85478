//! The kernels of x86-64 CPUs: AVX-512 VNNI int8 products, AVX-512 attention and LayerNorm,
//! and the quantize loop compiled for AVX-512 or AVX2. [`plug`] puts each in the table where
//! the CPU has its features.

mod attention;
mod int8_gemm;
mod layer_norm;
mod quantize;
mod vector_math;

use super::{Kernel, Kernels};

/// This CPU's kernels over the reference entries of `kernels`.
pub fn plug(kernels: &mut Kernels) {
    if int8_gemm::available() {
        kernels.int8_gemm = Kernel::native(int8_gemm::NAME, int8_gemm::int8_gemm);
    }
    if attention::available() {
        kernels.attention = Kernel::native(attention::NAME, attention::attention);
    }
    if layer_norm::available() {
        kernels.layer_norm = Kernel::native(layer_norm::NAME, layer_norm::layer_norm);
    }
    if quantize::avx512_available() {
        kernels.quantize = Kernel::native(quantize::AVX512_NAME, quantize::quantize_avx512);
    } else if quantize::avx2_available() {
        kernels.quantize = Kernel::native(quantize::AVX2_NAME, quantize::quantize_avx2);
    }
}
