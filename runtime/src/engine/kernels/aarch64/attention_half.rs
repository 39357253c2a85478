//! The attention of aarch64 CPUs with FEAT_FP16 (the boards' A76 and A78AE): both products in
//! f16 `fmla` (8 lanes: half the f32 kernel's instructions), the softmax in f32 as in
//! [`super::attention`].
//!
//! The value product is the easy one: a probability is at most 1 and a row of them sums to 1,
//! so an output value is a weighted mean of v's values and its error in f16 stays a fraction
//! of max |v| whatever the scores are. A score's error goes through the exponential instead,
//! so the score product takes three precautions (a first f16 attention without them moved the
//! int8 ViT's parts by 8.4 % and was withdrawn):
//! - the mean key is taken out of every key first: that moves each query's row of scores by a
//!   constant, which the softmax cancels, and leaves smaller sums for f16 to round;
//! - queries and keys are scaled by powers of two (exact) so that the largest of each is in
//!   [8, 16): no sum can overflow f16 and small values stay normal;
//! - [`SCORE_CHUNK`] terms are summed in f16, then added in f32.
//!
//! The preparation of a head (the largest values, the centring) is NEON too: written as scalar
//! folds it was 1.5 % of the int8 ViT-B/16 frame (a64-cycles).
//!
//! Precision: within [`HALF_VALUES_TOLERANCE`](super::super::HALF_VALUES_TOLERANCE) of max |v|
//! plus [`HALF_SCORES_TOLERANCE`](super::super::HALF_SCORES_TOLERANCE) per unit of the largest
//! |score| of the f64 definition (the tests).

use std::arch::aarch64::*;

use super::super::Heads;
use super::attention::{run, Scores, Values, TILE_ROWS};
use super::vector_math::LANES;

/// How plans name this kernel.
pub const NAME: &str = "xrvlm_neon_attention_4x32_f16";

/// f16 lanes of one register.
const HALF_LANES: usize = 8;
/// Registers of columns of one tile: 4 rows × 4 registers = 16 f16 accumulators, 4 registers of
/// the left operand (queries or probabilities) and one of the right (keys or values) at a time.
const TILE_VECTORS: usize = 4;
/// Terms of the score product summed in f16 before they are added to the f32 sum.
const SCORE_CHUNK: usize = 32;
/// Terms of the value product summed in f16 before they are added to the f32 sum.
const VALUE_CHUNK: usize = 32;

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
    // SAFETY: the caller's contract, FEAT_FP16 included.
    unsafe { run::<HalfScores, HalfValues>(shape, q, k, v, out) }
}

/// One head's queries and centred keys in f16, each scaled by a power of two.
struct HalfScores {
    /// q · 2^a: `tokens` rows of `depth` values, zero past the head's width.
    q: Half,
    /// (k − k̄)ᵀ · 2^b, k̄ the mean key: `depth` rows of `padded` keys, zero past the last
    /// token and in the rows past the head's width.
    kt: Half,
    /// 2^−(a+b): what turns the f16 sums back into scores.
    factor: f32,
}

impl Scores for HalfScores {
    const KEYS_PER_REGISTER: usize = HALF_LANES;

    unsafe fn new(shape: Heads, h: usize, q: &[f32], k: &[f32], padded: usize) -> Self {
        let (tokens, width) = (shape.tokens, shape.width);
        let depth = width.div_ceil(HALF_LANES) * HALF_LANES;
        let queries = head_rows(q, shape, h);
        let q_scale = eight_or_more(
            queries
                .iter()
                .fold(0f32, |m, row| m.max(largest_magnitude(row))),
        );
        let mut q_half = Half::zeros(tokens, depth);
        for (j, row) in queries.iter().enumerate() {
            // SAFETY: the caller's contract: the CPU has FEAT_FP16.
            unsafe { to_half(row, q_scale, &mut q_half.row(j)[..width]) };
        }
        // kᵀ in f32, each row then centred on its mean: the mean key is the same for every
        // score of a query row, so taking it out changes each row of scores by a constant,
        // which the softmax cancels, and leaves smaller sums for f16 to round.
        let mut kt = vec![0f32; width * padded];
        for (j, row) in head_rows(k, shape, h).iter().enumerate() {
            for (d, &x) in row.iter().enumerate() {
                kt[d * padded + j] = x;
            }
        }
        let largest = kt
            .chunks_exact_mut(padded)
            .fold(0f32, |m, row| m.max(centre(&mut row[..tokens])));
        let k_scale = eight_or_more(largest);
        let mut kt_half = Half::zeros(depth, padded);
        for (d, row) in kt.chunks_exact(padded).enumerate() {
            // SAFETY: the caller's contract: the CPU has FEAT_FP16.
            unsafe { to_half(row, k_scale, kt_half.row(d)) };
        }
        Self {
            q: q_half,
            kt: kt_half,
            factor: (q_scale * k_scale).recip(),
        }
    }

