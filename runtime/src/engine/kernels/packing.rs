//! How the int8 kernels find their operands: a linear layer's weights packed once at load in
//! blocks of 16 columns × 4 k-bytes (the shape of one AVX-512 VNNI step), with the per-column
//! zero-point offsets, scales and biases padded to whole blocks, and activation rows padded
//! to whole 4-byte quads. Every int8 kernel reads this one layout ([`Int8Gemm::weight`] is its
//! definition).

/// Columns of one block (one 512-bit register of i32).
pub const BLOCK_COLS: usize = 16;
/// k-bytes of one quad (what one VNNI step sums).
pub const QUAD: usize = 4;
/// The largest k whose i32 sums are exact (|Σ| < 2³¹ since |a − z| ≤ 255 and |w| ≤ 128).
pub const MAX_K: usize = 1 << 14;

/// What the kernel applies to each finished output value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// Nothing: the layer's output exactly as tract computes it.
    Identity,
    /// QuickGELU `y · σ(alpha · y)`, the activation after CLIP's first MLP layer, applied to
    /// each finished output (to a few ulp of the definition, not to tract's bits).
    QuickGelu {
        /// 1.702 in CLIP.
        alpha: f32,
    },
}

/// A linear layer ready for the int8 kernels:
/// `y[t, n] = act(f32(Σ_k (a[t, k] − z) · w[k, n]) · scale[n] + bias[n])`.
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
    /// z · Σ_k w[k, n], subtracted from every sum of column n.
    offsets: Vec<i32>,
    /// (z − 128) · Σ_k w[k, n], subtracted from every sum of column n over s8 activations
    /// a − 128 (what a signed-by-signed product such as aarch64's SDOT sums).
    signed_offsets: Vec<i32>,
    scale: Vec<f32>,
    bias: Vec<f32>,
    /// z, the activations' zero point.
    zero_point: u8,
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
        check_shapes(w, k, n, scale, bias)?;
        let quads = k.div_ceil(QUAD);
        let blocks = n.div_ceil(BLOCK_COLS);
        let padded = blocks * BLOCK_COLS;
        let mut packed = vec![0i8; blocks * quads * QUAD * BLOCK_COLS];
        let mut sums = vec![0i32; padded];
        for (row, weights) in w.chunks_exact(n).enumerate() {
            for (col, &v) in weights.iter().enumerate() {
                packed[packed_index(quads, row, col)] = v;
                sums[col] += v as i32;
            }
        }
        // |Σ w| ≤ 128 · MAX_K = 2²¹ and |z − 128| ≤ 128: both products fit an i32.
        let offsets = sums.iter().map(|s| zero_point as i32 * s).collect();
        let signed_offsets = sums.iter().map(|s| (zero_point as i32 - 128) * s).collect();
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
            signed_offsets,
            scale: pad(scale),
            bias: pad(bias),
            zero_point,
            activation: Activation::Identity,
        })
    }

    /// The same layer with `activation` applied to its outputs.
    pub fn with_activation(self, activation: Activation) -> Self {
        Self { activation, ..self }
    }

    /// The activation applied to the outputs.
    #[inline]
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Inputs per row.
    #[inline]
    pub fn k(&self) -> usize {
        self.k
    }

    /// Outputs per row.
    #[inline]
    pub fn n(&self) -> usize {
        self.n
    }

    /// z, the activations' zero point.
    #[inline]
    pub fn zero_point(&self) -> u8 {
        self.zero_point
    }

    /// ⌈k / 4⌉: quads per activation row and per weight column.
    #[inline]
    pub fn quads(&self) -> usize {
        self.quads
    }

    /// ⌈n / 16⌉: blocks of columns.
    #[inline]
    pub fn blocks(&self) -> usize {
        self.blocks
    }

    /// The packed weights, `[block][quad][column in block][k in quad]`.
    #[inline]
    pub fn packed(&self) -> &[i8] {
        &self.packed
    }

    /// z · Σ_k w[k, n] per column, padded to whole blocks with zeros.
    // Read by the kernels of one architecture (x86-64's u8 × s8 products) only.
    #[allow(dead_code)]
    #[inline]
    pub fn offsets(&self) -> &[i32] {
        &self.offsets
    }

    /// (z − 128) · Σ_k w[k, n] per column, padded to whole blocks with zeros: with it a kernel
    /// sums s8 activations a − 128 (a XOR 0x80) times the s8 weights and subtracts this to get
    /// Σ (a − z) · w.
    // Read by the kernels of one architecture (aarch64's s8 × s8 products) only.
    #[allow(dead_code)]
    #[inline]
    pub fn signed_offsets(&self) -> &[i32] {
        &self.signed_offsets
    }

    /// The rescale per column, padded to whole blocks with zeros.
    #[inline]
    pub fn scale(&self) -> &[f32] {
        &self.scale
    }

    /// The bias per column, padded to whole blocks with zeros.
    #[inline]
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// The weight of input `row` for output `col`, read from the packed layout.
    #[inline]
    pub fn weight(&self, row: usize, col: usize) -> i8 {
        self.packed[packed_index(self.quads, row, col)]
    }
}

/// Where `w[row, col]` lies in the packed weights of a layer of `quads` quads.
fn packed_index(quads: usize, row: usize, col: usize) -> usize {
    let (block, lane) = (col / BLOCK_COLS, col % BLOCK_COLS);
    ((block * quads + row / QUAD) * BLOCK_COLS + lane) * QUAD + row % QUAD
}

fn check_shapes(
    w: &[i8],
    k: usize,
    n: usize,
    scale: &[f32],
    bias: &[f32],
) -> Result<(), GemmError> {
    if k == 0 || n == 0 {
        return Err(GemmError::Empty { k, n });
    }
    if k > MAX_K {
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
    Ok(())
}

/// `a`'s rows of `k` bytes copied into rows of `stride` bytes, zero-padded: kernels that read
/// whole quads read no byte past a row of k not a multiple of 4.
// Used by the kernels of one architecture (x86-64's, which read u8 activations in place) only.
#[allow(dead_code)]
pub fn pad_rows(a: &[u8], k: usize, stride: usize) -> Vec<u8> {
    let mut padded = vec![0u8; a.len() / k * stride];
    for (src, dst) in a.chunks_exact(k).zip(padded.chunks_exact_mut(stride)) {
        dst[..k].copy_from_slice(src);
    }
    padded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_weight_is_found_where_it_was_packed() {
        let (k, n) = (7, 35);
        let w: Vec<i8> = (0..k * n).map(|i| (i % 251) as i8).collect();
        let gemm = Int8Gemm::new(&w, k, n, 3, &[1.0; 35], &[0.0; 35]).unwrap();
        for row in 0..k {
            for col in 0..n {
                assert_eq!(gemm.weight(row, col), w[row * n + col], "{row}, {col}");
            }
        }
        let column_sum = |col: usize| (0..k).map(|row| w[row * n + col] as i32).sum::<i32>();
        assert_eq!(gemm.offsets()[34], 3 * column_sum(34));
        assert_eq!(gemm.signed_offsets()[34], -125 * column_sum(34));
        assert_eq!(gemm.offsets().len(), 48);
        assert_eq!(
            pad_rows(&[1, 2, 3, 4, 5, 6], 3, 4),
            [1, 2, 3, 0, 4, 5, 6, 0]
        );
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
        assert_eq!(
            Int8Gemm::new(&[], 16385, 1, 0, &[1.0], &[0.0]),
            Err(GemmError::TooDeep(16385))
        );
    }
}
