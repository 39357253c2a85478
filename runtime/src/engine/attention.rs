//! Our multi-head attention for x86-64 CPUs with AVX-512: `out_h = softmax(q_h k_hᵀ) v_h` for
//! every head h, in f32, with q, k, v and the output laid out (tokens, heads, width) as the
//! export's ViT writes them (the 1/√width factor is already in q's weights).
//!
//! Why it exists: tract 0.23.9 runs each head's two products as general matrix products, packs
//! both operands of each first and runs the softmax as a separate pass over the scores; on a
//! ViT-B/16 that was about a quarter of an int8 frame (`xrvlm bench --profile`, BENCHMARKS.md).
//! Here one task per head transposes k_h once, then for each block of six query rows computes
//! the scores in registers, turns them into probabilities in place while they are in L1 and
//! multiplies them by v_h read in place.
//!
//! Precision: the same float steps as tract's softmax (subtract the row's max, exponentiate,
//! sum, multiply by the sum's reciprocal), with an exponential accurate to about 1 ulp
//! ([`vector_math::exp`]) rather than tract's faster approximation, so the output is not tract's bits: the
//! tests hold it to the f64 definition.

use std::arch::x86_64::*;

use tract_linalg::multithread::{current_tract_executor, Executor};

use super::vector_math::{exp, lanes, LANES};

/// Query rows of one register tile.
const TILE_ROWS: usize = 6;
/// Registers of columns of one tile: 6 rows × 4 registers = 24 accumulators of the 32.
const TILE_VECTORS: usize = 4;
/// Below this many multiply-accumulates the heads run on the calling thread only (the bound
/// tract uses for its products, 2²¹).
const THREADING_MACS: usize = 1 << 21;

/// `$kernel::<R, B>($tile)` for the run-time tile height `$rows` (1 to [`TILE_ROWS`]) and width
/// `$registers` (1 to [`TILE_VECTORS`]): each shape is compiled with its sums in registers.
macro_rules! tile_kernel {
    ($kernel:ident, $rows:expr, $registers:expr, $tile:expr) => {
        tile_kernel!(@rows $kernel, $rows, $registers, $tile; 1 2 3 4 5 6)
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

/// Whether this CPU runs the kernel (AVX-512 F).
pub fn available() -> bool {
    super::vector_math::available()
}

/// The shape of one attention: q, k, v and the output are each (tokens, heads, width),
/// row-major.
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
    fn stride(&self) -> usize {
        self.heads * self.width
    }

    /// Score columns of one query row, T rounded up to whole registers.
    fn padded_tokens(&self) -> usize {
        self.tokens.div_ceil(LANES) * LANES
    }

    /// Multiply-accumulates of both products over every head.
    fn macs(&self) -> usize {
        2 * self.tokens * self.tokens * self.width * self.heads
    }
}

/// `out = softmax(q kᵀ) v` per head ([`Heads`] gives the layout), on the current tract
/// executor's threads, one head per task.
///
/// # Panics
/// If the CPU lacks AVX-512 F ([`available`]) or a slice is not `shape.values()` values.
pub fn attention(shape: Heads, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) {
    assert!(available(), "attention needs AVX-512 F");
    for (name, len) in [
        ("q", q.len()),
        ("k", k.len()),
        ("v", v.len()),
        ("output", out.len()),
    ] {
        assert_eq!(len, shape.values(), "{name} is not tokens × heads × width");
    }
    let out = Output(out.as_mut_ptr());
    let one_head = |h: usize| {
        // SAFETY: `available()` was checked above; head `h` writes only its own columns of
        // `out`, whose length was checked.
        unsafe { head(shape, h, q, k, v, &out) }
    };
    match current_tract_executor() {
        Executor::MultiThread(pool)
            if pool.current_num_threads() > 1 && shape.macs() >= THREADING_MACS =>
        {
            pool.install(|| {
                rayon::scope(|scope| {
                    for h in 0..shape.heads {
                        let one_head = &one_head;
                        scope.spawn(move |_| one_head(h));
                    }
                })
            });
        }
        _ => (0..shape.heads).for_each(one_head),
    }
}

/// The output, shared by the tasks that fill disjoint heads of it.
struct Output(*mut f32);

// SAFETY: each task writes only its own head's columns (see `attention`).
unsafe impl Sync for Output {}

/// One head: kᵀ once, then scores, softmax and the product with v block by block of query
/// rows.
///
/// # Safety
/// AVX-512 F is available; the slices hold `shape.values()` values, and so does `out`.
#[target_feature(enable = "avx512f")]
unsafe fn head(shape: Heads, h: usize, q: &[f32], k: &[f32], v: &[f32], out: &Output) {
    let (tokens, width, stride) = (shape.tokens, shape.width, shape.stride());
    let padded = shape.padded_tokens();
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
        let queries = unsafe { q.as_ptr().add(row * stride + column) };
        unsafe { score_rows(queries, stride, width, &kt, padded, &mut scores, rows) };
        for r in 0..rows {
            unsafe { softmax(&mut scores[r * padded..][..tokens]) };
        }
        let values = unsafe { v.as_ptr().add(column) };
        let written = unsafe { out.0.add(row * stride + column) };
        unsafe {
            weigh_values(
                &scores, padded, tokens, values, stride, width, written, rows,
            )
        };
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
            kt: unsafe { kt.as_ptr().add(first * LANES) },
            padded,
            scores: unsafe { scores.as_mut_ptr().add(first * LANES) },
        };
        unsafe { tile_kernel!(score_tile, rows, count, &tile) };
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
            *key = unsafe { _mm512_loadu_ps(tile.kt.add(d * tile.padded + b * LANES)) };
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = _mm512_set1_ps(unsafe { *tile.q.add(r * tile.stride + d) });
            for (acc, key) in acc.iter_mut().zip(&keys) {
                *acc = _mm512_fmadd_ps(x, *key, *acc);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (b, acc) in acc.iter().enumerate() {
            unsafe { _mm512_storeu_ps(tile.scores.add(r * tile.padded + b * LANES), *acc) };
        }
    }
}

