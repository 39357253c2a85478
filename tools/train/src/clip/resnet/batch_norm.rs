//! `nn.BatchNorm2d` as CLIP's ModifiedResNet uses it (eps 1e-5, momentum 0.1), over NCHW maps.
//!
//! Training normalises with the batch's own per-channel mean and biased variance, and moves the
//! running statistics towards the batch mean and *unbiased* variance, as PyTorch does. That path
//! is one fused candle op (one pass for the statistics, one for the output, two for the
//! gradient) instead of the nine broadcast ops a composed version needs per map. Evaluation
//! is the constant affine `x · scale + shift` of the running statistics.
//!
//! Gradient of the training op, per channel over its `N = B·H·W` values, `x̂ = (x − μ)/σ`:
//! `dβ = Σ dy`, `dγ = Σ dy·x̂`, `dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy·x̂))`.

use std::sync::Arc;

use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, Var};
use rayon::prelude::*;

/// PyTorch's default epsilon.
pub const EPS: f64 = 1e-5;
/// PyTorch's default running-statistics momentum.
const MOMENTUM: f64 = 0.1;

/// One batch-norm layer's tensors. In a tower being trained they are the variables of a
/// [`crate::model::params::ParamStore`] (running statistics included, so that training can
/// update them in place); in a frozen tower, constants.
#[derive(Clone)]
pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
}

/// Per-channel batch statistics of an NCHW map.
struct Moments {
    mean: Vec<f32>,
    /// `1 / sqrt(biased variance + eps)`.
    inv_std: Vec<f32>,
    /// Biased variance.
    var: Vec<f32>,
}

/// Planes of one channel in a contiguous `(B, C, H, W)` buffer: `(b, c)` → `b·C + c`.
fn planes(data: &[f32], channels: usize, plane: usize, c: usize) -> impl Iterator<Item = &[f32]> {
    data.chunks(plane).skip(c).step_by(channels)
}

fn moments(x: &[f32], channels: usize, plane: usize) -> Moments {
    let n = (x.len() / channels) as f64;
    let (mean, var): (Vec<f32>, Vec<f32>) = (0..channels)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = planes(x, channels, plane, c)
                .map(|p| p.iter().map(|&v| f64::from(v)).sum::<f64>())
                .sum();
            let mean = sum / n;
            let sq: f64 = planes(x, channels, plane, c)
                .map(|p| {
                    p.iter()
                        .map(|&v| (f64::from(v) - mean).powi(2))
                        .sum::<f64>()
                })
                .sum();
            (mean as f32, (sq / n) as f32)
        })
        .unzip();
    let inv_std = var
        .iter()
        .map(|&v| 1.0 / (f64::from(v) + EPS).sqrt() as f32)
        .collect();
    Moments { mean, inv_std, var }
}

fn dims(layout: &Layout) -> Result<(usize, usize)> {
    let (_, c, h, w) = layout.shape().dims4()?;
    Ok((c, h * w))
}

fn slice<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("batch norm: tensors must be contiguous"),
    }
}

/// The training-mode op: `(x, γ, β) → y` with the batch statistics computed beforehand, and
/// optionally the ReLU that follows (fused: candle's ReLU costs one pass forward and four
/// backward, each with its own allocation).
struct Normalise {
    moments: Arc<Moments>,
    relu: bool,
}

