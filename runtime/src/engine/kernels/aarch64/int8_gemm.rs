//! The int8 matrix product for aarch64 CPUs with the dot-product instructions (FEAT_DotProd:
//! the Raspberry Pi 5's Cortex-A76, the Jetson Orin's A78AE): u8 activations times s8 weights
//! packed once at load ([`Int8Gemm`]), accumulated exactly in i32 by `SDOT` and rescaled to f32
//! with the bias in the same pass, `y[t, n] = f32(Σ_k (a[t, k] − z) · w[k, n]) · scale[n] +
//! bias[n]`.
//!
//! Why it exists: tract 0.23.9's SDOT kernel is fast, but around it an int8 layer runs tract's
//! activation packing (about 6 instructions per byte), an i32 → f32 cast and a rescale chain;
//! on the demo those were a third of the int8 frame in modelled Cortex-A76 cycles
//! (`tools/arm-cycles.sh`, BENCHMARKS.md). This kernel reads the activations in place: each
//! row's 16 bytes give four k-quads, each quad broadcast to the four column groups of a block by
//! `SDOT`'s indexed form, over a tile of 4 rows × 16 columns (16 accumulators, 4 rows, 4
//! weight registers of the 32).
//!
//! SDOT multiplies signed bytes: the activations are copied once per call as s8 a − 128 (XOR
//! 0x80, [`signed_rows`]) and the packing's [`Int8Gemm::signed_offsets`] turns the sum back into
//! Σ (a − z) · w, exactly.
//!
//! Exactness: the i32 sums are exact (see [`MAX_K`](super::super::packing::MAX_K)), and the
//! epilogue does tract's float steps in tract's order (convert, multiply, add, each rounded to
//! nearest), so the output is the bits of the reference kernel, which are tract's; the tests
//! check both.

use std::arch::aarch64::*;
use std::arch::asm;
use std::ops::Range;

use super::super::packing::{Activation, Int8Gemm, BLOCK_COLS, QUAD};
use super::super::threading::{for_each_part, SharedOutput};
use super::vector_math::{QuickGelu, LANES};

/// How plans name this kernel ([`crate::engine::INT8_LINEAR_KERNEL`] is the x86-64 one's).
pub const NAME: &str = "xrvlm_sdot_i32_4x16";

/// Rows of one register tile.
const TILE_ROWS: usize = 4;
/// Registers of one block's 16 i32 sums.
const BLOCK_REGISTERS: usize = BLOCK_COLS / LANES;
/// Quads one 16-byte load of an activation row holds.
const LOAD_QUADS: usize = 4;
/// Bytes of one block's quad: 16 columns × 4 k-bytes.
const QUAD_BYTES: usize = QUAD * BLOCK_COLS;

/// Whether this CPU runs the kernel (FEAT_DotProd, read from the auxiliary vector's hardware
/// capabilities, which qemu reports for the CPU it emulates).
pub fn available() -> bool {
    std::arch::is_aarch64_feature_detected!("dotprod")
}

/// `out` (rows × n) from `a` (rows × k), on the running plan's threads, one part per range of
/// 16-column blocks.
///
/// # Safety
/// As [`super::super::Int8GemmFn`]: the CPU has FEAT_DotProd ([`available`]), `a` is whole rows
/// of k and `out` n values per row.
pub unsafe fn int8_gemm(gemm: &Int8Gemm, a: &[u8], out: &mut [f32]) {
    let rows = a.len() / gemm.k();
    let stride = gemm.quads() * QUAD;
    let a = signed_rows(a, gemm.k(), stride);
    let out = SharedOutput::new(out);
    for_each_part(gemm.blocks(), rows * gemm.k() * gemm.n(), |range| {
        // SAFETY: the caller guarantees the CPU feature and the lengths; `a` is whole rows of
        // `stride` bytes; the parts have disjoint ranges of blocks, so they write disjoint
        // columns of `out`.
        unsafe { blocks_of(gemm, &a, stride, rows, range, &out) }
    });
}

