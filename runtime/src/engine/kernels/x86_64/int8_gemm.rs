//! The int8 matrix product for x86-64 CPUs with AVX-512 VNNI: u8 activations times s8 weights
//! packed once at load ([`Int8Gemm`]), accumulated exactly in i32 and rescaled to f32 with the
//! bias in the same pass, `y[t, n] = f32(Σ_k (a[t, k] − z) · w[k, n]) · scale[n] + bias[n]`.
//!
//! Why it exists: on a ViT-B/16, tract 0.23.9's int8 products reach about half of the VNNI
//! peak of a core and need an activation packing pass, an i32 → f32 cast and a rescale chain
//! around them (`xrvlm bench --profile`, BENCHMARKS.md). This kernel reads the activations in
//! place (each row's four k-bytes are broadcast straight from memory, which `vpdpbusd` wants
//! for its unsigned operand), keeps an 8-row × 48-column tile of accumulators in registers over
//! passes of 256 k-bytes (small enough for two threads sharing a core's L1), and writes
//! finished f32 values.
//!
//! Exactness: the i32 sums are exact (see [`MAX_K`](super::super::packing::MAX_K)), and the epilogue does tract's
//! float steps in tract's order (convert, multiply, add, each rounded to nearest), so the
//! output is the bits of the reference kernel, which are tract's; the tests check both.

use std::arch::x86_64::*;
use std::ops::Range;

use super::super::packing::{pad_rows, Activation, Int8Gemm, BLOCK_COLS, QUAD};
use super::super::threading::{for_each_part, SharedOutput};
use super::vector_math::{lanes, quick_gelu};

/// How plans name this kernel ([`crate::engine::INT8_LINEAR_KERNEL`]).
pub const NAME: &str = crate::engine::INT8_LINEAR_KERNEL;

/// Rows of one register tile.
const TILE_ROWS: usize = 8;
/// Blocks of one register tile: 8 rows × 3 blocks = 24 accumulators of the 32 registers.
const TILE_BLOCKS: usize = 3;
/// k-quads of one pass over a panel: 256 k-bytes, so that a pass's weights (12 KiB) and
/// activation rows stay in L1 even with a second thread on the same core.
const PASS_QUADS: usize = 64;

/// Whether this CPU runs the kernel (AVX-512 F, BW and VNNI).
pub fn available() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni")
}

/// `out` (rows × n) from `a` (rows × k), on the running plan's threads, one part per range of
/// column panels.
///
/// # Safety
/// As [`super::super::Int8GemmFn`]: the CPU has AVX-512 F, BW and VNNI ([`available`]), `a` is
/// whole rows of k and `out` n values per row.
pub unsafe fn int8_gemm(gemm: &Int8Gemm, a: &[u8], out: &mut [f32]) {
    let rows = a.len() / gemm.k();
    // The kernel reads 4 k-bytes at a time; a row of k not a multiple of 4 is copied into
    // rows padded with zeros so no read passes the end of the buffer.
    let stride = gemm.quads() * QUAD;
    let padded;
    let a = if stride == gemm.k() {
        a
    } else {
        padded = pad_rows(a, gemm.k(), stride);
        &padded[..]
    };
    let out = SharedOutput::new(out);
    let panels = gemm.blocks().div_ceil(TILE_BLOCKS);
    for_each_part(panels, rows * gemm.k() * gemm.n(), |range| {
        // SAFETY: the caller guarantees the CPU features and the lengths; `a` is whole rows of
        // `stride` bytes; the parts have disjoint ranges of panels, so they write disjoint
        // columns of `out`.
        unsafe { panels_of(gemm, a, stride, rows, range, &out) }
    });
}

