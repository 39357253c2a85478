//! The kernels of aarch64 CPUs (the boards): the SDOT int8 products where the CPU has
//! FEAT_DotProd, and NEON attention, LayerNorm and quantize on every aarch64 CPU (NEON is the
//! architecture's baseline). [`plug`] puts each in the table.

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
    kernels.attention = Kernel::native(attention::NAME, attention::attention);
    kernels.layer_norm = Kernel::native(layer_norm::NAME, layer_norm::layer_norm);
    kernels.quantize = Kernel::native(quantize::NAME, quantize::quantize);
}