impl CustomOp3 for Normalise {
    fn name(&self) -> &'static str {
        "batch-norm-2d"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (channels, plane) = dims(xl)?;
        let (x, gamma, beta) = (slice(xs, xl)?, slice(gs, gl)?, slice(bs, bl)?);
        let m = &self.moments;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(plane)
            .zip(x.par_chunks(plane))
            .enumerate()
            .for_each(|(i, (yp, xp))| {
                let c = i % channels;
                let scale = gamma[c] * m.inv_std[c];
                let shift = beta[c] - m.mean[c] * scale;
                if self.relu {
                    for (y, &x) in yp.iter_mut().zip(xp) {
                        *y = (x * scale + shift).max(0.0);
                    }
                } else {
                    for (y, &x) in yp.iter_mut().zip(xp) {
                        *y = x * scale + shift;
                    }
                }
            });
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dy = if self.relu {
            dy.apply_op2_no_bwd(y, &ReluMask)?
        } else {
            dy
        };
        let sums = x.apply_op2_no_bwd(
            &dy,
            &GradSums {
                moments: self.moments.clone(),
            },
        )?;
        let (dgamma, dbeta) = (sums.get(0)?, sums.get(1)?);
        let dx = Tensor::cat(&[&dgamma, &dbeta, gamma], 0)?.apply_op2_no_bwd(
            &Tensor::cat(&[x, &dy], 0)?,
            &InputGrad {
                moments: self.moments.clone(),
            },
        )?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

/// `(dy, y) → dy · [y > 0]`: the gradient through the fused ReLU.
struct ReluMask;

impl candle_core::CustomOp2 for ReluMask {
    fn name(&self) -> &'static str {
        "batch-norm-2d-relu-mask"
    }

    fn cpu_fwd(
        &self,
        ds: &CpuStorage,
        dl: &Layout,
        ys: &CpuStorage,
        yl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (dy, y) = (slice(ds, dl)?, slice(ys, yl)?);
        let mut out = vec![0f32; dy.len()];
        out.par_chunks_mut(1 << 14)
            .zip(dy.par_chunks(1 << 14).zip(y.par_chunks(1 << 14)))
            .for_each(|(o, (d, y))| {
                for ((o, &d), &y) in o.iter_mut().zip(d).zip(y) {
                    *o = if y > 0.0 { d } else { 0.0 };
                }
            });
        Ok((CpuStorage::F32(out), dl.shape().clone()))
    }
}

/// `(x, dy) → [[Σ dy·x̂], [Σ dy]]` per channel, shape `(2, C)`.
struct GradSums {
    moments: Arc<Moments>,
}

impl candle_core::CustomOp2 for GradSums {
    fn name(&self) -> &'static str {
        "batch-norm-2d-grad-sums"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ds: &CpuStorage,
        dl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (channels, plane) = dims(xl)?;
        let (x, dy) = (slice(xs, xl)?, slice(ds, dl)?);
        let m = &self.moments;
        let (dgamma, dbeta): (Vec<f32>, Vec<f32>) = (0..channels)
            .into_par_iter()
            .map(|c| {
                let (mut sxd, mut sd) = (0f64, 0f64);
                for (xp, dp) in planes(x, channels, plane, c).zip(planes(dy, channels, plane, c)) {
                    let (mut a, mut b) = (0f32, 0f32);
                    for (&x, &d) in xp.iter().zip(dp) {
                        a += (x - m.mean[c]) * d;
                        b += d;
                    }
                    sxd += f64::from(a);
                    sd += f64::from(b);
                }
                ((sxd * f64::from(m.inv_std[c])) as f32, sd as f32)
            })
            .unzip();
        Ok((
            CpuStorage::F32([dgamma, dbeta].concat()),
            Shape::from((2, channels)),
        ))
    }
}

/// `([dγ; dβ; γ], [x; dy]) → dx`; the operands are stacked along axis 0 to fit a binary op.
struct InputGrad {
    moments: Arc<Moments>,
}

impl candle_core::CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "batch-norm-2d-input-grad"
    }

    fn cpu_fwd(
        &self,
        ps: &CpuStorage,
        pl: &Layout,
        xs: &CpuStorage,
        xl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b2, channels, h, w) = xl.shape().dims4()?;
        let (batch, plane) = (b2 / 2, h * w);
        let p = slice(ps, pl)?;
        let (dgamma, rest) = p.split_at(channels);
        let (dbeta, gamma) = rest.split_at(channels);
        let both = slice(xs, xl)?;
        let (x, dy) = both.split_at(batch * channels * plane);
        let n = (batch * plane) as f32;
        let m = &self.moments;
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(plane)
            .zip(x.par_chunks(plane).zip(dy.par_chunks(plane)))
            .enumerate()
            .for_each(|(i, (dxp, (xp, dp)))| {
                let c = i % channels;
                let s = m.inv_std[c];
                let k = gamma[c] * s;
                let mean_d = dbeta[c] / n;
                let mean_dx = dgamma[c] / n;
                for ((o, &x), &d) in dxp.iter_mut().zip(xp).zip(dp) {
                    let xhat = (x - m.mean[c]) * s;
                    *o = k * (d - mean_d - xhat * mean_dx);
                }
            });
        Ok((CpuStorage::F32(dx), Shape::from((batch, channels, h, w))))
    }
}

