//! The kernels of aarch64 CPUs (the boards): the SDOT int8 products where the CPU has
//! FEAT_DotProd, the attention in f16 where it has FEAT_FP16 (else in f32), and NEON LayerNorm
//! and quantize on every aarch64 CPU (NEON is the architecture's baseline). [`plug`] puts each
//! in the table.

mod attention;
mod attention_half;
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
    kernels.attention = match attention_half::available() {
        true => Kernel::native_half(attention_half::NAME, attention_half::attention),
        false => Kernel::native(attention::NAME, attention::attention),
    };
    kernels.layer_norm = Kernel::native(layer_norm::NAME, layer_norm::layer_norm);
    kernels.quantize = Kernel::native(quantize::NAME, quantize::quantize);
}

/// The tables of native kernels that `best` passes over on this CPU: with f16 arithmetic, the
/// same table with the f32 attention of CPUs without it.
#[cfg(test)]
pub fn passed_over(best: &Kernels) -> Vec<Kernels> {
    match best.attention.half {
        true => vec![Kernels {
            attention: Kernel::native(attention::NAME, attention::attention),
            ..*best
        }],
        false => vec![],
    }
}