/// Every row of the column panels `range` (48 columns each, the last one maybe fewer), in
/// passes of [`PASS_QUADS`] k-quads; between passes the sums wait in `partial`.
///
/// # Safety
/// The CPU has AVX-512 F/BW/VNNI; `a` holds `rows` rows of `stride` ≥ 4·quads bytes; `out`
/// holds `rows` rows of n floats and no other thread writes these panels' columns.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn panels_of(
    gemm: &Int8Gemm,
    a: &[u8],
    stride: usize,
    rows: usize,
    range: Range<usize>,
    out: &SharedOutput<'_, f32>,
) {
    let quads = gemm.quads();
    let mut partial = vec![_mm512_setzero_si512(); rows * TILE_BLOCKS];
    for panel in range {
        let block = panel * TILE_BLOCKS;
        let blocks = (gemm.blocks() - block).min(TILE_BLOCKS);
        let mut start = 0;
        while start < quads {
            let end = (start + PASS_QUADS).min(quads);
            let pass = Pass {
                quads: start..end,
                first: start == 0,
                last: end == quads,
            };
            let mut row = 0;
            while row < rows {
                let tile_rows = (rows - row).min(TILE_ROWS);
                // SAFETY: `row` < `rows`, so the offsets stay inside `a` (rows × stride),
                // `out` (rows × n) and `partial` (rows × TILE_BLOCKS).
                let tile = unsafe {
                    Tile {
                        a: a.as_ptr().add(row * stride),
                        stride,
                        out: out.ptr().add(row * gemm.n()),
                        out_stride: gemm.n(),
                        block,
                        partial: partial.as_mut_ptr().add(row * TILE_BLOCKS),
                    }
                };
                // SAFETY: the tile's `tile_rows` rows and `blocks` blocks lie inside the
                // buffers (see above); this part alone writes these columns.
                unsafe { tile_of(gemm, &tile, &pass, tile_rows, blocks) };
                if pass.last {
                    // SAFETY: as above; the tile's outputs are written.
                    unsafe { activate(gemm, &tile, tile_rows, blocks) };
                }
                row += tile_rows;
            }
            start = end;
        }
    }
}

/// The activation over a tile's finished outputs, while they are in L1. (Inside the kernel,
/// the activation's registers made the compiler spill the accumulators in its inner loop: the
/// int8 layers of a ViT-B/16 took 147 instead of 60 ms per frame.)
///
/// # Safety
/// As [`panels_of`], for the tile's rows and blocks.
#[target_feature(enable = "avx512f")]
unsafe fn activate(gemm: &Int8Gemm, tile: &Tile, rows: usize, blocks: usize) {
    let Activation::QuickGelu { alpha } = gemm.activation() else {
        return;
    };
    let alpha = _mm512_set1_ps(alpha);
    for j in 0..blocks {
        let col = (tile.block + j) * BLOCK_COLS;
        let mask = lanes(col, gemm.n());
        for r in 0..rows {
            // SAFETY: row r < rows of the tile and the masked lanes are columns < n.
            unsafe {
                let at = tile.out.add(r * tile.out_stride + col);
                let y = _mm512_maskz_loadu_ps(mask, at);
                _mm512_mask_storeu_ps(at, mask, quick_gelu(y, alpha));
            }
        }
    }
}

/// One tile: dispatches to the kernel compiled for its height and width.
///
/// # Safety
/// As [`panels_of`], for the tile's rows and blocks.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_of(gemm: &Int8Gemm, tile: &Tile, pass: &Pass, rows: usize, blocks: usize) {
    macro_rules! dispatch {
        ($($r:literal)*) => {
            match (rows, blocks) {
                $(
                    ($r, 3) => kernel::<$r, 3>(gemm, tile, pass),
                    ($r, 2) => kernel::<$r, 2>(gemm, tile, pass),
                    ($r, 1) => kernel::<$r, 1>(gemm, tile, pass),
                )*
                _ => unreachable!("a tile has 1 to {TILE_ROWS} rows and 1 to 3 blocks"),
            }
        };
    }
    // SAFETY: the caller's contract is the kernel's, for this tile's shape.
    unsafe { dispatch!(1 2 3 4 5 6 7 8) }
}