impl BatchNorm2d {
    /// A layer over these tensors, each `(C,)`.
    pub fn new(weight: Tensor, bias: Tensor, running_mean: Tensor, running_var: Tensor) -> Self {
        Self {
            weight,
            bias,
            running_mean,
            running_var,
        }
    }

    /// Normalises `x (B, C, H, W)`, then applies a ReLU when `relu`. In training (batch
    /// statistics) the running statistics are updated in place, which needs them to be
    /// variables.
    pub fn forward(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        if train {
            return self.forward_train(x, relu);
        }
        let (scale, shift) = self.eval_affine()?;
        let c = scale.dim(0)?;
        let y = x
            .broadcast_mul(&scale.reshape((1, c, 1, 1))?)?
            .broadcast_add(&shift.reshape((1, c, 1, 1))?)?;
        if relu {
            y.relu()
        } else {
            Ok(y)
        }
    }

    fn forward_train(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        let x = x.contiguous()?;
        let (b, c, h, w) = x.dims4()?;
        if b * h * w < 2 {
            bail!(
                "batch norm in training needs more than 1 value per channel, got {b}×{c}×{h}×{w}"
            );
        }
        let moments = {
            let (storage, layout) = x.storage_and_layout();
            let data = match &*storage {
                candle_core::Storage::Cpu(s) => moments(slice(s, layout)?, c, h * w),
                _ => bail!("batch norm: the training op runs on the CPU only"),
            };
            Arc::new(data)
        };
        self.update_running(&moments, b * h * w)?;
        x.apply_op3(&self.weight, &self.bias, Normalise { moments, relu })
    }

    fn update_running(&self, m: &Moments, n: usize) -> Result<()> {
        if !self.running_mean.is_variable() || !self.running_var.is_variable() {
            bail!("batch norm: the tower was loaded frozen; its running statistics cannot train");
        }
        // Both are variables, so these share their storage and `set` writes in place.
        let rm = Var::from_tensor(&self.running_mean)?;
        let rv = Var::from_tensor(&self.running_var)?;
        let dev = self.running_mean.device();
        let unbiased = n as f64 / (n as f64 - 1.0);
        let mean = Tensor::from_slice(&m.mean, m.mean.len(), dev)?;
        let var = (Tensor::from_slice(&m.var, m.var.len(), dev)? * unbiased)?;
        rm.set(&((self.running_mean.detach() * (1.0 - MOMENTUM))? + (mean * MOMENTUM)?)?)?;
        rv.set(&((self.running_var.detach() * (1.0 - MOMENTUM))? + (var * MOMENTUM)?)?)
    }

    /// The learned scale and shift `(γ, β)`.
    pub fn affine(&self) -> (&Tensor, &Tensor) {
        (&self.weight, &self.bias)
    }

    /// Eval-mode affine form `y = x · scale + shift` (per channel).
    pub fn eval_affine(&self) -> Result<(Tensor, Tensor)> {
        let scale = self.weight.div(&(&self.running_var + EPS)?.sqrt()?)?;
        let shift = (&self.bias - self.running_mean.mul(&scale)?)?;
        Ok((scale, shift))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, D};

