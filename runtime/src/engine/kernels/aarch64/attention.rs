//! Multi-head attention for aarch64 CPUs, in NEON: `out_h = softmax(q_h k_hᵀ) v_h` for every
//! head h, in f32, over the (tokens, heads, width) layout of [`Heads`]. The x86-64 kernel's
//! plan (`x86_64/attention.rs`) on 4-lane registers.
//!
//! Why it exists: tract 0.23.9 runs each head's two products as general matrix products,
//! packing both operands of each first, and the softmax as separate passes over the scores.
//! Here each part of the heads transposes k_h once per head, then for each block of four query
//! rows computes the scores in registers (`fmla` by element: four query values per load),
//! turns them into probabilities in place while they are in L1 and multiplies them by v_h read
//! in place.
//!
//! Precision: the same float steps as tract's softmax (subtract the row's max, exponentiate,
//! sum, multiply by the sum's reciprocal), with an exponential accurate to about 1 ulp
//! ([`Exp`]), so the output is not tract's bits: the tests hold it to the reference kernel
//! (the f64 definition).

use std::arch::aarch64::*;

use super::super::threading::{for_each_part, SharedOutput};
use super::super::Heads;
use super::vector_math::{Exp, LANES};

/// How plans name this kernel.
pub const NAME: &str = "xrvlm_neon_attention_4x16";

/// Query rows of one register tile.
pub(super) const TILE_ROWS: usize = 4;
/// Registers of columns of one tile: 4 rows × 4 registers = 16 accumulators, with 4 registers
/// of queries (or probabilities) and 4 of keys (or values): 24 of the 32.
const TILE_VECTORS: usize = 4;

/// `out = softmax(q kᵀ) v` per head, on the running plan's threads, one part per range of
/// heads.
///
/// # Safety
/// As [`super::super::AttentionFn`]: q, k, v and `out` hold `shape.values()` values each.
/// (NEON is part of every aarch64 CPU.)
pub unsafe fn attention(shape: Heads, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) {
    // SAFETY: the caller's contract; both products need NEON only.
    unsafe { run::<SingleScores, SingleValues>(shape, q, k, v, out) }
}

/// How a head's queries meet its keys: in f32 ([`SingleScores`]) or in f16
/// (`super::attention_half`). The softmax is this module's either way.
pub(super) trait Scores {
    /// Key columns of the scores come in whole registers of this many (the scores' rows are
    /// padded to a multiple of it).
    const KEYS_PER_REGISTER: usize;

    /// Head `h`'s queries and keys, prepared once per head, for rows of `padded` scores.
    ///
    /// # Safety
    /// `q` and `k` hold `shape.values()` values; the CPU has what the implementation needs.
    unsafe fn new(shape: Heads, h: usize, q: &[f32], k: &[f32], padded: usize) -> Self;

    /// Rows `row .. row + rows` of the head's scores into `scores`, rows of `padded` apart:
    /// `q[r] · k[j]` for every key j up to a constant of each row (what the softmax cancels).
    ///
    /// # Safety
    /// `row + rows` ≤ tokens, `rows` ≤ [`TILE_ROWS`]; `scores` holds `rows × padded` values.
    unsafe fn score(&mut self, row: usize, rows: usize, scores: &mut [f32]);
}

/// How a head's probabilities meet its values: in f32 ([`SingleValues`]) or in f16
/// (`super::attention_half`).
pub(super) trait Values {
    /// Head `h`'s values, prepared once per head.
    ///
    /// # Safety
    /// `v` holds `shape.values()` values; the CPU has what the implementation needs.
    unsafe fn new(shape: Heads, h: usize, v: &[f32]) -> Self;

    /// `out[r, :] = scales[r] · Σ_j exps[r, j] · v[j, :]` for one row r of exponentials per
    /// scale (`padded` apart, the head's tokens in each), into the head's columns of output
    /// rows a token's stride apart from `out`. `exps` may be overwritten.
    ///
    /// # Safety
    /// `exps` holds `scales.len()` rows of `padded` ≥ tokens values; `out` has as many rows of
    /// the head's columns, written by no other thread.
    unsafe fn weigh(&mut self, exps: &mut [f32], padded: usize, scales: &[f32], out: *mut f32);
}

/// [`attention`] with the score product of `S` and the value product of `V`, on the running
/// plan's threads, one part per range of heads.
///
/// # Safety
/// As [`attention`], and the CPU has what `S` and `V` need.
pub(super) unsafe fn run<S: Scores, V: Values>(
    shape: Heads,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) {
    let out = SharedOutput::new(out);
    for_each_part(shape.heads, shape.macs(), |heads| {
        for h in heads {
            // SAFETY: the caller guarantees the lengths and the features; the parts have
            // disjoint ranges of heads, and head `h` writes only its own columns of `out`.
            unsafe { head::<S, V>(shape, h, q, k, v, &out) }
        }
    });
}

