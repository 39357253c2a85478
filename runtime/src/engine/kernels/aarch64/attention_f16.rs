//! Multi-head attention in half precision for aarch64 CPUs with FEAT_FP16 (the A76 and A78AE
//! of the boards): the two products of each head in f16 `fmla` (8 lanes, twice the f32
//! kernel's multiply-accumulates per instruction), the softmax in f32 as in
//! [`super::attention`].
//!
//! Why it exists: with the linear layers on SDOT, the f32 attention was the largest cost of an
//! int8 ViT-B/16 frame outside the int8 products in modelled Cortex-A76 cycles (a sixth of
//! the frame, `tools/arm-cycles.sh`, BENCHMARKS.md); this kernel halves it.
//!
//! Precision: q, k, v and the probabilities are rounded to f16 (relative 2⁻¹²), each product
//! sums [`CHUNK`] terms in f16 and the chunks in f32. That is not the f32 kernel's 2·10⁻⁶ of the
//! f64 definition but about 10⁻⁴ of the values' scale per unit of score
//! ([`HALF_TOLERANCE_PER_SCORE`](super::super::HALF_TOLERANCE_PER_SCORE), the tests): below the
//! error the int8 layers before it already put in q, k and v (their activations are quantized to
//! 8 bits), and the int8 plans' agreement is checked end to end.

use std::arch::aarch64::*;

use super::super::threading::{for_each_part, SharedOutput};
use super::super::Heads;
use super::attention::exponentiate;

/// How plans name this kernel.
#[allow(dead_code)] // the table would name it; it is not in one today (see `aarch64.rs`)
pub const NAME: &str = "xrvlm_neon_fp16_attention_4x32";

/// f16 lanes of one register.
const HALF_LANES: usize = 8;
/// Rows of one register tile.
const TILE_ROWS: usize = 4;
/// Registers of columns of one tile: 4 rows × 4 registers = 16 f16 accumulators, 4 registers of
/// the left operand and one of the right at a time.
const TILE_VECTORS: usize = 4;
/// Terms of a product summed in f16 before they are added to the f32 sum.
const CHUNK: usize = 32;

/// `$kernel::<R, B>($tile)` for the run-time tile height `$rows` and width `$registers`.
macro_rules! tile_kernel {
    ($kernel:ident, $rows:expr, $registers:expr, $tile:expr) => {
        tile_kernel!(@rows $kernel, $rows, $registers, $tile; 1 2 3 4)
    };
    (@rows $kernel:ident, $rows:expr, $registers:expr, $tile:expr; $($r:literal)*) => {
        match ($rows, $registers) {
            $(
                ($r, 4) => $kernel::<$r, 4>($tile),
                ($r, 3) => $kernel::<$r, 3>($tile),
                ($r, 2) => $kernel::<$r, 2>($tile),
                ($r, 1) => $kernel::<$r, 1>($tile),
            )*
            _ => unreachable!("a tile has 1 to {TILE_ROWS} rows and 1 to 4 registers"),
        }
    };
}

/// Whether this CPU runs the kernel (FEAT_FP16, from the auxiliary vector's hardware
/// capabilities).
pub fn available() -> bool {
    std::arch::is_aarch64_feature_detected!("fp16")
}

/// `out = softmax(q kᵀ) v` per head, on the running plan's threads, one part per range of
/// heads.
///
/// # Safety
/// As [`super::super::AttentionFn`]: the CPU has FEAT_FP16 ([`available`]); q, k, v and `out`
/// hold `shape.values()` values each.
pub unsafe fn attention(shape: Heads, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) {
    let out = SharedOutput::new(out);
    for_each_part(shape.heads, shape.macs(), |heads| {
        for h in heads {
            // SAFETY: the caller guarantees FEAT_FP16 and the lengths; the parts have disjoint
            // ranges of heads, and head `h` writes only its own columns of `out`.
            unsafe { head(shape, h, q, k, v, &out) }
        }
    });
}

/// `xs · scale` rounded to f16 (as bits) into `ys` of the same length (the scaling is the
/// softmax's last step; 1 elsewhere, which changes no value).
#[target_feature(enable = "fp16")]
fn to_half(xs: &[f32], scale: f32, ys: &mut [u16]) {
    let whole = xs.len() - xs.len() % HALF_LANES;
    // SAFETY: `at + 8 ≤ whole ≤ len` of both slices.
    unsafe {
        let scale = vdupq_n_f32(scale);
        for at in (0..whole).step_by(HALF_LANES) {
            let low = vcvt_f16_f32(vmulq_f32(vld1q_f32(xs.as_ptr().add(at)), scale));
            let high = vcvt_f16_f32(vmulq_f32(vld1q_f32(xs.as_ptr().add(at + 4)), scale));
            let halves = vreinterpretq_u16_f16(vcombine_f16(low, high));
            vst1q_u16(ys.as_mut_ptr().add(at), halves);
        }
    }
    // The last values past whole registers, one register through a local array.
    let rest = xs.len() - whole;
    if rest > 0 {
        let mut lanes = [0f32; HALF_LANES];
        for (lane, x) in lanes.iter_mut().zip(&xs[whole..]) {
            *lane = x * scale;
        }
        let mut halves = [0u16; HALF_LANES];
        // SAFETY: 8 values in and out of local arrays.
        unsafe {
            let low = vcvt_f16_f32(vld1q_f32(lanes.as_ptr()));
            let high = vcvt_f16_f32(vld1q_f32(lanes.as_ptr().add(4)));
            vst1q_u16(
                halves.as_mut_ptr(),
                vreinterpretq_u16_f16(vcombine_f16(low, high)),
            );
        }
        for (y, h) in ys[whole..].iter_mut().zip(halves) {
            *y = h;
        }
    }
}

