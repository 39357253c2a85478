//! Our int8 matrix product for x86-64 CPUs with AVX-512 VNNI: u8 activations times s8 weights
//! packed once at load, accumulated exactly in i32 and rescaled to f32 with the bias in the same
//! pass, `y[t, n] = f32(Σ_k (a[t, k] − z) · w[k, n]) · scale[n] + bias[n]`.
//!
//! Why it exists: on a ViT-B/16, tract 0.23.9's int8 products reach about half of the VNNI
//! peak of a core and need an activation packing pass, an i32 → f32 cast and a rescale chain
//! around them (`xrvlm bench --profile`, BENCHMARKS.md). This kernel reads the activations in
//! place (each row's four k-bytes are broadcast straight from memory, which `vpdpbusd` wants
//! for its unsigned operand), keeps an 8-row × 48-column tile of accumulators in registers over
//! passes of 256 k-bytes (small enough for two threads sharing a core's L1), and writes
//! finished f32 values.
//!
//! Exactness: the i32 sums are exact (|Σ| < 2³¹ for k ≤ 2¹⁴ since |a − z| ≤ 255, |w| ≤ 128),
//! and the epilogue does tract's float steps in tract's order (convert, multiply, add, each
//! rounded to nearest), so the output is the same bits as the ONNX graph
//! `MatMulInteger → Cast → Mul → Add` run by tract; `linear_pass`'s tests check that end to end.

use std::arch::x86_64::*;

use tract_linalg::multithread::{current_tract_executor, Executor};

use super::vector_math::{lanes, quick_gelu};

/// Rows of one register tile.
const TILE_ROWS: usize = 8;
/// Columns of one register block (one 512-bit register of i32).
const BLOCK_COLS: usize = 16;
/// Blocks of one register tile: 8 rows × 3 blocks = 24 accumulators of the 32 registers.
const TILE_BLOCKS: usize = 3;
/// k-quads (4 k-bytes each) of one pass over a panel: 256 k-bytes, so that a pass's weights
/// (12 KiB) and activation rows stay in L1 even with a second thread on the same core.
const PASS_QUADS: usize = 64;
/// Below this many multiply-accumulates a product runs on the calling thread only: the
/// dispatch would cost more than it saves (the same bound tract uses, 2²¹).
const THREADING_MACS: usize = 1 << 21;

/// Whether this CPU runs the kernel (AVX-512 F, BW and VNNI).
pub fn available() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni")
}

/// What the kernel applies to each finished output value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// Nothing: the layer's output exactly as tract computes it.
    Identity,
    /// QuickGELU `y · σ(alpha · y)` ([`quick_gelu`], a few ulp from the definition), the
    /// activation after CLIP's first MLP layer, applied to each finished tile while it is in
    /// L1.
    QuickGelu {
        /// 1.702 in CLIP.
        alpha: f32,
    },
}

/// A linear layer ready for the kernel: weights packed in blocks of 16 columns × 4 k-bytes,
/// with per-column zero-point offsets, scales and biases padded to whole blocks.
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Gemm {
    k: usize,
    n: usize,
    /// ⌈k / 4⌉.
    quads: usize,
    /// ⌈n / 16⌉.
    blocks: usize,
    /// `[block][quad][column in block][k in quad]`, zero-padded in k and n.
    packed: Vec<i8>,
    /// z · Σ_k w[k, n], subtracted from every accumulator of column n.
    offsets: Vec<i32>,
    scale: Vec<f32>,
    bias: Vec<f32>,
    activation: Activation,
}

/// Why a layer cannot be packed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum GemmError {
    /// The weights are not k × n.
    #[error("{found} weights for a {k}×{n} layer")]
    Weights {
        /// Rows (inputs).
        k: usize,
        /// Columns (outputs).
        n: usize,
        /// Values given.
        found: usize,
    },
    /// A per-column vector is not n long.
    #[error("{what} has {found} values for {n} columns")]
    Column {
        /// `scale` or `bias`.
        what: &'static str,
        /// Columns.
        n: usize,
        /// Values given.
        found: usize,
    },
    /// k too large for exact i32 sums.
    #[error("k = {0} inputs: the i32 sums are exact only up to 16384")]
    TooDeep(usize),
    /// A layer without inputs or outputs.
    #[error("a {k}×{n} layer has nothing to compute")]
    Empty {
        /// Rows (inputs).
        k: usize,
        /// Columns (outputs).
        n: usize,
    },
}