/// One head: its keys and values prepared once, then scores, softmax and the product with v
/// block by block of query rows.
///
/// # Safety
/// The slices hold `shape.values()` values, and so does `out`; no other thread writes head
/// `h`'s columns of `out`; the CPU has what `S` and `V` need.
unsafe fn head<S: Scores, V: Values>(
    shape: Heads,
    h: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &SharedOutput<'_, f32>,
) {
    let (tokens, width, stride) = (shape.tokens, shape.width, shape.stride());
    let padded = tokens.div_ceil(S::KEYS_PER_REGISTER) * S::KEYS_PER_REGISTER;
    // SAFETY: the caller's contract.
    let (mut keys, mut values) = unsafe { (S::new(shape, h, q, k, padded), V::new(shape, h, v)) };
    let mut scores = vec![0f32; TILE_ROWS * padded];
    let mut scales = [0f32; TILE_ROWS];
    let column = h * width;
    let mut row = 0;
    while row < tokens {
        let rows = (tokens - row).min(TILE_ROWS);
        // SAFETY: rows `row .. row + rows` < tokens of q and `out`, head h's columns
        // (column + width ≤ stride); `scores` is TILE_ROWS × padded; the output columns are
        // this head's alone.
        unsafe {
            keys.score(row, rows, &mut scores);
            for (r, scale) in scales[..rows].iter_mut().enumerate() {
                *scale = exponentiate(&mut scores[r * padded..][..tokens]).recip();
            }
            let out = out.ptr().add(row * stride + column);
            values.weigh(&mut scores, padded, &scales[..rows], out);
        }
        row += rows;
    }
}

/// The score product in f32: kᵀ once per head, q read in place.
struct SingleScores {
    /// q at the head's first column.
    q: *const f32,
    stride: usize,
    width: usize,
    /// kᵀ: width rows of `padded` keys, zero past the last token.
    kt: Vec<f32>,
    padded: usize,
}

impl Scores for SingleScores {
    const KEYS_PER_REGISTER: usize = LANES;

    unsafe fn new(shape: Heads, h: usize, q: &[f32], k: &[f32], padded: usize) -> Self {
        let (width, stride) = (shape.width, shape.stride());
        let mut kt = vec![0f32; width * padded];
        for j in 0..shape.tokens {
            for (d, &x) in k[j * stride + h * width..][..width].iter().enumerate() {
                kt[d * padded + j] = x;
            }
        }
        Self {
            q: q[h * width..].as_ptr(),
            stride,
            width,
            kt,
            padded,
        }
    }

    unsafe fn score(&mut self, row: usize, rows: usize, scores: &mut [f32]) {
        // SAFETY: the caller's contract: rows `row .. row + rows` of q exist.
        unsafe {
            let queries = self.q.add(row * self.stride);
            score_rows(
                queries,
                self.stride,
                self.width,
                &self.kt,
                self.padded,
                scores,
                rows,
            );
        }
    }
}

/// The value product in f32: v read in place.
struct SingleValues {
    shape: Heads,
    /// v at the head's first column.
    v: *const f32,
}

impl Values for SingleValues {
    unsafe fn new(shape: Heads, h: usize, v: &[f32]) -> Self {
        Self {
            shape,
            v: v[h * shape.width..].as_ptr(),
        }
    }

    unsafe fn weigh(&mut self, exps: &mut [f32], padded: usize, scales: &[f32], out: *mut f32) {
        for (r, &scale) in scales.iter().enumerate() {
            scale_row(&mut exps[r * padded..][..self.shape.tokens], scale);
        }
        let tile = ValueTile {
            p: exps.as_ptr(),
            padded,
            tokens: self.shape.tokens,
            v: self.v,
            stride: self.shape.stride(),
            width: self.shape.width,
            out,
        };
        // SAFETY: the caller's contract: a row of probabilities and of `out` per scale; v has
        // `tokens` rows of the head's columns.
        unsafe { weigh_values(&tile, scales.len()) }
    }
}

/// `scores[r, j] = Σ_d q[r, d] · kt[d, j]` for `rows` query rows (every `stride` values from
/// `q`) and all `padded` columns.
///
/// # Safety
/// `q` has `rows` rows of `width` values; `kt` is width × padded; `scores` holds at least
/// rows × padded.
unsafe fn score_rows(
    q: *const f32,
    stride: usize,
    width: usize,
    kt: &[f32],
    padded: usize,
    scores: &mut [f32],
    rows: usize,
) {
    let registers = padded / LANES;
    let mut first = 0;
    while first < registers {
        let count = (registers - first).min(TILE_VECTORS);
        let tile = ScoreTile {
            q,
            stride,
            width,
            kt: kt[first * LANES..].as_ptr(),
            padded,
            scores: scores[first * LANES..].as_mut_ptr(),
        };
        // SAFETY: registers `first .. first + count` ≤ padded / 4 of every row of `kt` and
        // `scores`; the caller's contract covers q.
        unsafe { tile_kernel!(score_tile, rows, count, &tile; 1 2 3 4) };
        first += count;
    }
}