/// A row-major f16 matrix, zero-padded to whole registers in both directions.
struct Half {
    values: Vec<u16>,
    /// Values per row (a multiple of 8).
    stride: usize,
}

impl Half {
    fn zeros(rows: usize, stride: usize) -> Self {
        Self {
            values: vec![0; rows * stride],
            stride,
        }
    }

    fn row(&mut self, i: usize) -> &mut [u16] {
        &mut self.values[i * self.stride..][..self.stride]
    }
}

/// One head: q, kᵀ and v of the head in f16 once, then scores, softmax and the product with v
/// block by block of query rows.
///
/// # Safety
/// FEAT_FP16; the slices hold `shape.values()` values, and so does `out`; no other thread
/// writes head `h`'s columns of `out`.
#[target_feature(enable = "fp16")]
unsafe fn head(
    shape: Heads,
    h: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &SharedOutput<'_, f32>,
) {
    let (tokens, width, stride) = (shape.tokens, shape.width, shape.stride());
    let keys = tokens.div_ceil(HALF_LANES) * HALF_LANES;
    let depth = width.div_ceil(HALF_LANES) * HALF_LANES;
    let column = h * width;
    let head_row = |x: &[f32], j: usize, into: &mut [u16]| {
        to_half(&x[j * stride + column..][..width], 1.0, into)
    };
    // q and v: token rows of `depth`; kᵀ: `depth` rows of `keys` tokens; zeros past the ends.
    let (mut qh, mut vh, mut kt) = (
        Half::zeros(tokens, depth),
        Half::zeros(keys, depth),
        Half::zeros(depth, keys),
    );
    let mut key = vec![0u16; width];
    for j in 0..tokens {
        head_row(q, j, &mut qh.row(j)[..width]);
        head_row(v, j, &mut vh.row(j)[..width]);
        head_row(k, j, &mut key);
        for (d, &x) in key.iter().enumerate() {
            kt.values[d * keys + j] = x;
        }
    }
    let mut scores = vec![0f32; TILE_ROWS * keys];
    let mut probabilities = Half::zeros(TILE_ROWS, keys);
    let mut values = vec![0f32; TILE_ROWS * depth];
    let mut row = 0;
    while row < tokens {
        let rows = (tokens - row).min(TILE_ROWS);
        let queries = Operand {
            values: &qh.values[row * depth..],
            stride: depth,
        };
        // SAFETY: FEAT_FP16; the operands are `rows` × depth and depth × keys, `scores` holds
        // TILE_ROWS rows of `keys`.
        unsafe { product(&queries, &kt.operand(), &mut scores, rows) };
        for r in 0..rows {
            let row = &mut scores[r * keys..][..tokens];
            let scale = exponentiate(row).recip();
            to_half(row, scale, &mut probabilities.row(r)[..tokens]);
        }
        // SAFETY: as above, for rows × keys by keys × depth into TILE_ROWS rows of `depth`.
        unsafe { product(&probabilities.operand(), &vh.operand(), &mut values, rows) };
        for r in 0..rows {
            // SAFETY: row `row + r` < tokens of `out`, head h's columns, this head's alone.
            let dst = unsafe {
                std::slice::from_raw_parts_mut(out.ptr().add((row + r) * stride + column), width)
            };
            dst.copy_from_slice(&values[r * depth..][..width]);
        }
        row += rows;
    }
}

/// A matrix operand of [`product`]: f16 rows `stride` apart.
struct Operand<'a> {
    values: &'a [u16],
    stride: usize,
}

impl Half {
    fn operand(&self) -> Operand<'_> {
        Operand {
            values: &self.values,
            stride: self.stride,
        }
    }
}