/// Where one tile reads and writes.
struct Tile {
    /// First activation row of the tile.
    a: *const u8,
    stride: usize,
    /// First output row of the tile.
    out: *mut f32,
    out_stride: usize,
    /// First 16-column block of the tile.
    block: usize,
    /// The tile's sums between passes: row r, block j at `r · TILE_BLOCKS + j`.
    partial: *mut __m512i,
}

/// One pass over k.
struct Pass {
    quads: Range<usize>,
    /// Sums start at zero (else from `Tile::partial`).
    first: bool,
    /// Sums are complete: rescale and write the output (else keep them in `Tile::partial`).
    last: bool,
}

/// `R` rows × `B` blocks of 16 columns over one pass: `R·B` accumulators stay in registers
/// for the whole k loop.
///
/// # Safety
/// As [`panels_of`]; blocks `tile.block .. tile.block + B` exist.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn kernel<const R: usize, const B: usize>(gemm: &Int8Gemm, tile: &Tile, pass: &Pass) {
    let quad_bytes = QUAD * BLOCK_COLS;
    let mut acc = [[_mm512_setzero_si512(); B]; R];
    if !pass.first {
        for (r, acc) in acc.iter_mut().enumerate() {
            for (j, acc) in acc.iter_mut().enumerate() {
                // SAFETY: `partial` holds TILE_BLOCKS sums for each of the tile's rows.
                *acc = unsafe { *tile.partial.add(r * TILE_BLOCKS + j) };
            }
        }
    }
    let mut weights = [gemm.packed().as_ptr(); B];
    for (j, w) in weights.iter_mut().enumerate() {
        // SAFETY: block `tile.block + j` exists: its quads lie inside the packed weights.
        *w = unsafe { w.add((tile.block + j) * gemm.quads() * quad_bytes) };
    }
    for quad in pass.quads.clone() {
        let mut w = [_mm512_setzero_si512(); B];
        for (w, base) in w.iter_mut().zip(&weights) {
            // SAFETY: `quad` < quads: 64 bytes of the block's packed weights.
            *w = unsafe { _mm512_loadu_si512(base.add(quad * quad_bytes).cast()) };
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: row r of the tile holds `stride` ≥ 4·quads bytes, so 4 bytes at
            // 4·quad are inside it.
            let a = unsafe {
                let bytes = tile.a.add(r * tile.stride + QUAD * quad);
                _mm512_set1_epi32(bytes.cast::<i32>().read_unaligned())
            };
            for (acc, w) in acc.iter_mut().zip(&w) {
                *acc = _mm512_dpbusd_epi32(*acc, a, *w);
            }
        }
    }
    if !pass.last {
        for (r, acc) in acc.iter().enumerate() {
            for (j, acc) in acc.iter().enumerate() {
                // SAFETY: as for the load of `partial` above.
                unsafe { *tile.partial.add(r * TILE_BLOCKS + j) = *acc };
            }
        }
        return;
    }
    for j in 0..B {
        let col = (tile.block + j) * BLOCK_COLS;
        let mask = lanes(col, gemm.n());
        // SAFETY: offsets, scale and bias are padded to whole blocks: 16 values from `col`.
        let (offset, scale, bias) = unsafe {
            (
                _mm512_loadu_si512(gemm.offsets().as_ptr().add(col).cast()),
                _mm512_loadu_ps(gemm.scale().as_ptr().add(col)),
                _mm512_loadu_ps(gemm.bias().as_ptr().add(col)),
            )
        };
        for (r, acc) in acc.iter().enumerate() {
            let sum = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[j], offset));
            let y = _mm512_add_ps(_mm512_mul_ps(sum, scale), bias);
            // SAFETY: row r of the tile's output; the mask keeps the columns below n.
            unsafe { _mm512_mask_storeu_ps(tile.out.add(r * tile.out_stride + col), mask, y) };
        }
    }
}
