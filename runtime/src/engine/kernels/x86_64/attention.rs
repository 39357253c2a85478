//! Multi-head attention for x86-64 CPUs with AVX-512: `out_h = softmax(q_h k_hᵀ) v_h` for
//! every head h, in f32, over the (tokens, heads, width) layout of [`Heads`].
//!
//! Why it exists: tract 0.23.9 runs each head's two products as general matrix products, packs
//! both operands of each first and runs the softmax as a separate pass over the scores; on a
//! ViT-B/16 that was about a quarter of an int8 frame (`xrvlm bench --profile`, BENCHMARKS.md).
//! Here each part of the heads transposes k_h once per head, then for each block of six query
//! rows computes the scores in registers, turns them into probabilities in place while they
//! are in L1 and multiplies them by v_h read in place.
//!
//! Precision: the same float steps as tract's softmax (subtract the row's max, exponentiate,
//! sum, multiply by the sum's reciprocal), with an exponential accurate to about 1 ulp
//! ([`exp`]) rather than tract's faster approximation, so the output is not tract's bits: the
//! tests hold it to the reference kernel (the f64 definition).

use std::arch::x86_64::*;

use super::super::threading::{for_each_part, SharedOutput};
use super::super::Heads;
use super::vector_math::{exp, lanes, LANES};

/// How plans name this kernel.
pub const NAME: &str = "xrvlm_avx512_attention_6x64";

/// Query rows of one register tile.
const TILE_ROWS: usize = 6;
/// Registers of columns of one tile: 6 rows × 4 registers = 24 accumulators of the 32.
const TILE_VECTORS: usize = 4;

/// Whether this CPU runs the kernel (AVX-512 F).
pub fn available() -> bool {
    is_x86_feature_detected!("avx512f")
}

/// `out = softmax(q kᵀ) v` per head, on the running plan's threads, one part per range of
/// heads.
///
/// # Safety
/// As [`super::super::AttentionFn`]: the CPU has AVX-512 F ([`available`]); q, k, v and `out`
/// hold `shape.values()` values each.
pub unsafe fn attention(shape: Heads, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) {
    let out = SharedOutput::new(out);
    for_each_part(shape.heads, shape.macs(), |heads| {
        for h in heads {
            // SAFETY: the caller guarantees AVX-512 F and the lengths; the parts have disjoint
            // ranges of heads, and head `h` writes only its own columns of `out`.
            unsafe { head(shape, h, q, k, v, &out) }
        }
    });
}

/// Score columns of one query row, T rounded up to whole registers.
fn padded_tokens(shape: Heads) -> usize {
    shape.tokens.div_ceil(LANES) * LANES
}

/// One head: kᵀ once, then scores, softmax and the product with v block by block of query
/// rows.
///
/// # Safety
/// AVX-512 F is available; the slices hold `shape.values()` values, and so does `out`; no
/// other thread writes head `h`'s columns of `out`.
#[target_feature(enable = "avx512f")]
unsafe fn head(
    shape: Heads,
    h: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &SharedOutput<'_, f32>,
) {
    let (tokens, width, stride) = (shape.tokens, shape.width, shape.stride());
    let padded = padded_tokens(shape);
    // kᵀ: width rows of `padded` keys, zero past the last token.
    let mut kt = vec![0f32; width * padded];
    for j in 0..tokens {
        for (d, &x) in k[j * stride + h * width..][..width].iter().enumerate() {
            kt[d * padded + j] = x;
        }
    }
    let mut scores = vec![0f32; TILE_ROWS * padded];
    let column = h * width;
    let mut row = 0;
    while row < tokens {
        let rows = (tokens - row).min(TILE_ROWS);
        // SAFETY: rows `row .. row + rows` < tokens of q, v and `out`, head h's columns
        // (column + width ≤ stride); `kt` is width × padded and `scores` TILE_ROWS × padded;
        // the output columns are this head's alone.
        unsafe {
            let queries = q.as_ptr().add(row * stride + column);
            score_rows(queries, stride, width, &kt, padded, &mut scores, rows);
            for r in 0..rows {
                softmax(&mut scores[r * padded..][..tokens]);
            }
            let values = v.as_ptr().add(column);
            let written = out.ptr().add(row * stride + column);
            weigh_values(
                &scores, padded, tokens, values, stride, width, written, rows,
            );
        }
        row += rows;
    }
}

/// `scores[r, j] = Σ_d q[r, d] · kt[d, j]` for `rows` query rows (every `stride` values from
/// `q`) and all `padded` columns.
///
/// # Safety
/// AVX-512 F; `q` has `rows` rows of `width` values; `kt` is width × padded; `scores` holds
/// at least rows × padded.
#[target_feature(enable = "avx512f")]
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
        // SAFETY: registers `first .. first + count` ≤ padded / 16 of every row of `kt` and
        // `scores`; the caller's contract covers q.
        unsafe { tile_kernel!(score_tile, rows, count, &tile; 1 2 3 4 5 6) };
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