impl Int8Gemm {
    /// Packs weights `w` (k × n, row-major) for activations with zero point `zero_point`.
    /// `scale` and `bias` have one value per column; a layer without bias passes −0.0, which
    /// changes no output bit (x + (−0) = x for every x).
    pub fn new(
        w: &[i8],
        k: usize,
        n: usize,
        zero_point: u8,
        scale: &[f32],
        bias: &[f32],
    ) -> Result<Self, GemmError> {
        if k == 0 || n == 0 {
            return Err(GemmError::Empty { k, n });
        }
        if k > 1 << 14 {
            return Err(GemmError::TooDeep(k));
        }
        if w.len() != k * n {
            return Err(GemmError::Weights {
                k,
                n,
                found: w.len(),
            });
        }
        for (what, v) in [("scale", scale), ("bias", bias)] {
            if v.len() != n {
                return Err(GemmError::Column {
                    what,
                    n,
                    found: v.len(),
                });
            }
        }
        let quads = k.div_ceil(4);
        let blocks = n.div_ceil(BLOCK_COLS);
        let padded = blocks * BLOCK_COLS;
        let mut packed = vec![0i8; blocks * quads * 4 * BLOCK_COLS];
        let mut offsets = vec![0i32; padded];
        for (row, weights) in w.chunks_exact(n).enumerate() {
            for (col, &v) in weights.iter().enumerate() {
                let (block, lane) = (col / BLOCK_COLS, col % BLOCK_COLS);
                let at = ((block * quads + row / 4) * BLOCK_COLS + lane) * 4 + row % 4;
                packed[at] = v;
                offsets[col] += zero_point as i32 * v as i32;
            }
        }
        let pad = |v: &[f32]| {
            let mut p = v.to_vec();
            p.resize(padded, 0.0);
            p
        };
        Ok(Self {
            k,
            n,
            quads,
            blocks,
            packed,
            offsets,
            scale: pad(scale),
            bias: pad(bias),
            activation: Activation::Identity,
        })
    }

    /// The same layer with `activation` applied to its outputs.
    pub fn with_activation(self, activation: Activation) -> Self {
        Self { activation, ..self }
    }

    /// The activation applied to the outputs.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Inputs per row.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Outputs per row.
    pub fn n(&self) -> usize {
        self.n
    }

    /// `out` (rows × n) from `a` (rows × k, row-major u8), on the thread pool of the running
    /// tract plan. Panics if the lengths disagree or the CPU lacks the kernel ([`available`]);
    /// the op that calls it checks both.
    pub fn run(&self, a: &[u8], out: &mut [f32]) {
        assert!(available(), "Int8Gemm needs AVX-512 VNNI");
        let rows = a.len() / self.k;
        assert_eq!(a.len(), rows * self.k, "activations are not whole rows");
        assert_eq!(out.len(), rows * self.n, "output is not rows × n");
        // The kernel reads 4 k-bytes at a time; a row of k not a multiple of 4 is copied into
        // rows padded with zeros so no read passes the end of the buffer.
        let stride = self.quads * 4;
        let padded;
        let a = if stride == self.k {
            a
        } else {
            padded = pad_rows(a, self.k, stride);
            &padded[..]
        };
        let out = Output {
            ptr: out.as_mut_ptr(),
            stride: self.n,
        };
        let panels = self.blocks.div_ceil(TILE_BLOCKS);
        match current_tract_executor() {
            Executor::MultiThread(pool)
                if pool.current_num_threads() > 1 && rows * self.k * self.n >= THREADING_MACS =>
            {
                let parts = pool.current_num_threads().min(panels);
                pool.install(|| {
                    rayon::scope(|scope| {
                        for part in 0..parts {
                            let range = panels * part / parts..panels * (part + 1) / parts;
                            let out = &out;
                            scope.spawn(move |_| {
                                // SAFETY: `available()` was checked above; the parts write
                                // disjoint column ranges of `out`.
                                unsafe { self.panels(a, stride, rows, range, out) }
                            });
                        }
                    })
                });
            }
            // SAFETY: `available()` was checked above.
            _ => unsafe { self.panels(a, stride, rows, 0..panels, &out) },
        }
    }

