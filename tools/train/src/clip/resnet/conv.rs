//! 2-D convolution for training on CPU: a candle custom op whose forward and both backward
//! products are im2col + one `gemm` per image, images spread over the thread pool.
//!
//! candle 0.11's own `conv2d` is differentiable, but its backward runs `conv_transpose2d` as a
//! direct loop and the kernel gradient as a convolution whose "kernel" is the whole output map,
//! over an im2col buffer of the whole batch (1.2 GB for the first layer of a 32-channel tower at
//! batch 256). Here every product is a dense matrix product of one image's `(C·kh·kw) × (Ho·Wo)`
//! column matrix, which stays in the cache, and a 1×1 stride-1 convolution (most of a
//! ModifiedResNet) needs no column matrix at all.
//!
//! Layout is candle's NCHW, weights `(O, C, kh, kw)`, f32 only; no bias (every convolution of
//! CLIP's ModifiedResNet is followed by a batch norm).
//!
//! Per image `b`, with `cols_b = im2col(x_b)` of shape `(C·kh·kw, L)`, `L = Ho·Wo`:
//! - forward: `y_b = W · cols_b`, `W` seen as `(O, C·kh·kw)`;
//! - input gradient: `dx_b = col2im(Wᵀ · dy_b)`;
//! - weight gradient: `dW = Σ_b dy_b · cols_bᵀ`.

use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

/// Geometry of one convolution: input `(B, C, H, W)`, kernel `(O, C, k, k)`, square stride and
/// zero padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    batch: usize,
    channels: usize,
    height: usize,
    width: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
}

impl Geometry {
    fn out_height(&self) -> usize {
        (self.height + 2 * self.padding - self.kernel) / self.stride + 1
    }