/// `R` query rows × `B` registers of keys: the `R·B` sums stay in registers over the width.
///
/// # Safety
/// As [`score_rows`], for the tile's rows and registers.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn score_tile<const R: usize, const B: usize>(tile: &ScoreTile) {
    let mut acc = [[_mm512_setzero_ps(); B]; R];
    for d in 0..tile.width {
        let mut keys = [_mm512_setzero_ps(); B];
        for (b, key) in keys.iter_mut().enumerate() {
            // SAFETY: row d < width of kᵀ, register b < B of the tile's columns.
            *key = unsafe { _mm512_loadu_ps(tile.kt.add(d * tile.padded + b * LANES)) };
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: query row r < R, value d < width.
            let x = _mm512_set1_ps(unsafe { *tile.q.add(r * tile.stride + d) });
            for (acc, key) in acc.iter_mut().zip(&keys) {
                *acc = _mm512_fmadd_ps(x, *key, *acc);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (b, acc) in acc.iter().enumerate() {
            // SAFETY: score row r < R, register b < B of the tile's columns.
            unsafe { _mm512_storeu_ps(tile.scores.add(r * tile.padded + b * LANES), *acc) };
        }
    }
}

/// The row in place: `exp(x − max) / Σ exp(x − max)`.
#[target_feature(enable = "avx512f")]
fn softmax(row: &mut [f32]) {
    let len = row.len();
    let p = row.as_mut_ptr();
    let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
    for start in (0..len).step_by(LANES) {
        // SAFETY: the mask keeps the lanes below `len`, inside `row`.
        let x = unsafe { _mm512_mask_loadu_ps(max, lanes(start, len), p.add(start)) };
        max = _mm512_max_ps(max, x);
    }
    let max = _mm512_set1_ps(_mm512_reduce_max_ps(max));
    let mut sum = _mm512_setzero_ps();
    for start in (0..len).step_by(LANES) {
        let mask = lanes(start, len);
        // SAFETY: the mask keeps the lanes below `len`, inside `row`.
        let x = unsafe { _mm512_maskz_loadu_ps(mask, p.add(start)) };
        let e = exp(_mm512_sub_ps(x, max));
        sum = _mm512_mask_add_ps(sum, mask, sum, e);
        // SAFETY: as for the load.
        unsafe { _mm512_mask_storeu_ps(p.add(start), mask, e) };
    }
    let scale = _mm512_set1_ps(_mm512_reduce_add_ps(sum).recip());
    for start in (0..len).step_by(LANES) {
        let mask = lanes(start, len);
        // SAFETY: the mask keeps the lanes below `len`, inside `row`.
        unsafe {
            let e = _mm512_maskz_loadu_ps(mask, p.add(start));
            _mm512_mask_storeu_ps(p.add(start), mask, _mm512_mul_ps(e, scale));
        }
    }
}

/// `out[r, :] = Σ_j p[r, j] · v[j, :]` for `rows` rows of probabilities (`padded` apart) over
/// `tokens` keys; v's rows and the output's are `stride` apart, `width` values each.
///
/// # Safety
/// AVX-512 F; `v` has `tokens` rows and `out` has `rows` rows of `width` values at `stride`.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn weigh_values(
    p: &[f32],
    padded: usize,
    tokens: usize,
    v: *const f32,
    stride: usize,
    width: usize,
    out: *mut f32,
    rows: usize,
) {
    let registers = width.div_ceil(LANES);
    let mut first = 0;
    while first < registers {
        let count = (registers - first).min(TILE_VECTORS);
        let mut masks = [0 as __mmask16; TILE_VECTORS];
        for (b, mask) in masks.iter_mut().take(count).enumerate() {
            *mask = lanes((first + b) * LANES, width);
        }
        // SAFETY: registers `first .. first + count` cover columns below `width` (the masks
        // keep the rest out) of every row of v and `out`, as the caller's contract gives them.
        unsafe {
            let tile = ValueTile {
                p: p.as_ptr(),
                padded,
                tokens,
                v: v.add(first * LANES),
                stride,
                out: out.add(first * LANES),
                masks,
            };
            tile_kernel!(value_tile, rows, count, &tile; 1 2 3 4 5 6)
        };
        first += count;
    }
}

/// Where one tile of the output reads and writes.
struct ValueTile {
    /// The tile's first row of probabilities.
    p: *const f32,
    padded: usize,
    tokens: usize,
    /// v at the tile's first column.
    v: *const f32,
    stride: usize,
    /// The output at the tile's first row and column.
    out: *mut f32,
    /// The columns of each register that exist.
    masks: [__mmask16; TILE_VECTORS],
}

/// `R` rows × `B` registers of output columns: the `R·B` sums stay in registers over the keys.
///
/// # Safety
/// As [`weigh_values`], for the tile's rows and registers.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn value_tile<const R: usize, const B: usize>(tile: &ValueTile) {
    let mut acc = [[_mm512_setzero_ps(); B]; R];
    for j in 0..tile.tokens {
        let mut values = [_mm512_setzero_ps(); B];
        for (b, value) in values.iter_mut().enumerate() {
            // SAFETY: row j < tokens of v; the mask keeps the columns below `width`.
            *value = unsafe {
                let at = tile.v.add(j * tile.stride + b * LANES);
                _mm512_maskz_loadu_ps(tile.masks[b], at)
            };
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: probability row r < R, column j < tokens ≤ padded.
            let weight = _mm512_set1_ps(unsafe { *tile.p.add(r * tile.padded + j) });
            for (acc, value) in acc.iter_mut().zip(&values) {
                *acc = _mm512_fmadd_ps(weight, *value, *acc);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (b, acc) in acc.iter().enumerate() {
            // SAFETY: output row r < R; the mask keeps the columns below `width`.
            unsafe {
                let at = tile.out.add(r * tile.stride + b * LANES);
                _mm512_mask_storeu_ps(at, tile.masks[b], *acc);
            }
        }
    }
}