/// The row in place: `exp(x − max) / Σ exp(x − max)`.
///
/// # Safety
/// AVX-512 F.
#[target_feature(enable = "avx512f")]
unsafe fn softmax(row: &mut [f32]) {
    let len = row.len();
    let p = row.as_mut_ptr();
    let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
    for start in (0..len).step_by(LANES) {
        let x = unsafe { _mm512_mask_loadu_ps(max, lanes(start, len), p.add(start)) };
        max = _mm512_max_ps(max, x);
    }
    let max = _mm512_set1_ps(_mm512_reduce_max_ps(max));
    let mut sum = _mm512_setzero_ps();
    for start in (0..len).step_by(LANES) {
        let mask = lanes(start, len);
        let x = unsafe { _mm512_maskz_loadu_ps(mask, p.add(start)) };
        let e = exp(_mm512_sub_ps(x, max));
        sum = _mm512_mask_add_ps(sum, mask, sum, e);
        unsafe { _mm512_mask_storeu_ps(p.add(start), mask, e) };
    }
    let scale = _mm512_set1_ps(_mm512_reduce_add_ps(sum).recip());
    for start in (0..len).step_by(LANES) {
        let mask = lanes(start, len);
        let e = unsafe { _mm512_maskz_loadu_ps(mask, p.add(start)) };
        unsafe { _mm512_mask_storeu_ps(p.add(start), mask, _mm512_mul_ps(e, scale)) };
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
        let tile = ValueTile {
            p: p.as_ptr(),
            padded,
            tokens,
            v: unsafe { v.add(first * LANES) },
            stride,
            out: unsafe { out.add(first * LANES) },
            masks,
        };
        unsafe { tile_kernel!(value_tile, rows, count, &tile) };
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
            let at = unsafe { tile.v.add(j * tile.stride + b * LANES) };
            *value = unsafe { _mm512_maskz_loadu_ps(tile.masks[b], at) };
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let weight = _mm512_set1_ps(unsafe { *tile.p.add(r * tile.padded + j) });
            for (acc, value) in acc.iter_mut().zip(&values) {
                *acc = _mm512_fmadd_ps(weight, *value, *acc);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (b, acc) in acc.iter().enumerate() {
            let at = unsafe { tile.out.add(r * tile.stride + b * LANES) };
            unsafe { _mm512_mask_storeu_ps(at, tile.masks[b], *acc) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition in f64.
    fn reference(shape: Heads, q: &[f32], k: &[f32], v: &[f32]) -> Vec<f64> {
        let (t, w, s) = (shape.tokens, shape.width, shape.stride());
        let at = |x: &[f32], token: usize, h: usize, d: usize| x[token * s + h * w + d] as f64;
        let mut out = vec![0f64; shape.values()];
        for h in 0..shape.heads {
            for i in 0..t {
                let scores: Vec<f64> = (0..t)
                    .map(|j| (0..w).map(|d| at(q, i, h, d) * at(k, j, h, d)).sum())
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|x| (x - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                for d in 0..w {
                    out[i * s + h * w + d] =
                        (0..t).map(|j| e[j] / sum * at(v, j, h, d)).sum::<f64>();
                }
            }
        }
        out
    }

    fn run(shape: Heads, q: &[f32], k: &[f32], v: &[f32], threads: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; shape.values()];
        let executor = match threads {
            1 => Executor::SingleThread,
            n => Executor::multithread(n),
        };
        tract_linalg::multithread::multithread_tract_scope(executor, || {
            attention(shape, q, k, v, &mut out)
        });
        out
    }

    /// Largest |ours − definition| over random q, k, v with scores spread over ±`spread`.
    fn error(shape: Heads, spread: f32, threads: usize, seed: u64) -> f64 {
        let mut rng = crate::test_support::rng::Rng::new(seed);
        let scale = (spread / shape.width as f32).sqrt();
        let q = rng.vec(shape.values(), -scale, scale);
        let k = rng.vec(shape.values(), -scale, scale);
        let v = rng.vec(shape.values(), -1.0, 1.0);
        let ours = run(shape, &q, &k, &v, threads);
        let want = reference(shape, &q, &k, &v);
        ours.iter()
            .zip(&want)
            .map(|(&a, &b)| (a as f64 - b).abs())
            .fold(0.0, f64::max)
    }

    /// Whether the tests can run here.
    fn runs_here() -> bool {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512 F");
        }
        available()
    }

    #[test]
    fn matches_the_definition_on_every_tile_shape() {
        if !runs_here() {
            return;
        }
        // Tokens: one row, tiles of 1–6 rows, partial and whole registers of keys; widths:
        // below, at and past one register and past one tile of four; the demo's and ViT-B/16's.
        let shapes = [
            (1, 1, 1),
            (5, 2, 3),
            (17, 3, 16),
            (23, 2, 20),
            (65, 4, 16),
            (70, 1, 80),
            (197, 2, 64),
        ];
        for (i, &(tokens, heads, width)) in shapes.iter().enumerate() {
            let shape = Heads {
                tokens,
                heads,
                width,
            };
            for threads in [1, 2] {
                let e = error(shape, 8.0, threads, i as u64);
                assert!(e < 2e-6, "{shape:?}, {threads} thread(s): {e:e}");
            }
        }
    }

    #[test]
    fn peaked_scores_stay_finite_and_exact() {
        if !runs_here() {
            return;
        }
        // Scores up to about ±400: most probabilities underflow to 0, the max is 1.
        let shape = Heads {
            tokens: 40,
            heads: 3,
            width: 24,
        };
        // Each f32 score of magnitude ~400 carries a rounding error of ~400·2⁻²⁴ that moves
        // its probability by as much relative: the bound is looser than for scores of ±8.
        let e = error(shape, 400.0, 1, 9);
        assert!(e < 1e-5, "{e:e}");
    }

    #[test]
    fn threads_share_the_heads_of_a_large_attention() {
        if !runs_here() {
            return;
        }
        // Above the threading bound, the heads run as tasks; the result is the same.
        let shape = Heads {
            tokens: 197,
            heads: 12,
            width: 64,
        };
        assert!(shape.macs() >= THREADING_MACS);
        let mut rng = crate::test_support::rng::Rng::new(3);
        let (q, k, v) = (
            rng.vec(shape.values(), -0.3, 0.3),
            rng.vec(shape.values(), -0.3, 0.3),
            rng.vec(shape.values(), -1.0, 1.0),
        );
        assert_eq!(run(shape, &q, &k, &v, 1), run(shape, &q, &k, &v, 3));
    }

    #[test]
    fn shapes_are_checked() {
        if !runs_here() {
            return;
        }
        let shape = Heads {
            tokens: 3,
            heads: 2,
            width: 4,
        };
        let x = vec![0f32; shape.values()];
        let mut short = vec![0f32; shape.values() - 1];
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            attention(shape, &x, &x, &x, &mut short)
        }));
        assert!(caught.is_err());
    }
}
