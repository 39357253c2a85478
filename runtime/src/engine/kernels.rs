//! The kernels our passes run, and the one table of them this process uses.
//!
//! Laid out as tract-linalg lays out its own kernels:
//!
//! - [`reference`]: a portable implementation of every kernel, always built: the definition
//!   every test holds the others to, and what a pass runs on where no faster kernel exists.
//! - `x86_64` (AVX-512, AVX-512 VNNI) and `aarch64` (NEON, SDOT): each architecture's faster
//!   kernels, which [`Kernels::best`] plugs over the reference entries once per process from
//!   the CPU's features.
//! - [`packing`]: how a linear layer's weights are laid out for the int8 kernels, and the row
//!   padding the kernels share.
//! - [`threading`]: how a kernel splits its work over the running plan's threads.
//!
//! Besides the architecture folders themselves, this file and `cpu_features.rs` (what the CPU
//! offers and what tract is told of it) are the only ones of the crate that name a
//! `target_arch`.
//!
//! A pass whose kernel is only the reference here is not applied to the plans a device runs:
//! tract's own kernels beat a portable loop. Tests apply it anyway, with
//! [`Kernels::reference`], so that the passes' matching and rewriting are tested on every
//! architecture (under qemu too).

/// `$kernel::<R, B>($tile)` for the run-time tile height `$rows`, one of the literal heights
/// listed, and width `$registers` (1 to 4 registers): each shape is compiled with its sums in
/// registers. The attention kernels of each architecture dispatch their tiles through it (in
/// scope in the architecture folders, declared below it).
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(unused_macros)
)]
macro_rules! tile_kernel {
    ($kernel:ident, $rows:expr, $registers:expr, $tile:expr; $($r:literal)*) => {
        match ($rows, $registers) {
            $(
                ($r, 4) => $kernel::<$r, 4>($tile),
                ($r, 3) => $kernel::<$r, 3>($tile),
                ($r, 2) => $kernel::<$r, 2>($tile),
                ($r, 1) => $kernel::<$r, 1>($tile),
            )*
            (rows, registers) => unreachable!("no tile of {rows} rows and {registers} registers"),
        }
    };
}
// Parts of these serve the architectures' kernels only, which an architecture without kernels
// of its own leaves unused.
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
pub mod packing;
pub mod reference;
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
pub mod threading;

#[cfg(test)]
mod tests;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86_64;

use std::fmt;
use std::sync::OnceLock;

pub use packing::{Activation, Int8Gemm};

/// The shape of one attention: q, k, v and the output are each (tokens, heads, width),
/// row-major, as the export's ViT writes them (the 1/√width factor is already in q's weights).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Heads {
    /// Tokens T (queries and keys).
    pub tokens: usize,
    /// Heads H.
    pub heads: usize,
    /// Width D of one head.
    pub width: usize,
}

impl Heads {
    /// Values of q, k, v and the output, T·H·D.
    pub fn values(&self) -> usize {
        self.tokens * self.heads * self.width
    }

    /// Values between one token's row and the next, H·D.
    pub fn stride(&self) -> usize {
        self.heads * self.width
    }

    /// Multiply-accumulates of both products over every head (what threading is decided on).
    #[cfg_attr(
        not(any(target_arch = "x86_64", target_arch = "aarch64")),
        allow(dead_code)
    )]
    pub fn macs(&self) -> usize {
        2 * self.tokens * self.tokens * self.width * self.heads
    }
}

/// The constants of one LayerNorm over rows of C values:
/// `(x − mean) / √(variance + eps) · γ + β`, the mean being the row's sum × `mean_factor`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerNormParams<'a> {
    /// What the row sum is multiplied by to give the mean (1/C in the export's graph).
    pub mean_factor: f32,
    /// Added to the variance.
    pub eps: f32,
    /// γ, C values.
    pub gamma: &'a [f32],
    /// β, C values.
    pub beta: &'a [f32],
}

/// The arithmetic of tract's `QuantizeLinearU8`:
/// `y = clamp(round_ties_even(x · inv_scale) + zero_point, 0, 255)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantization {
    /// 1 / the ONNX `y_scale`.
    pub inv_scale: f32,
    /// The u8 zero point.
    pub zero_point: u8,
}

/// `out` (rows × n) from `a` (rows × k), on the running plan's threads.
///
/// # Safety
/// The table's CPU features are present, `a.len()` is a multiple of k and `out.len()` is
/// n per row of `a` ([`Kernels::int8_gemm`] checks the lengths).
pub type Int8GemmFn = unsafe fn(&Int8Gemm, &[u8], &mut [f32]);

/// `out = softmax(q kᵀ) v` per head, on the running plan's threads.
///
/// # Safety
/// The table's CPU features are present; q, k, v and `out` hold `Heads::values` values each.
pub type AttentionFn = unsafe fn(Heads, &[f32], &[f32], &[f32], &mut [f32]);