    /// Every row of the column panels `range` (48 columns each, the last one maybe fewer),
    /// in passes of [`PASS_QUADS`] k-quads; between passes the sums wait in `partial`.
    ///
    /// # Safety
    /// The CPU has AVX-512 F/BW/VNNI; `a` holds `rows` rows of `stride` ≥ 4·quads bytes; `out`
    /// holds `rows` rows of n floats and no other thread writes these panels' columns.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn panels(
        &self,
        a: &[u8],
        stride: usize,
        rows: usize,
        range: std::ops::Range<usize>,
        out: &Output,
    ) {
        let mut partial = vec![_mm512_setzero_si512(); rows * TILE_BLOCKS];
        for panel in range {
            let block = panel * TILE_BLOCKS;
            let blocks = (self.blocks - block).min(TILE_BLOCKS);
            let mut start = 0;
            while start < self.quads {
                let end = (start + PASS_QUADS).min(self.quads);
                let pass = Pass {
                    quads: start..end,
                    first: start == 0,
                    last: end == self.quads,
                };
                let mut row = 0;
                while row < rows {
                    let tile_rows = (rows - row).min(TILE_ROWS);
                    let tile = Tile {
                        a: unsafe { a.as_ptr().add(row * stride) },
                        stride,
                        out: unsafe { out.ptr.add(row * out.stride) },
                        out_stride: out.stride,
                        block,
                        partial: unsafe { partial.as_mut_ptr().add(row * TILE_BLOCKS) },
                    };
                    unsafe { self.tile(&tile, &pass, tile_rows, blocks) };
                    if pass.last {
                        unsafe { self.activate(&tile, tile_rows, blocks) };
                    }
                    row += tile_rows;
                }
                start = end;
            }
        }
    }

    /// The activation over a tile's finished outputs, while they are in L1. (Inside the
    /// kernel, the activation's registers made the compiler spill the accumulators in its
    /// inner loop: the int8 layers of a ViT-B/16 took 147 instead of 60 ms per frame.)
    ///
    /// # Safety
    /// As [`Self::panels`], for the tile's rows and blocks.
    #[target_feature(enable = "avx512f")]
    unsafe fn activate(&self, tile: &Tile, rows: usize, blocks: usize) {
        let Activation::QuickGelu { alpha } = self.activation else {
            return;
        };
        let alpha = _mm512_set1_ps(alpha);
        for j in 0..blocks {
            let col = (tile.block + j) * BLOCK_COLS;
            let mask = lanes(col, self.n);
            for r in 0..rows {
                let at = unsafe { tile.out.add(r * tile.out_stride + col) };
                let y = unsafe { _mm512_maskz_loadu_ps(mask, at) };
                unsafe { _mm512_mask_storeu_ps(at, mask, quick_gelu(y, alpha)) };
            }
        }
    }

    /// One tile: dispatches to the kernel compiled for its height and width.
    ///
    /// # Safety
    /// As [`Self::panels`], for the tile's rows and blocks.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tile(&self, tile: &Tile, pass: &Pass, rows: usize, blocks: usize) {
        macro_rules! dispatch {
            ($($r:literal)*) => {
                match (rows, blocks) {
                    $(
                        ($r, 3) => unsafe { kernel::<$r, 3>(self, tile, pass) },
                        ($r, 2) => unsafe { kernel::<$r, 2>(self, tile, pass) },
                        ($r, 1) => unsafe { kernel::<$r, 1>(self, tile, pass) },
                    )*
                    _ => unreachable!("a tile has 1 to {TILE_ROWS} rows and 1 to 3 blocks"),
                }
            };
        }
        dispatch!(1 2 3 4 5 6 7 8);
    }
}

/// The output matrix, shared by the threads that fill disjoint columns of it.
struct Output {
    ptr: *mut f32,
    stride: usize,
}

// SAFETY: threads write disjoint column ranges (see `Int8Gemm::run`).
unsafe impl Sync for Output {}

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
    quads: std::ops::Range<usize>,
    /// Sums start at zero (else from `Tile::partial`).
    first: bool,
    /// Sums are complete: rescale and write the output (else keep them in `Tile::partial`).
    last: bool,
}