    /// The composed definition, with candle's own gradients.
    fn reference(x: &Tensor, gamma: &Tensor, beta: &Tensor) -> Tensor {
        let c = gamma.dim(0).unwrap();
        let per_channel = |t: &Tensor| {
            t.transpose(0, 1)
                .unwrap()
                .contiguous()
                .unwrap()
                .reshape((c, ()))
                .unwrap()
        };
        let flat = per_channel(x);
        let mean = flat.mean_keepdim(D::Minus1).unwrap();
        let centred = flat.broadcast_sub(&mean).unwrap();
        let var = centred.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        let mean = mean.reshape((1, c, 1, 1)).unwrap();
        let var = var.reshape((1, c, 1, 1)).unwrap();
        x.broadcast_sub(&mean)
            .unwrap()
            .broadcast_div(&(var + EPS).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(&gamma.reshape((1, c, 1, 1)).unwrap())
            .unwrap()
            .broadcast_add(&beta.reshape((1, c, 1, 1)).unwrap())
            .unwrap()
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        super::super::max_abs(&(a - b).unwrap())
    }

    #[test]
    fn training_op_matches_composed_definition_with_gradients() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(
            &(Tensor::randn(0f32, 2.0, (3, 4, 5, 6), &dev).unwrap() + 1.5).unwrap(),
        )
        .unwrap();
        let gamma = Var::from_tensor(&Tensor::randn(1f32, 0.3, 4, &dev).unwrap()).unwrap();
        let beta = Var::from_tensor(&Tensor::randn(0f32, 0.3, 4, &dev).unwrap()).unwrap();
        let rm = Var::zeros(4, candle_core::DType::F32, &dev).unwrap();
        let rv = Var::ones(4, candle_core::DType::F32, &dev).unwrap();
        let bn = BatchNorm2d::new(
            gamma.as_tensor().clone(),
            beta.as_tensor().clone(),
            rm.as_tensor().clone(),
            rv.as_tensor().clone(),
        );
        let weights = Tensor::randn(0f32, 1.0, x.shape(), &dev).unwrap();
        for relu in [false, true] {
            let ours = bn.forward(&x, true, relu).unwrap();
            let mut theirs = reference(&x, &gamma, &beta);
            if relu {
                theirs = theirs.relu().unwrap();
            }
            assert!(max_abs_diff(&ours, &theirs) < 1e-5);
            let ga = (&ours * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let gb = (&theirs * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for v in [&x, &gamma, &beta] {
                let d = max_abs_diff(ga.get(v).unwrap(), gb.get(v).unwrap());
                assert!(d < 1e-4, "gradient differs by {d} (relu {relu})");
            }
        }
        // Two training passes: the running statistics moved 10 % of the way to the batch's mean
        // and unbiased variance, twice.
        let flat = x
            .transpose(0, 1)
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((4, 90))
            .unwrap();
        let mean = flat.mean_keepdim(D::Minus1).unwrap().squeeze(1).unwrap();
        let var = flat
            .broadcast_sub(&flat.mean_keepdim(D::Minus1).unwrap())
            .unwrap()
            .sqr()
            .unwrap()
            .sum_keepdim(D::Minus1)
            .unwrap()
            .squeeze(1)
            .unwrap()
            / 89.0;
        let want_rm = (mean * 0.19).unwrap();
        let want_rv = ((var.unwrap() * 0.19).unwrap() + 0.81).unwrap();
        assert!(max_abs_diff(rm.as_tensor(), &want_rm) < 1e-5);
        assert!(max_abs_diff(rv.as_tensor(), &want_rv) < 1e-4);
        // Evaluation uses them.
        let eval = bn.forward(&x, false, false).unwrap();
        let (scale, shift) = bn.eval_affine().unwrap();
        let by_hand = x
            .broadcast_mul(&scale.reshape((1, 4, 1, 1)).unwrap())
            .unwrap()
            .broadcast_add(&shift.reshape((1, 4, 1, 1)).unwrap())
            .unwrap();
        assert!(max_abs_diff(&eval, &by_hand) < 1e-6);
    }

    #[test]
    fn frozen_statistics_cannot_train() {
        let dev = Device::Cpu;
        let ones = Tensor::ones(2, candle_core::DType::F32, &dev).unwrap();
        let zeros = Tensor::zeros(2, candle_core::DType::F32, &dev).unwrap();
        let bn = BatchNorm2d::new(ones.clone(), zeros.clone(), zeros, ones);
        let x = Tensor::randn(0f32, 1.0, (2, 2, 3, 3), &dev).unwrap();
        let err = bn.forward(&x, true, false).unwrap_err().to_string();
        assert!(err.contains("loaded frozen"), "{err}");
    }
}