    fn out_width(&self) -> usize {
        (self.width + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Output positions per image, `Ho·Wo`.
    fn positions(&self) -> usize {
        self.out_height() * self.out_width()
    }

    /// Rows of the column matrix, `C·k·k`.
    fn patch(&self) -> usize {
        self.channels * self.kernel * self.kernel
    }

    fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    fn out_image_len(&self) -> usize {
        self.out_channels * self.positions()
    }

    /// A column matrix for one image; empty for a pointwise convolution, which needs none.
    fn column_buffer(&self) -> Vec<f32> {
        let len = if self.is_pointwise() {
            0
        } else {
            self.patch() * self.positions()
        };
        vec![0f32; len]
    }

    /// Whether the input itself is the column matrix (1×1, stride 1, no padding).
    fn is_pointwise(&self) -> bool {
        self.kernel == 1 && self.stride == 1 && self.padding == 0
    }

    fn input_shape(&self) -> Shape {
        Shape::from((self.batch, self.channels, self.height, self.width))
    }

    fn output_shape(&self) -> Shape {
        Shape::from((
            self.batch,
            self.out_channels,
            self.out_height(),
            self.out_width(),
        ))
    }

    fn kernel_shape(&self) -> Shape {
        Shape::from((self.out_channels, self.channels, self.kernel, self.kernel))
    }

    /// The geometry of `x (B, C, H, W)` convolved with `w (O, C, k, k)`.
    fn of(x: &Shape, w: &Shape, stride: usize, padding: usize) -> Result<Self> {
        let (batch, channels, height, width) = x.dims4()?;
        let (out_channels, w_channels, kh, kw) = w.dims4()?;
        if w_channels != channels || kh != kw {
            bail!("conv2d: input {x:?} and kernel {w:?} do not fit (expected (O, C, k, k))");
        }
        if stride == 0 || height + 2 * padding < kh || width + 2 * padding < kw {
            bail!("conv2d: kernel {kh}×{kw}, stride {stride}, padding {padding} on a {height}×{width} input");
        }
        Ok(Self {
            batch,
            channels,
            height,
            width,
            out_channels,
            kernel: kh,
            stride,
            padding,
        })
    }

    /// The output columns `ox` whose input column `ox·s + kx − p` lies inside the image, as a
    /// range, and the input column of its first element.
    fn valid_columns(&self, kx: usize) -> (std::ops::Range<usize>, usize) {
        let (s, p, wo) = (self.stride, self.padding, self.out_width());
        // ox·s + kx ≥ p  and  ox·s + kx − p < width.
        let lo = p.saturating_sub(kx).div_ceil(s);
        let hi = (self.width + p).saturating_sub(kx).div_ceil(s).min(wo);
        let lo = lo.min(hi);
        (lo..hi, (lo * s + kx).saturating_sub(p))
    }

    /// Writes the column matrix of one image: row `(c, ky, kx)`, column `(oy, ox)`.
    fn im2col(&self, image: &[f32], cols: &mut [f32]) {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let (ho, wo) = (self.out_height(), self.out_width());
        let plane_len = self.height * self.width;
        for c in 0..self.channels {
            let plane = &image[c * plane_len..][..plane_len];
            for ky in 0..k {
                for kx in 0..k {
                    let (valid, x0) = self.valid_columns(kx);
                    let row = (c * k + ky) * k + kx;
                    let out = &mut cols[row * ho * wo..][..ho * wo];
                    for oy in 0..ho {
                        let dst = &mut out[oy * wo..][..wo];
                        let iy = (oy * s + ky).wrapping_sub(p);
                        if iy >= self.height {
                            dst.fill(0.0);
                            continue;
                        }
                        let src = &plane[iy * self.width..][..self.width];
                        dst[..valid.start].fill(0.0);
                        dst[valid.end..].fill(0.0);
                        let run = &mut dst[valid.clone()];
                        if s == 1 {
                            run.copy_from_slice(&src[x0..x0 + run.len()]);
                        } else {
                            for (i, d) in run.iter_mut().enumerate() {
                                *d = src[x0 + i * s];
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds a column matrix back onto one image's gradient (the adjoint of [`Self::im2col`]).
    fn col2im(&self, cols: &[f32], image: &mut [f32]) {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let (ho, wo) = (self.out_height(), self.out_width());
        let plane_len = self.height * self.width;
        image.fill(0.0);
        for c in 0..self.channels {
            let plane = &mut image[c * plane_len..][..plane_len];
            for ky in 0..k {
                for kx in 0..k {
                    let (valid, x0) = self.valid_columns(kx);
                    let row = (c * k + ky) * k + kx;
                    let col = &cols[row * ho * wo..][..ho * wo];
                    for oy in 0..ho {
                        let iy = (oy * s + ky).wrapping_sub(p);
                        if iy >= self.height {
                            continue;
                        }
                        let dst = &mut plane[iy * self.width..][..self.width];
                        let run = &col[oy * wo..][valid.clone()];
                        if s == 1 {
                            dst[x0..x0 + run.len()]
                                .iter_mut()
                                .zip(run)
                                .for_each(|(d, v)| *d += v);
                        } else {
                            for (i, v) in run.iter().enumerate() {
                                dst[x0 + i * s] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A row-major matrix view for [`matmul`].
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    /// Whether `data` holds the transpose (`cols × rows`, row-major).
    transposed: bool,
}

impl<'a> Mat<'a> {
    fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            transposed: false,
        }
    }

    /// The transpose of a row-major `(rows, cols)` matrix, without copying.
    fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            transposed: !self.transposed,
        }
    }

    /// (column stride, row stride) of the logical matrix.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (self.rows as isize, 1)
        } else {
            (1, self.cols as isize)
        }
    }
}

/// `dst (m, n) = a (m, k) · b (k, n)`, or `dst += a · b` when `accumulate`, on the calling thread.
fn matmul(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(b.rows == k && dst.len() == m * n && a.data.len() == m * k && b.data.len() == k * n);
    let (a_cs, a_rs) = a.strides();
    let (b_cs, b_rs) = b.strides();
    // SAFETY: the assertion above bounds every index gemm touches: dst is m×n row-major, a and b
    // are m×k and k×n with the strides of their layout, and dst does not alias a or b (it is
    // a `&mut`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// The f32 contents of a contiguous tensor storage.
fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("conv2d: {what} must be contiguous"),
    }
}

/// Images per parallel task: about a million multiply-adds per task, so that small late-stage
/// images amortise their column buffer, but at least four tasks per thread to balance the load.
fn images_per_task(g: &Geometry) -> usize {
    let per_image = (g.out_image_len() * g.patch()).max(1);
    let balanced = g.batch.div_ceil(4 * rayon::current_num_threads()).max(1);
    (1usize << 20).div_ceil(per_image).clamp(1, balanced)
}

/// The forward convolution.
struct Forward {
    stride: usize,
    padding: usize,
}

impl CustomOp2 for Forward {
    fn name(&self) -> &'static str {
        "conv2d-im2col"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::of(xl.shape(), wl.shape(), self.stride, self.padding)?;
        let x = contiguous(xs, xl, "input")?;
        let w = Mat::new(contiguous(ws, wl, "kernel")?, g.out_channels, g.patch());
        let mut y = vec![0f32; g.batch * g.out_image_len()];
        let chunk = images_per_task(&g);
        y.par_chunks_mut(chunk * g.out_image_len())
            .zip(x.par_chunks(chunk * g.image_len()))
            .for_each(|(ys, xs)| {
                let mut cols = g.column_buffer();
                for (yb, xb) in ys
                    .chunks_mut(g.out_image_len())
                    .zip(xs.chunks(g.image_len()))
                {
                    let cols = if g.is_pointwise() {
                        xb
                    } else {
                        g.im2col(xb, &mut cols);
                        &cols
                    };
                    matmul(yb, w, Mat::new(cols, g.patch(), g.positions()), false);
                }
            });
        Ok((CpuStorage::F32(y), g.output_shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = Geometry::of(x.shape(), w.shape(), self.stride, self.padding)?;
        let dy = dy.contiguous()?;
        // Pixels need no gradient: the first layer skips its largest product.
        let dx = if x.track_op() {
            Some(dy.apply_op2_no_bwd(w, &InputGrad(g))?)
        } else {
            None
        };
        let dw = x.apply_op2_no_bwd(&dy, &KernelGrad(g))?;
        Ok((dx, Some(dw)))
    }
}

/// `dx` from `(dy, W)`.
struct InputGrad(Geometry);

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "conv2d-input-grad"
    }

    fn cpu_fwd(
        &self,
        dys: &CpuStorage,
        dyl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let dy = contiguous(dys, dyl, "output gradient")?;
        let w = Mat::new(contiguous(ws, wl, "kernel")?, g.out_channels, g.patch()).t();
        let mut dx = vec![0f32; g.batch * g.image_len()];
        let chunk = images_per_task(&g);
        dx.par_chunks_mut(chunk * g.image_len())
            .zip(dy.par_chunks(chunk * g.out_image_len()))
            .for_each(|(dxs, dys)| {
                let mut cols = g.column_buffer();
                for (dxb, dyb) in dxs
                    .chunks_mut(g.image_len())
                    .zip(dys.chunks(g.out_image_len()))
                {
                    let dyb = Mat::new(dyb, g.out_channels, g.positions());
                    if g.is_pointwise() {
                        matmul(dxb, w, dyb, false);
                    } else {
                        matmul(&mut cols, w, dyb, false);
                        g.col2im(&cols, dxb);
                    }
                }
            });
        Ok((CpuStorage::F32(dx), g.input_shape()))
    }
}

/// `dW` from `(x, dy)`.
struct KernelGrad(Geometry);

impl CustomOp2 for KernelGrad {
    fn name(&self) -> &'static str {
        "conv2d-kernel-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        dys: &CpuStorage,
        dyl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let x = contiguous(xs, xl, "input")?;
        let dy = contiguous(dys, dyl, "output gradient")?;
        let kernel_len = g.out_channels * g.patch();
        let chunk = images_per_task(&g);
        let dw = x
            .par_chunks(chunk * g.image_len())
            .zip(dy.par_chunks(chunk * g.out_image_len()))
            .map(|(xs, dys)| {
                let mut dw = vec![0f32; kernel_len];
                let mut cols = g.column_buffer();
                for (xb, dyb) in xs.chunks(g.image_len()).zip(dys.chunks(g.out_image_len())) {
                    let cols = if g.is_pointwise() {
                        xb
                    } else {
                        g.im2col(xb, &mut cols);
                        &cols
                    };
                    let dyb = Mat::new(dyb, g.out_channels, g.positions());
                    matmul(
                        &mut dw,
                        dyb,
                        Mat::new(cols, g.patch(), g.positions()).t(),
                        true,
                    );
                }
                dw
            })
            .reduce(
                || vec![0f32; kernel_len],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                    a
                },
            );
        Ok((CpuStorage::F32(dw), g.kernel_shape()))
    }
}

/// `x (B, C, H, W)` convolved with `w (O, C, k, k)` at `stride` with zero `padding`, no bias;
/// differentiable in both arguments. Both must be f32 on the CPU.
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    Geometry::of(x.shape(), w.shape(), stride, padding)?;
    x.contiguous()?
        .apply_op2(&w.contiguous()?, Forward { stride, padding })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        super::super::max_abs(&(a - b).unwrap())
    }

    /// Forward and both gradients equal candle's own convolution, for every shape the towers use.
    #[test]
    fn matches_candle_conv2d_forward_and_gradients() {
        let dev = Device::Cpu;
        for (c, o, hw, k, s, p) in [
            (3, 8, 9, 3, 2, 1),
            (3, 2, 32, 3, 2, 1),
            (4, 6, 8, 3, 1, 1),
            (5, 7, 6, 1, 1, 0),
            (2, 3, 7, 3, 1, 0),
            (3, 4, 10, 3, 2, 0),
            (2, 5, 5, 5, 1, 2),
        ] {
            let x =
                Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, c, hw, hw), &dev).unwrap()).unwrap();
            let w =
                Var::from_tensor(&Tensor::randn(0f32, 1.0, (o, c, k, k), &dev).unwrap()).unwrap();
            let ours = conv2d(&x, &w, s, p).unwrap();
            let theirs = x.conv2d(&w, p, s, 1, 1).unwrap();
            assert_eq!(ours.dims(), theirs.dims());
            assert!(
                max_abs_diff(&ours, &theirs) < 1e-4,
                "forward {c} {o} {k} {s} {p}"
            );
            // A weighted sum makes every output position's gradient different.
            let weights = Tensor::randn(0f32, 1.0, ours.shape(), &dev).unwrap();
            let g_ours = (&ours * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g_theirs = (&theirs * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for v in [&x, &w] {
                let a = g_ours.get(v).unwrap();
                let b = g_theirs.get(v).unwrap();
                assert!(max_abs_diff(a, b) < 1e-3, "gradient {c} {o} {k} {s} {p}");
            }
        }
    }

    #[test]
    fn mismatched_channels_are_an_error() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((1, 3, 8, 8), candle_core::DType::F32, &dev).unwrap();
        let w = Tensor::zeros((4, 2, 3, 3), candle_core::DType::F32, &dev).unwrap();
        let err = conv2d(&x, &w, 1, 1).unwrap_err().to_string();
        assert!(err.contains("do not fit"), "{err}");
    }
}