/// `R` rows × `B` blocks of 16 columns over one pass: `R·B` accumulators stay in registers
/// for the whole k loop.
///
/// # Safety
/// As [`Int8Gemm::panels`]; blocks `tile.block .. tile.block + B` exist.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn kernel<const R: usize, const B: usize>(gemm: &Int8Gemm, tile: &Tile, pass: &Pass) {
    let quad_bytes = 4 * BLOCK_COLS;
    let mut acc = [[_mm512_setzero_si512(); B]; R];
    if !pass.first {
        for (r, acc) in acc.iter_mut().enumerate() {
            for (j, acc) in acc.iter_mut().enumerate() {
                *acc = unsafe { *tile.partial.add(r * TILE_BLOCKS + j) };
            }
        }
    }
    let mut weights = [gemm.packed.as_ptr(); B];
    for (j, w) in weights.iter_mut().enumerate() {
        *w = unsafe { w.add((tile.block + j) * gemm.quads * quad_bytes) };
    }
    for quad in pass.quads.clone() {
        let mut w = [_mm512_setzero_si512(); B];
        for (w, base) in w.iter_mut().zip(&weights) {
            *w = unsafe { _mm512_loadu_si512(base.add(quad * quad_bytes).cast()) };
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let bytes = unsafe { tile.a.add(r * tile.stride + 4 * quad) };
            let a = _mm512_set1_epi32(unsafe { bytes.cast::<i32>().read_unaligned() });
            for (acc, w) in acc.iter_mut().zip(&w) {
                *acc = _mm512_dpbusd_epi32(*acc, a, *w);
            }
        }
    }
    if !pass.last {
        for (r, acc) in acc.iter().enumerate() {
            for (j, acc) in acc.iter().enumerate() {
                unsafe { *tile.partial.add(r * TILE_BLOCKS + j) = *acc };
            }
        }
        return;
    }
    for j in 0..B {
        let col = (tile.block + j) * BLOCK_COLS;
        let mask = lanes(col, gemm.n);
        let (offset, scale, bias) = unsafe {
            (
                _mm512_loadu_si512(gemm.offsets.as_ptr().add(col).cast()),
                _mm512_loadu_ps(gemm.scale.as_ptr().add(col)),
                _mm512_loadu_ps(gemm.bias.as_ptr().add(col)),
            )
        };
        for (r, acc) in acc.iter().enumerate() {
            let sum = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[j], offset));
            let y = _mm512_add_ps(_mm512_mul_ps(sum, scale), bias);
            unsafe { _mm512_mask_storeu_ps(tile.out.add(r * tile.out_stride + col), mask, y) };
        }
    }
}