/// SDOT's operands: `a`'s rows of k bytes as s8 a − 128 (a XOR 0x80) in rows of `stride`
/// bytes, zero past k, so that the kernel reads whole quads and flips nothing in its loop.
/// (Flipped in the loop instead, each row's bytes were flipped once per block of columns: 6 %
/// of the kernel's instructions at n = 768.)
fn signed_rows(a: &[u8], k: usize, stride: usize) -> Vec<i8> {
    let mut signed = vec![0i8; a.len() / k * stride];
    for (src, dst) in a.chunks_exact(k).zip(signed.chunks_exact_mut(stride)) {
        for (x, y) in src.iter().zip(dst.iter_mut()) {
            *y = (x ^ 0x80) as i8;
        }
    }
    signed
}

/// Every row of the blocks `range`, tile by tile of [`TILE_ROWS`] rows, over the whole k (one
/// block's weights are 16·k bytes, 48 KiB at k = 3072: they stay in the A76's 64 KiB L1 while
/// the row tiles stream past).
///
/// # Safety
/// The CPU has FEAT_DotProd; `a` holds `rows` rows of `stride` = 4·quads bytes; `out` holds
/// `rows` rows of n floats and no other thread writes these blocks' columns.
#[target_feature(enable = "dotprod")]
unsafe fn blocks_of(
    gemm: &Int8Gemm,
    a: &[i8],
    stride: usize,
    rows: usize,
    range: Range<usize>,
    out: &SharedOutput<'_, f32>,
) {
    for block in range {
        let mut row = 0;
        while row < rows {
            let tile_rows = (rows - row).min(TILE_ROWS);
            // SAFETY: `row` < `rows`: the offsets stay inside `a` (rows × stride) and `out`
            // (rows × n).
            let tile = unsafe {
                Tile {
                    a: a.as_ptr().add(row * stride),
                    stride,
                    out: out.ptr().add(row * gemm.n()),
                    out_stride: gemm.n(),
                    block,
                }
            };
            // SAFETY: the tile's rows and its block lie inside the buffers (see above); this
            // part alone writes the block's columns.
            unsafe {
                match tile_rows {
                    4 => kernel::<4>(gemm, &tile),
                    3 => kernel::<3>(gemm, &tile),
                    2 => kernel::<2>(gemm, &tile),
                    1 => kernel::<1>(gemm, &tile),
                    _ => unreachable!("a tile has 1 to {TILE_ROWS} rows"),
                }
                activate(gemm, &tile, tile_rows);
            }
            row += tile_rows;
        }
    }
}

/// Where one tile reads and writes.
struct Tile {
    /// First activation row of the tile (s8, a − 128).
    a: *const i8,
    stride: usize,
    /// First output row of the tile.
    out: *mut f32,
    out_stride: usize,
    /// The tile's 16-column block.
    block: usize,
}

impl Tile {
    /// Columns of the block that exist (16, or fewer in the last block).
    fn columns(&self, gemm: &Int8Gemm) -> usize {
        (gemm.n() - self.block * BLOCK_COLS).min(BLOCK_COLS)
    }
}