/// Where one tile of scores reads and writes.
struct ScoreTile {
    /// The tile's first query row.
    q: *const f32,
    stride: usize,
    width: usize,
    /// kᵀ at the tile's first column.
    kt: *const f32,
    /// Row length of kᵀ and of the scores.
    padded: usize,
    /// The scores at the tile's first row and column.
    scores: *mut f32,
}

/// `acc[r][b] += columns[b] · lane L of rows[r]` over a tile, the column registers loaded one
/// at a time from `columns` (4 values apart): keys by a query value in the scores, values by a
/// probability in the output. (Loading every column register of a step first spilled the
/// accumulators: a third of the kernel's instructions were stack loads and stores.)
///
/// # Safety
/// `B` registers of 4 values from `columns` are readable.
#[inline(always)]
unsafe fn fma_by_lane<const R: usize, const B: usize, const L: i32>(
    acc: &mut [[float32x4_t; B]; R],
    rows: &[float32x4_t; R],
    columns: *const f32,
) {
    for b in 0..B {
        // SAFETY: the caller gives B readable registers from `columns`; NEON is baseline.
        unsafe {
            let column = vld1q_f32(columns.add(b * LANES));
            for (acc, x) in acc.iter_mut().zip(rows) {
                acc[b] = vfmaq_laneq_f32::<L>(acc[b], column, *x);
            }
        }
    }
}

/// `acc[r][b] += columns[b] · xs[r]`: one step with a value per row (the tails).
///
/// # Safety
/// `B` registers of 4 values from `columns` are readable.
#[inline(always)]
unsafe fn fma_by_value<const R: usize, const B: usize>(
    acc: &mut [[float32x4_t; B]; R],
    xs: &[f32; R],
    columns: *const f32,
) {
    for b in 0..B {
        // SAFETY: the caller gives B readable registers from `columns`; NEON is baseline.
        unsafe {
            let column = vld1q_f32(columns.add(b * LANES));
            for (acc, x) in acc.iter_mut().zip(xs) {
                acc[b] = vfmaq_n_f32(acc[b], column, *x);
            }
        }
    }
}

/// `R` query rows × `B` registers of keys: the `R·B` sums stay in registers over the width,
/// four values of each query row per load.
///
/// # Safety
/// As [`score_rows`], for the tile's rows and registers.
#[inline]
unsafe fn score_tile<const R: usize, const B: usize>(tile: &ScoreTile) {
    let key_row = |d: usize| tile.kt.wrapping_add(d * tile.padded);
    let query = |r: usize, d: usize| tile.q.wrapping_add(r * tile.stride + d);
    // SAFETY: NEON is baseline; every row d < width of kᵀ has B registers from the tile's
    // column; query row r < R has values d .. d + 4 ≤ width (d < width in the tail).
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); B]; R];
        let mut d = 0;
        while d + LANES <= tile.width {
            let mut queries = [vdupq_n_f32(0.0); R];
            for (r, x) in queries.iter_mut().enumerate() {
                *x = vld1q_f32(query(r, d));
            }
            fma_by_lane::<R, B, 0>(&mut acc, &queries, key_row(d));
            fma_by_lane::<R, B, 1>(&mut acc, &queries, key_row(d + 1));
            fma_by_lane::<R, B, 2>(&mut acc, &queries, key_row(d + 2));
            fma_by_lane::<R, B, 3>(&mut acc, &queries, key_row(d + 3));
            d += LANES;
        }
        while d < tile.width {
            let xs: [f32; R] = std::array::from_fn(|r| *query(r, d));
            fma_by_value::<R, B>(&mut acc, &xs, key_row(d));
            d += 1;
        }
        for (r, acc) in acc.iter().enumerate() {
            for (b, acc) in acc.iter().enumerate() {
                vst1q_f32(tile.scores.add(r * tile.padded + b * LANES), *acc);
            }
        }
    }
}

/// The row in place, times `scale` (the softmax's last step: the sum's reciprocal).
fn scale_row(row: &mut [f32], scale: f32) {
    let whole = row.len() - row.len() % LANES;
    let (body, rest) = row.split_at_mut(whole);
    for x in body.chunks_exact_mut(LANES) {
        // SAFETY: NEON is baseline; four values of the row.
        unsafe {
            vst1q_f32(
                x.as_mut_ptr(),
                vmulq_f32(vld1q_f32(x.as_ptr()), vdupq_n_f32(scale)),
            )
        };
    }
    for x in rest {
        *x *= scale;
    }
}