/// One LayerNorm row into `out`.
///
/// # Safety
/// The table's CPU features are present; the row, `out`, γ and β hold the same number of
/// values, at least one.
pub type LayerNormFn = unsafe fn(&LayerNormParams<'_>, &[f32], &mut [f32]);

/// `ys[i]` = `xs[i]` quantized.
///
/// # Safety
/// The table's CPU features are present; `xs` and `ys` have the same length.
pub type QuantizeFn = unsafe fn(Quantization, &[f32], &mut [u8]);

/// One entry of the table.
#[derive(Clone, Copy)]
pub struct Kernel<F> {
    /// How the kernel is named in plans and messages.
    pub name: &'static str,
    /// Whether this is the CPU's own code rather than the portable reference. The passes
    /// whose point is speed are applied to a device's plan only with native kernels.
    pub native: bool,
    /// Whether it computes in half precision (f16): the aarch64 attention's products, to
    /// [`HALF_VALUES_TOLERANCE`] and [`HALF_SCORES_TOLERANCE`] of the definition rather than a
    /// few ulp. (The tests read it to pick their bound.)
    #[cfg_attr(not(test), allow(dead_code))]
    pub half: bool,
    run: F,
}

/// How far an attention computed in f16 may be from the f64 definition, per unit of max |v|,
/// whatever the scores: v and the probabilities are rounded to f16 (relative 2⁻¹²) and summed
/// 32 terms at a time in f16. An output is a weighted mean of v's values, so this part of the
/// error scales with |v|. The int8 output projection that follows quantizes its input in steps
/// of 1/255 of its range, coarser still.
#[cfg_attr(not(test), allow(dead_code))]
pub const HALF_VALUES_TOLERANCE: f32 = 1e-3;

/// How much further an attention whose scores are computed in f16 may be, per unit of max |v|
/// and of the largest |score|: q and the centred keys are rounded to f16 and summed 32 terms
/// at a time in f16, so a score's error grows with the scores, and the exponential turns it
/// into a relative error of the probabilities. Measured on the kernel tests' shapes (v in
/// [−1, 1]) under qemu as a Cortex-A76, both products in f16: 7.6·10⁻⁴ with scores up to 2.2,
/// 1.6·10⁻² with scores up to 109 (1.5·10⁻⁴ per unit), and 9.2·10⁻⁵ when a key shared by every
/// token moves the scores up to 283 (the centring takes it out). The same with 16-term sums:
/// the rounding of the inputs to f16 dominates.
#[cfg_attr(not(test), allow(dead_code))]
pub const HALF_SCORES_TOLERANCE: f32 = 2e-4;

impl<F> Kernel<F> {
    /// A portable kernel.
    const fn reference(name: &'static str, run: F) -> Self {
        Self {
            name,
            native: false,
            half: false,
            run,
        }
    }

    /// A kernel of this CPU. Only the architecture folders make them, for features they
    /// have detected.
    #[cfg_attr(
        not(any(target_arch = "x86_64", target_arch = "aarch64")),
        allow(dead_code)
    )]
    const fn native(name: &'static str, run: F) -> Self {
        Self {
            name,
            native: true,
            half: false,
            run,
        }
    }

    /// A kernel of this CPU that computes in half precision.
    #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
    const fn native_half(name: &'static str, run: F) -> Self {
        Self {
            name,
            native: true,
            half: true,
            run,
        }
    }
}

/// The kernels of our ops: the portable reference ([`Kernels::reference`]) or the fastest this
/// CPU runs ([`Kernels::best`]). Only this module and the architecture folders build one, so a
/// table's kernels always run on the CPU that has it; the methods check the lengths.
#[derive(Clone, Copy)]
pub struct Kernels {
    int8_gemm: Kernel<Int8GemmFn>,
    attention: Kernel<AttentionFn>,
    layer_norm: Kernel<LayerNormFn>,
    quantize: Kernel<QuantizeFn>,
}

/// The portable table.
static REFERENCE: Kernels = Kernels {
    int8_gemm: Kernel::reference("xrvlm_reference_i32", reference::int8_gemm),
    attention: Kernel::reference("xrvlm_reference_attention", reference::attention),
    layer_norm: Kernel::reference("xrvlm_reference_layer_norm", reference::layer_norm),
    quantize: Kernel::reference("xrvlm_reference_quantize", reference::quantize),
};