/// `acc += Σ_{i<4} w[4c + i] · a[4·L + i]` for each i32 lane c: `SDOT`, its s8 activations
/// taken from quad `L` of `a`.
///
/// # Safety
/// The CPU has FEAT_DotProd (it is inlined into the kernel compiled for it).
#[inline(always)]
unsafe fn sdot<const L: usize>(acc: &mut int32x4_t, w: int8x16_t, a: int8x16_t) {
    // SAFETY: the caller guarantees the feature; the instruction reads and writes registers
    // only.
    unsafe {
        match L {
            0 => {
                asm!("sdot {acc:v}.4s, {w:v}.16b, {a:v}.4b[0]", acc = inout(vreg) *acc, w = in(vreg) w, a = in(vreg) a, options(pure, nomem, nostack))
            }
            1 => {
                asm!("sdot {acc:v}.4s, {w:v}.16b, {a:v}.4b[1]", acc = inout(vreg) *acc, w = in(vreg) w, a = in(vreg) a, options(pure, nomem, nostack))
            }
            2 => {
                asm!("sdot {acc:v}.4s, {w:v}.16b, {a:v}.4b[2]", acc = inout(vreg) *acc, w = in(vreg) w, a = in(vreg) a, options(pure, nomem, nostack))
            }
            _ => {
                asm!("sdot {acc:v}.4s, {w:v}.16b, {a:v}.4b[3]", acc = inout(vreg) *acc, w = in(vreg) w, a = in(vreg) a, options(pure, nomem, nostack))
            }
        }
    }
}

/// The four weight registers of quad `quad` of the block at `w`.
///
/// # Safety
/// `quad` < quads of the block.
#[inline(always)]
unsafe fn weights(w: *const i8, quad: usize) -> [int8x16_t; BLOCK_REGISTERS] {
    // SAFETY: the caller keeps `quad` inside the block: 64 bytes from its start.
    unsafe {
        let at = w.add(quad * QUAD_BYTES);
        [
            vld1q_s8(at),
            vld1q_s8(at.add(16)),
            vld1q_s8(at.add(32)),
            vld1q_s8(at.add(48)),
        ]
    }
}

/// Every row's `acc` += quad `L` of its activations `a` times the quad's weights `w`.
///
/// # Safety
/// The CPU has FEAT_DotProd.
#[inline(always)]
unsafe fn step<const R: usize, const L: usize>(
    acc: &mut [[int32x4_t; BLOCK_REGISTERS]; R],
    w: &[int8x16_t; BLOCK_REGISTERS],
    a: &[int8x16_t; R],
) {
    for (acc, a) in acc.iter_mut().zip(a) {
        for (acc, w) in acc.iter_mut().zip(w) {
            // SAFETY: the caller guarantees the feature.
            unsafe { sdot::<L>(acc, *w, *a) };
        }
    }
}

/// `R` rows × one block of 16 columns over the whole k: the `4·R` accumulators stay in
/// registers; the block's finished outputs are written.
///
/// # Safety
/// As [`blocks_of`], for the tile's rows and block.
#[inline]
#[target_feature(enable = "dotprod")]
unsafe fn kernel<const R: usize>(gemm: &Int8Gemm, tile: &Tile) {
    let quads = gemm.quads();
    // SAFETY: the block exists: its quads lie inside the packed weights.
    let w = unsafe { gemm.packed().as_ptr().add(tile.block * quads * QUAD_BYTES) };
    // The sums start at −(z − 128)·Σw, so that they end as Σ (a − z)·w (exact in i32; one
    // subtraction fewer per output than correcting them at the end).
    let start: [int32x4_t; BLOCK_REGISTERS] = std::array::from_fn(|c| {
        // SAFETY: the offsets are padded to whole blocks: 4 values from column 4c of the block.
        unsafe {
            let at = tile.block * BLOCK_COLS + c * LANES;
            vnegq_s32(vld1q_s32(gemm.signed_offsets().as_ptr().add(at)))
        }
    });
    let mut acc = [start; R];
    let mut quad = 0;
    while quad + LOAD_QUADS <= quads {
        let mut a = [vdupq_n_s8(0); R];
        for (r, a) in a.iter_mut().enumerate() {
            // SAFETY: row r of the tile holds 4·quads bytes: 16 from byte 4·quad are inside.
            *a = unsafe { vld1q_s8(tile.a.add(r * tile.stride + QUAD * quad)) };
        }
        // SAFETY: quads `quad .. quad + 4` < quads; the caller guarantees FEAT_DotProd.
        unsafe {
            step::<R, 0>(&mut acc, &weights(w, quad), &a);
            step::<R, 1>(&mut acc, &weights(w, quad + 1), &a);
            step::<R, 2>(&mut acc, &weights(w, quad + 2), &a);
            step::<R, 3>(&mut acc, &weights(w, quad + 3), &a);
        }
        quad += LOAD_QUADS;
    }
    while quad < quads {
        let mut a = [vdupq_n_s8(0); R];
        for (r, a) in a.iter_mut().enumerate() {
            // SAFETY: 4 bytes at 4·quad < 4·quads are inside row r.
            *a = unsafe {
                let at = tile.a.add(r * tile.stride + QUAD * quad);
                vreinterpretq_s8_u32(vdupq_n_u32(at.cast::<u32>().read_unaligned()))
            };
        }
        // SAFETY: `quad` < quads; the caller guarantees FEAT_DotProd.
        unsafe { step::<R, 0>(&mut acc, &weights(w, quad), &a) };
        quad += 1;
    }
    // SAFETY: as the caller's contract gives the tile.
    unsafe { write(gemm, tile, &acc) }
}