/// The row in place: `exp(x − max)`, the softmax before its scaling; returns their sum.
fn exponentiate(row: &mut [f32]) -> f32 {
    let whole = row.len() - row.len() % LANES;
    let (body, rest) = row.split_at_mut(whole);
    // SAFETY: NEON is baseline; every access is a whole register of `body`.
    unsafe {
        let mut max = vdupq_n_f32(f32::NEG_INFINITY);
        for x in body.chunks_exact(LANES) {
            max = vmaxq_f32(max, vld1q_f32(x.as_ptr()));
        }
        let max = rest.iter().fold(vmaxvq_f32(max), |m, &x| m.max(x));
        let shift = vdupq_n_f32(max);
        let exp = Exp::new();
        let mut sum = vdupq_n_f32(0.0);
        for x in body.chunks_exact_mut(LANES) {
            let e = exp.of(vsubq_f32(vld1q_f32(x.as_ptr()), shift));
            sum = vaddq_f32(sum, e);
            vst1q_f32(x.as_mut_ptr(), e);
        }
        // The last values past whole registers (at most three) by the library's exp.
        rest.iter_mut().fold(vaddvq_f32(sum), |total, x| {
            *x = (*x - max).exp();
            total + *x
        })
    }
}

/// Where the product of a block of probability rows with v reads and writes.
struct ValueTile {
    /// The first row of probabilities.
    p: *const f32,
    padded: usize,
    tokens: usize,
    /// v at the head's first column.
    v: *const f32,
    stride: usize,
    width: usize,
    /// The output at the block's first row and the head's first column.
    out: *mut f32,
}

/// `out[r, :] = Σ_j p[r, j] · v[j, :]` for `rows` rows of probabilities, tile by tile of
/// whole registers of output columns, then the columns past the last whole register (a width
/// not a multiple of 4; CLIP's heads are 64 wide) one by one.
///
/// # Safety
/// `v` has `tokens` rows and `out` has `rows` rows of `width` values at `stride`; `p` has
/// `rows` rows of `padded` ≥ tokens values.
unsafe fn weigh_values(tile: &ValueTile, rows: usize) {
    let registers = tile.width / LANES;
    let mut first = 0;
    while first < registers {
        let count = (registers - first).min(TILE_VECTORS);
        // SAFETY: registers `first .. first + count` lie below `width` in every row of v and
        // `out`.
        unsafe { tile_kernel!(value_tile, rows, count, (tile, first * LANES); 1 2 3 4) };
        first += count;
    }
    for r in 0..rows {
        for c in registers * LANES..tile.width {
            // SAFETY: row r < rows of p and `out`, column c < width of v and `out`.
            unsafe {
                let y = (0..tile.tokens).fold(0f32, |y, j| {
                    (*tile.p.add(r * tile.padded + j)).mul_add(*tile.v.add(j * tile.stride + c), y)
                });
                *tile.out.add(r * tile.stride + c) = y;
            }
        }
    }
}

/// `R` rows × `B` registers of output columns from column `start`: the `R·B` sums stay in
/// registers over the keys, four probabilities of each row per load.
///
/// # Safety
/// As [`weigh_values`], for the tile's rows and the B registers from `start`.
#[inline]
unsafe fn value_tile<const R: usize, const B: usize>((tile, start): (&ValueTile, usize)) {
    let value_row = |j: usize| tile.v.wrapping_add(j * tile.stride + start);
    let probabilities = |r: usize, j: usize| tile.p.wrapping_add(r * tile.padded + j);
    // SAFETY: NEON is baseline; row j < tokens of v has B registers from `start`; probability
    // row r < R has values j .. j + 4 ≤ padded (j < tokens in the tail).
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); B]; R];
        let mut j = 0;
        while j + LANES <= tile.tokens {
            let mut weights = [vdupq_n_f32(0.0); R];
            for (r, w) in weights.iter_mut().enumerate() {
                *w = vld1q_f32(probabilities(r, j));
            }
            fma_by_lane::<R, B, 0>(&mut acc, &weights, value_row(j));
            fma_by_lane::<R, B, 1>(&mut acc, &weights, value_row(j + 1));
            fma_by_lane::<R, B, 2>(&mut acc, &weights, value_row(j + 2));
            fma_by_lane::<R, B, 3>(&mut acc, &weights, value_row(j + 3));
            j += LANES;
        }
        while j < tile.tokens {
            let ps: [f32; R] = std::array::from_fn(|r| *probabilities(r, j));
            fma_by_value::<R, B>(&mut acc, &ps, value_row(j));
            j += 1;
        }
        for (r, acc) in acc.iter().enumerate() {
            for (b, acc) in acc.iter().enumerate() {
                vst1q_f32(tile.out.add(r * tile.stride + start + b * LANES), *acc);
            }
        }
    }
}