/// `out[r, c] = Σ_t a[r, t] · b[t, c]` for `rows` rows of `a` (its `stride` is the contraction,
/// a multiple of 8) and all columns of `b` (its `stride`, a multiple of 8), into rows of `out`
/// of b's width.
///
/// # Safety
/// FEAT_FP16; `a` holds `rows` rows, `b` a.stride rows, `out` `rows` rows of b.stride values.
#[target_feature(enable = "fp16")]
unsafe fn product(a: &Operand<'_>, b: &Operand<'_>, out: &mut [f32], rows: usize) {
    assert!(a.values.len() >= rows * a.stride && b.values.len() >= a.stride * b.stride);
    assert!(out.len() >= rows * b.stride);
    let registers = b.stride / HALF_LANES;
    let mut first = 0;
    while first < registers {
        let count = (registers - first).min(TILE_VECTORS);
        let tile = Tile {
            a: a.values.as_ptr(),
            a_stride: a.stride,
            b: b.values[first * HALF_LANES..].as_ptr(),
            b_stride: b.stride,
            out: out[first * HALF_LANES..].as_mut_ptr(),
        };
        // SAFETY: the asserts above; registers `first .. first + count` of every row of b and
        // `out`.
        unsafe { tile_kernel!(tile_of, rows, count, &tile) };
        first += count;
    }
}

/// Where one tile reads and writes.
struct Tile {
    /// The tile's first row of the left operand.
    a: *const u16,
    a_stride: usize,
    /// The right operand at the tile's first column.
    b: *const u16,
    b_stride: usize,
    /// The output at the tile's first row and column; rows `b_stride` apart.
    out: *mut f32,
}

/// `acc[r][c] += b[c] · lane L of a[r]`, b's registers loaded one at a time from `b`.
///
/// # Safety
/// FEAT_FP16; `B` registers of 8 values from `b` are readable.
#[inline]
#[target_feature(enable = "fp16")]
unsafe fn fma_by_lane<const R: usize, const B: usize, const L: i32>(
    acc: &mut [[float16x8_t; B]; R],
    a: &[float16x8_t; R],
    b: *const u16,
) {
    for c in 0..B {
        // SAFETY: the caller's contract.
        unsafe {
            let column = vreinterpretq_f16_u16(vld1q_u16(b.add(c * HALF_LANES)));
            for (acc, x) in acc.iter_mut().zip(a) {
                acc[c] = vfmaq_laneq_f16::<L>(acc[c], column, *x);
            }
        }
    }
}

/// `R` rows × `B` registers of 8 columns over the whole contraction, chunk by chunk of
/// [`CHUNK`] terms summed in f16, the chunks summed in f32 in the output.
///
/// # Safety
/// As [`product`], for the tile's rows and registers.
#[inline]
#[target_feature(enable = "fp16")]
unsafe fn tile_of<const R: usize, const B: usize>(tile: &Tile) {
    let zero = vreinterpretq_f16_u16(vdupq_n_u16(0));
    let b_row = |t: usize| tile.b.wrapping_add(t * tile.b_stride);
    let length = tile.a_stride;
    let mut start = 0;
    while start < length {
        let end = (start + CHUNK).min(length);
        let mut acc = [[zero; B]; R];
        let mut t = start;
        while t < end {
            // SAFETY: row r < R of a has values t .. t + 8 ≤ its stride; rows t .. t + 8 of b
            // have the tile's B registers.
            unsafe {
                let a: [float16x8_t; R] = std::array::from_fn(|r| {
                    vreinterpretq_f16_u16(vld1q_u16(tile.a.add(r * tile.a_stride + t)))
                });
                fma_by_lane::<R, B, 0>(&mut acc, &a, b_row(t));
                fma_by_lane::<R, B, 1>(&mut acc, &a, b_row(t + 1));
                fma_by_lane::<R, B, 2>(&mut acc, &a, b_row(t + 2));
                fma_by_lane::<R, B, 3>(&mut acc, &a, b_row(t + 3));
                fma_by_lane::<R, B, 4>(&mut acc, &a, b_row(t + 4));
                fma_by_lane::<R, B, 5>(&mut acc, &a, b_row(t + 5));
                fma_by_lane::<R, B, 6>(&mut acc, &a, b_row(t + 6));
                fma_by_lane::<R, B, 7>(&mut acc, &a, b_row(t + 7));
            }
            t += HALF_LANES;
        }
        for (r, acc) in acc.iter().enumerate() {
            for (c, acc) in acc.iter().enumerate() {
                // SAFETY: row r < R of the output, register c < B of the tile's columns.
                unsafe {
                    let at = tile.out.add(r * tile.b_stride + c * HALF_LANES);
                    let (mut low, mut high) =
                        (vcvt_f32_f16(vget_low_f16(*acc)), vcvt_high_f32_f16(*acc));
                    if start > 0 {
                        low = vaddq_f32(vld1q_f32(at), low);
                        high = vaddq_f32(vld1q_f32(at.add(4)), high);
                    }
                    vst1q_f32(at, low);
                    vst1q_f32(at.add(4), high);
                }
            }
        }
        start = end;
    }
}