/// The finished sums of a tile, rescaled, written to its rows.
///
/// # Safety
/// As [`blocks_of`], for the tile's rows and block.
#[inline(always)]
unsafe fn write<const R: usize>(
    gemm: &Int8Gemm,
    tile: &Tile,
    acc: &[[int32x4_t; BLOCK_REGISTERS]; R],
) {
    let col = tile.block * BLOCK_COLS;
    let columns = tile.columns(gemm);
    for c in 0..BLOCK_REGISTERS {
        let at = col + c * LANES;
        // SAFETY: scale and bias are padded to whole blocks: 4 values from `at`.
        let (scale, bias) = unsafe {
            (
                vld1q_f32(gemm.scale().as_ptr().add(at)),
                vld1q_f32(gemm.bias().as_ptr().add(at)),
            )
        };
        for (r, acc) in acc.iter().enumerate() {
            // SAFETY: NEON is baseline; row r < R of the tile's output, and only its columns
            // below n are written.
            unsafe {
                let sum = vcvtq_f32_s32(acc[c]);
                let y = vaddq_f32(vmulq_f32(sum, scale), bias);
                let dst = tile.out.add(r * tile.out_stride + at);
                if c * LANES + LANES <= columns {
                    vst1q_f32(dst, y);
                } else {
                    let mut lanes = [0f32; LANES];
                    vst1q_f32(lanes.as_mut_ptr(), y);
                    let keep = columns.saturating_sub(c * LANES);
                    std::ptr::copy_nonoverlapping(lanes.as_ptr(), dst, keep);
                }
            }
        }
    }
}

/// The activation over a tile's finished outputs, while they are in L1.
///
/// # Safety
/// As [`blocks_of`], for the tile's `rows` rows and block.
unsafe fn activate(gemm: &Int8Gemm, tile: &Tile, rows: usize) {
    let Activation::QuickGelu { alpha } = gemm.activation() else {
        return;
    };
    let gelu = QuickGelu::new(alpha);
    let columns = tile.columns(gemm);
    let col = tile.block * BLOCK_COLS;
    for r in 0..rows {
        // SAFETY: row r < rows of the tile: its block's columns below n are its own.
        let row = unsafe {
            std::slice::from_raw_parts_mut(tile.out.add(r * tile.out_stride + col), columns)
        };
        let mut chunks = row.chunks_exact_mut(LANES);
        for y in &mut chunks {
            // SAFETY: four values of the row.
            unsafe { vst1q_f32(y.as_mut_ptr(), gelu.of(vld1q_f32(y.as_ptr()))) };
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let mut lanes = [0f32; LANES];
            lanes[..rest.len()].copy_from_slice(rest);
            // SAFETY: four values of a local array.
            unsafe { vst1q_f32(lanes.as_mut_ptr(), gelu.of(vld1q_f32(lanes.as_ptr()))) };
            rest.copy_from_slice(&lanes[..rest.len()]);
        }
    }
}