    unsafe fn score(&mut self, row: usize, rows: usize, scores: &mut [f32]) {
        let depth = self.q.stride;
        let queries = Operand {
            values: &self.q.values[row * depth..],
            stride: depth,
        };
        // SAFETY: the caller's contract: FEAT_FP16, `rows` rows of queries from `row`, and
        // `scores` holds rows × padded (kt's stride).
        unsafe {
            product(
                &queries,
                &self.kt.operand(),
                scores,
                rows,
                SCORE_CHUNK,
                self.factor,
            )
        };
    }
}

/// Head `h`'s row of each token in `x`.
fn head_rows(x: &[f32], shape: Heads, h: usize) -> Vec<&[f32]> {
    let (width, stride) = (shape.width, shape.stride());
    (0..shape.tokens)
        .map(|j| &x[j * stride + h * width..][..width])
        .collect()
}

/// The power of two that brings `largest` (a largest |x|) into [8, 16) (1 for 0, a subnormal
/// or a non-finite value). Scaled so, a product of a query and a key is below 2⁸ and a sum of
/// [`SCORE_CHUNK`] of them below 2¹³ (f16 holds up to 65 504), while values far smaller than
/// the largest stay normal f16 numbers (down to 6·10⁻⁵).
fn eight_or_more(largest: f32) -> f32 {
    if !largest.is_normal() {
        return 1.0;
    }
    let exponent = largest.log2().floor() as i32;
    2f32.powi((3 - exponent).clamp(-100, 100))
}

/// The largest |x| of `xs`, NaN ignored (`fmaxnm`, as `f32::max`).
fn largest_magnitude(xs: &[f32]) -> f32 {
    let whole = xs.len() - xs.len() % LANES;
    // SAFETY: NEON is baseline; `at + 4 ≤ whole ≤ len`.
    let body = unsafe {
        let mut largest = vdupq_n_f32(0.0);
        for at in (0..whole).step_by(LANES) {
            largest = vmaxnmq_f32(largest, vabsq_f32(vld1q_f32(xs.as_ptr().add(at))));
        }
        vmaxnmvq_f32(largest)
    };
    xs[whole..].iter().fold(body, |m, x| m.max(x.abs()))
}

/// `xs` less their mean, in place; returns the largest |x| after, NaN ignored.
fn centre(xs: &mut [f32]) -> f32 {
    let whole = xs.len() - xs.len() % LANES;
    let (body, rest) = xs.split_at_mut(whole);
    // SAFETY: NEON is baseline; every access is a whole register of `body`.
    unsafe {
        let mut sum = vdupq_n_f32(0.0);
        for x in body.chunks_exact(LANES) {
            sum = vaddq_f32(sum, vld1q_f32(x.as_ptr()));
        }
        let total = rest.iter().fold(vaddvq_f32(sum), |t, &x| t + x);
        let mean = total / (whole + rest.len()) as f32;
        let (shift, mut largest) = (vdupq_n_f32(mean), vdupq_n_f32(0.0));
        for x in body.chunks_exact_mut(LANES) {
            let centred = vsubq_f32(vld1q_f32(x.as_ptr()), shift);
            largest = vmaxnmq_f32(largest, vabsq_f32(centred));
            vst1q_f32(x.as_mut_ptr(), centred);
        }
        rest.iter_mut().fold(vmaxnmvq_f32(largest), |m, x| {
            *x -= mean;
            m.max(x.abs())
        })
    }
}

/// One head's v in f16, with the buffers of its row blocks.
struct HalfValues {
    shape: Heads,
    /// v: `keys` rows of `depth` values, zero past the last token and the head's width.
    v: Half,
    /// A block's probabilities: [`TILE_ROWS`] rows of `keys`, zero past the last token.
    probabilities: Half,
    /// A block's outputs: [`TILE_ROWS`] rows of `depth`.
    sums: Vec<f32>,
}

impl Values for HalfValues {
    unsafe fn new(shape: Heads, h: usize, v: &[f32]) -> Self {
        let keys = shape.tokens.div_ceil(HALF_LANES) * HALF_LANES;
        let depth = shape.width.div_ceil(HALF_LANES) * HALF_LANES;
        let mut half = Half::zeros(keys, depth);
        for j in 0..shape.tokens {
            let row = &v[j * shape.stride() + h * shape.width..][..shape.width];
            // SAFETY: the caller's contract: the CPU has FEAT_FP16.
            unsafe { to_half(row, 1.0, &mut half.row(j)[..shape.width]) };
        }
        Self {
            shape,
            v: half,
            probabilities: Half::zeros(TILE_ROWS, keys),
            sums: vec![0f32; TILE_ROWS * depth],
        }
    }