/// `a`'s rows of `k` bytes copied into rows of `stride` bytes, zero-padded.
fn pad_rows(a: &[u8], k: usize, stride: usize) -> Vec<u8> {
    let mut padded = vec![0u8; a.len() / k * stride];
    for (src, dst) in a.chunks_exact(k).zip(padded.chunks_exact_mut(stride)) {
        dst[..k].copy_from_slice(src);
    }
    padded
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, computed the slow way in the same float steps.
    fn reference(
        a: &[u8],
        w: &[i8],
        k: usize,
        n: usize,
        z: u8,
        scale: &[f32],
        bias: &[f32],
    ) -> Vec<f32> {
        let rows = a.len() / k;
        let mut out = vec![0f32; rows * n];
        for t in 0..rows {
            for c in 0..n {
                let sum: i32 = (0..k)
                    .map(|i| (a[t * k + i] as i32 - z as i32) * w[i * n + c] as i32)
                    .sum();
                out[t * n + c] = sum as f32 * scale[c] + bias[c];
            }
        }
        out
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// A random layer: activations, weights, scales and biases.
    struct Layer {
        a: Vec<u8>,
        w: Vec<i8>,
        scale: Vec<f32>,
        bias: Vec<f32>,
    }

    fn layer(rows: usize, k: usize, n: usize, rng: &mut Rng) -> Layer {
        let a: Vec<u8> = (0..rows * k).map(|_| rng.next() as u8).collect();
        // Extremes included: every weight byte value, −128 too.
        let w: Vec<i8> = (0..k * n).map(|_| rng.next() as i8).collect();
        let scale: Vec<f32> = (0..n)
            .map(|_| (rng.next() % 1000 + 1) as f32 * 1.37e-6)
            .collect();
        let bias: Vec<f32> = (0..n)
            .map(|_| (rng.next() % 2001) as f32 * 1e-3 - 1.0)
            .collect();
        Layer { a, w, scale, bias }
    }

    fn run(gemm: &Int8Gemm, a: &[u8], threads: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; a.len() / gemm.k() * gemm.n()];
        let executor = match threads {
            1 => Executor::SingleThread,
            n => Executor::multithread(n),
        };
        tract_linalg::multithread::multithread_tract_scope(executor, || gemm.run(a, &mut out));
        out
    }

    fn check(rows: usize, k: usize, n: usize, z: u8, threads: usize, rng: &mut Rng) {
        let Layer { a, w, scale, bias } = layer(rows, k, n, rng);
        let gemm = Int8Gemm::new(&w, k, n, z, &scale, &bias).unwrap();
        let out = run(&gemm, &a, threads);
        let expected = reference(&a, &w, k, n, z, &scale, &bias);
        for (i, (got, want)) in out.iter().zip(&expected).enumerate() {
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "{rows}×{k}×{n} z {z}, {threads} thread(s): element {i}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn matches_the_definition_bit_for_bit_on_every_tile_shape() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512 VNNI");
            return;
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Every tile height (1 to 8 rows and their sums), one, two and three blocks, partial
        // blocks, k not a multiple of 4, one pass and several (the last one a single quad at
        // k = 257), and products big enough to be threaded.
        for rows in [1, 5, 7, 8, 9, 17, 197] {
            for (k, n) in [
                (4, 16),
                (7, 33),
                (64, 64),
                (192, 80),
                (3, 1),
                (257, 48),
                (768, 40),
            ] {
                check(rows, k, n, 128, 1, &mut rng);
            }
        }
        check(197, 768, 96, 128, 2, &mut rng);
        check(64, 1024, 272, 0, 2, &mut rng);
        check(30, 2048, 40, 255, 3, &mut rng);
    }

    #[test]
    fn quick_gelu_epilogue_is_the_activation_of_the_exact_output() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512 VNNI");
            return;
        }
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let alpha = 1.702f32;
        for (rows, k, n, threads) in [(7, 64, 40, 1), (197, 192, 80, 2)] {
            let Layer { a, w, scale, bias } = layer(rows, k, n, &mut rng);
            // Scales large enough that the outputs cover the sigmoid's whole curve.
            let scale: Vec<f32> = scale.iter().map(|s| s * 300.0).collect();
            let plain = Int8Gemm::new(&w, k, n, 128, &scale, &bias).unwrap();
            let gelu = plain
                .clone()
                .with_activation(Activation::QuickGelu { alpha });
            let ys = run(&plain, &a, threads);
            let gs = run(&gelu, &a, threads);
            let spread = ys.iter().fold(0f32, |m, y| m.max(y.abs()));
            assert!(spread > 8.0, "outputs up to {spread} only");
            for (i, (&y, &g)) in ys.iter().zip(&gs).enumerate() {
                // α·y rounded to f32 first, as in the graph (see `vector_math`'s tests).
                let want = y as f64 / (1.0 + (-((alpha * y) as f64)).exp());
                let ulps = (want as f32).to_bits().abs_diff(g.to_bits());
                assert!(
                    ulps <= 4 || (g as f64 - want).abs() < 1e-30,
                    "{rows}×{k}×{n}: element {i}: quick_gelu({y}) = {g}, want {want}"
                );
            }
        }
    }

    #[test]
    fn sums_are_exact_at_the_extremes() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512 VNNI");
            return;
        }
        // The largest |Σ| the layer sizes allow: a = 255 with z = 0 against w = −128.
        let k = 16384;
        let a = vec![255u8; 2 * k];
        let w = vec![-128i8; k * 16];
        let gemm = Int8Gemm::new(&w, k, 16, 0, &[1.0; 16], &[0.0; 16]).unwrap();
        let mut out = vec![0f32; 32];
        gemm.run(&a, &mut out);
        assert!(out.iter().all(|&y| y == (255 * -128 * k as i64) as f32));
    }

    #[test]
    fn shapes_are_checked() {
        assert_eq!(
            Int8Gemm::new(&[0; 5], 2, 3, 0, &[1.0; 3], &[0.0; 3]),
            Err(GemmError::Weights {
                k: 2,
                n: 3,
                found: 5
            })
        );
        assert_eq!(
            Int8Gemm::new(&[0; 6], 2, 3, 0, &[1.0; 2], &[0.0; 3]),
            Err(GemmError::Column {
                what: "scale",
                n: 3,
                found: 2
            })
        );
        assert_eq!(
            Int8Gemm::new(&[], 0, 3, 0, &[1.0; 3], &[0.0; 3]),
            Err(GemmError::Empty { k: 0, n: 3 })
        );
        assert_eq!(
            Int8Gemm::new(&[], 16385, 0, 0, &[], &[]),
            Err(GemmError::Empty { k: 16385, n: 0 })
        );
    }
}
