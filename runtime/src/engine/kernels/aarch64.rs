//! The kernels of aarch64 CPUs (the boards): the SDOT int8 products where the CPU has
//! FEAT_DotProd, and NEON attention, LayerNorm and quantize on every aarch64 CPU (NEON is the
//! architecture's baseline). [`plug`] puts each in the table.

mod attention;
// Not in the table: with it, the ViT-mini int8 plan's parts moved by up to 8.4 % of the
// largest part from tract's plan on one of two test images (CI under qemu, issue 16), against
// 1 % for the f32 kernels. Kept with its own tests for a more accurate half-precision variant
// (f32 sums of the scores, say).
#[cfg_attr(not(test), allow(dead_code))]
mod attention_f16;
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

/// The tables of native kernels that `best` passes over on this CPU: none today.
#[cfg(test)]
pub fn passed_over(best: &Kernels) -> Vec<Kernels> {
    let _ = best;
    vec![]
}

#[cfg(test)]
mod tests {
    use super::super::{reference, Heads, HALF_TOLERANCE_PER_SCORE};
    use super::attention_f16;
    use crate::test_support::rng::Rng;

    #[test]
    fn the_f16_attention_stays_within_its_tolerance() {
        if !attention_f16::available() {
            eprintln!("not run: this CPU has no fp16 arithmetic");
            return;
        }
        for (tokens, heads, width, spread) in
            [(17, 3, 16, 8.0f32), (197, 2, 64, 8.0), (40, 3, 24, 400.0)]
        {
            let shape = Heads {
                tokens,
                heads,
                width,
            };
            let mut rng = Rng::new(tokens as u64);
            let scale = (spread / width as f32).sqrt();
            let q = rng.vec(shape.values(), -scale, scale);
            let k = rng.vec(shape.values(), -scale, scale);
            let v = rng.vec(shape.values(), -1.0, 1.0);
            let (mut ours, mut want) = (vec![0f32; shape.values()], vec![0f32; shape.values()]);
            // SAFETY: the CPU has fp16 arithmetic (checked above); every slice is T·H·D long.
            unsafe { attention_f16::attention(shape, &q, &k, &v, &mut ours) };
            reference::attention(shape, &q, &k, &v, &mut want);
            let e = ours
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(e < HALF_TOLERANCE_PER_SCORE * spread, "{shape:?}: {e:e}");
        }
    }
}