    unsafe fn weigh(&mut self, exps: &mut [f32], padded: usize, scales: &[f32], out: *mut f32) {
        let (tokens, width) = (self.shape.tokens, self.shape.width);
        assert!(scales.len() <= TILE_ROWS && exps.len() >= scales.len() * padded);
        for (r, &scale) in scales.iter().enumerate() {
            let row = &mut self.probabilities.row(r)[..tokens];
            // SAFETY: the caller's contract: the CPU has FEAT_FP16.
            unsafe { to_half(&exps[r * padded..][..tokens], scale, row) };
        }
        let depth = self.v.stride;
        // SAFETY: FEAT_FP16; the probabilities are scales.len() rows of `keys`, v is keys ×
        // depth, `sums` holds TILE_ROWS rows of depth.
        unsafe {
            product(
                &self.probabilities.operand(),
                &self.v.operand(),
                &mut self.sums,
                scales.len(),
                VALUE_CHUNK,
                1.0,
            )
        };
        for r in 0..scales.len() {
            // SAFETY: the caller's contract: output row r has the head's `width` columns,
            // this thread's alone.
            let dst =
                unsafe { std::slice::from_raw_parts_mut(out.add(r * self.shape.stride()), width) };
            dst.copy_from_slice(&self.sums[r * depth..][..width]);
        }
    }
}

/// `xs · scale` rounded to f16 (as bits) into `ys` of the same length.
///
/// # Safety
/// The CPU has FEAT_FP16.
#[target_feature(enable = "fp16")]
unsafe fn to_half(xs: &[f32], scale: f32, ys: &mut [u16]) {
    assert_eq!(xs.len(), ys.len());
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
        ys[whole..].copy_from_slice(&halves[..rest]);
    }
}

/// A row-major f16 matrix (as bits), zero-padded to whole registers.
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

    fn operand(&self) -> Operand<'_> {
        Operand {
            values: &self.values,
            stride: self.stride,
        }
    }
}

/// A matrix operand of [`product`]: f16 rows `stride` apart.
struct Operand<'a> {
    values: &'a [u16],
    stride: usize,
}

/// `out[r, c] = factor · Σ_t a[r, t] · b[t, c]` for `rows` rows of `a` (its `stride` is the
/// contraction, a multiple of 8) and all columns of `b` (its `stride`, a multiple of 8), into
/// rows of `out` of b's width: `chunk` terms at a time (a multiple of 8) summed in f16, the
/// chunks in f32.
///
/// # Safety
/// FEAT_FP16.
#[target_feature(enable = "fp16")]
unsafe fn product(
    a: &Operand<'_>,
    b: &Operand<'_>,
    out: &mut [f32],
    rows: usize,
    chunk: usize,
    factor: f32,
) {
    assert!(a.values.len() >= rows * a.stride && b.values.len() >= a.stride * b.stride);
    assert!(out.len() >= rows * b.stride && a.stride.is_multiple_of(HALF_LANES));
    assert!(chunk > 0 && chunk.is_multiple_of(HALF_LANES));
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
            chunk,
            factor,
        };
        // SAFETY: the asserts above; registers `first .. first + count` of every row of b and
        // `out`.
        unsafe { tile_kernel!(tile_of, rows, count, &tile; 1 2 3 4) };
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
    /// Terms summed in f16 before they are added in f32 (a multiple of 8).
    chunk: usize,
    /// What every sum is multiplied by.
    factor: f32,
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
/// the tile's `chunk` terms summed in f16, the chunks times its factor summed in f32 in the
/// output.
///
/// # Safety
/// As [`product`], for the tile's rows and registers.
#[inline]
#[target_feature(enable = "fp16")]
unsafe fn tile_of<const R: usize, const B: usize>(tile: &Tile) {
    let zero = vreinterpretq_f16_u16(vdupq_n_u16(0));
    let factor = vdupq_n_f32(tile.factor);
    let b_row = |t: usize| tile.b.wrapping_add(t * tile.b_stride);
    let length = tile.a_stride;
    let mut start = 0;
    while start < length {
        let end = (start + tile.chunk).min(length);
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
                    let (low, high) = (vcvt_f32_f16(vget_low_f16(*acc)), vcvt_high_f32_f16(*acc));
                    let (low, high) = match start {
                        0 => (vmulq_f32(low, factor), vmulq_f32(high, factor)),
                        _ => (
                            vfmaq_f32(vld1q_f32(at), low, factor),
                            vfmaq_f32(vld1q_f32(at.add(4)), high, factor),
                        ),
                    };
                    vst1q_f32(at, low);
                    vst1q_f32(at.add(4), high);
                }
            }
        }
        start = end;
    }
}