impl Kernels {
    /// The portable kernels, on every CPU.
    #[cfg(test)]
    pub fn reference() -> &'static Kernels {
        &REFERENCE
    }

    /// The fastest kernels of this CPU, chosen on first use: the reference with this
    /// architecture's kernels plugged over it where the CPU has their features.
    pub fn best() -> &'static Kernels {
        static BEST: OnceLock<Kernels> = OnceLock::new();
        BEST.get_or_init(|| {
            let mut kernels = REFERENCE;
            plug(&mut kernels);
            kernels
        })
    }

    /// Every table this CPU runs: the reference, [`Self::best`] where it differs, and the
    /// tables of native kernels the best one passes over on this CPU (on an aarch64 CPU with
    /// f16 arithmetic, the f32 attention that CPUs without it run). Tests run each kernel of
    /// each and compare the native ones with the reference.
    #[cfg(test)]
    pub fn all_here() -> Vec<&'static Kernels> {
        static ALL: OnceLock<Vec<Kernels>> = OnceLock::new();
        let all = ALL.get_or_init(|| {
            let mut all = vec![REFERENCE, *Self::best()];
            all.extend(passed_over(Self::best()));
            all.dedup_by(|a, b| a == b);
            all
        });
        all.iter().collect()
    }

    /// The int8 product kernel.
    pub fn int8_gemm_kernel(&self) -> &Kernel<Int8GemmFn> {
        &self.int8_gemm
    }

    /// The attention kernel.
    pub fn attention_kernel(&self) -> &Kernel<AttentionFn> {
        &self.attention
    }

    /// The LayerNorm kernel.
    pub fn layer_norm_kernel(&self) -> &Kernel<LayerNormFn> {
        &self.layer_norm
    }

    /// The quantize kernel.
    pub fn quantize_kernel(&self) -> &Kernel<QuantizeFn> {
        &self.quantize
    }

    /// `out` (rows × n) from `a` (rows × k, row-major u8) through `gemm`.
    ///
    /// # Panics
    /// If `a` is not whole rows of k or `out` not n values per row.
    pub fn int8_gemm(&self, gemm: &Int8Gemm, a: &[u8], out: &mut [f32]) {
        let rows = a.len() / gemm.k();
        assert_eq!(a.len(), rows * gemm.k(), "activations are not whole rows");
        assert_eq!(out.len(), rows * gemm.n(), "output is not rows × n");
        // SAFETY: the table was built for this CPU (see `Kernels`) and the lengths were
        // checked just above.
        unsafe { (self.int8_gemm.run)(gemm, a, out) }
    }

    /// `out = softmax(q kᵀ) v` per head ([`Heads`] gives the layout).
    ///
    /// # Panics
    /// If a slice is not `shape.values()` long.
    pub fn attention(&self, shape: Heads, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) {
        for (name, len) in [
            ("q", q.len()),
            ("k", k.len()),
            ("v", v.len()),
            ("output", out.len()),
        ] {
            assert_eq!(len, shape.values(), "{name} is not tokens × heads × width");
        }
        // SAFETY: the table was built for this CPU and the lengths were checked just above.
        unsafe { (self.attention.run)(shape, q, k, v, out) }
    }

    /// Every row of `x` (rows of C = γ's length) normalised into `out`.
    ///
    /// # Panics
    /// If `x` and `out` differ in length, are not whole rows, or γ and β differ in length.
    pub fn layer_norm(&self, params: &LayerNormParams<'_>, x: &[f32], out: &mut [f32]) {
        let c = params.gamma.len();
        assert!(
            c > 0 && params.beta.len() == c,
            "γ and β are not C > 0 values"
        );
        assert_eq!(x.len(), out.len(), "input and output differ in length");
        assert!(x.len().is_multiple_of(c), "the input is not whole rows");
        for (row, out) in x.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
            // SAFETY: the table was built for this CPU; `row`, `out`, γ and β are C values.
            unsafe { (self.layer_norm.run)(params, row, out) };
        }
    }

    /// `ys` = `xs` quantized.
    ///
    /// # Panics
    /// If the lengths differ.
    pub fn quantize(&self, quantization: Quantization, xs: &[f32], ys: &mut [u8]) {
        assert_eq!(xs.len(), ys.len(), "input and output differ in length");
        // SAFETY: the table was built for this CPU and the lengths are equal.
        unsafe { (self.quantize.run)(quantization, xs, ys) }
    }

    /// The names of the kernels, in the table's order.
    fn names(&self) -> [&'static str; 4] {
        [
            self.int8_gemm.name,
            self.attention.name,
            self.layer_norm.name,
            self.quantize.name,
        ]
    }
}

impl fmt::Debug for Kernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// Two tables are the same if they have the same kernels (ops of ours compare their tables).
impl PartialEq for Kernels {
    fn eq(&self, other: &Self) -> bool {
        self.names() == other.names()
    }
}

impl Eq for Kernels {}

/// The tables of native kernels that `best` passes over on this CPU (tests run them too).
#[cfg(test)]
fn passed_over(best: &Kernels) -> Vec<Kernels> {
    #[cfg(target_arch = "aarch64")]
    return aarch64::passed_over(best);
    #[cfg(not(target_arch = "aarch64"))]
    {
        let _ = best;
        vec![]
    }
}

/// This architecture's kernels over the reference entries, where the CPU has their features.
fn plug(kernels: &mut Kernels) {
    #[cfg(target_arch = "x86_64")]
    x86_64::plug(kernels);
    #[cfg(target_arch = "aarch64")]
    aarch64::plug(kernels);
    // Other architectures keep the reference.
    let _ = kernels;
}
