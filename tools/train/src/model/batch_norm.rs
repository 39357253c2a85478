//! Batch normalisation with PyTorch's train/eval behaviour (`nn.BatchNorm1d`, momentum 0.1,
//! eps 1e-5): in training, the batch's own mean and biased variance normalise, and the running
//! statistics move towards the batch's mean and *unbiased* variance; in evaluation, the running
//! statistics normalise. Channels are the last axis; statistics are taken over all other axes,
//! which is what `BatchNorm1d` does on `(B, C, L)` once C is moved last.

use candle_core::{Result, Tensor, Var};

use super::params::ParamStore;

/// PyTorch's default running-statistics momentum.
const MOMENTUM: f64 = 0.1;
/// PyTorch's default epsilon.
const EPS: f64 = 1e-5;

/// A batch-norm layer: affine parameters (trainable) plus running statistics (buffers).
#[derive(Clone)]
pub struct BatchNorm {
    weight: Var,
    bias: Var,
    running_mean: Var,
    running_var: Var,
    channels: usize,
}

impl BatchNorm {
    /// Creates `{name}.weight` = 1 and `{name}.bias` = 0 in `params`, and
    /// `{name}.running_mean` = 0, `{name}.running_var` = 1 in `buffers`.
    pub fn new(
        params: &mut ParamStore,
        buffers: &mut ParamStore,
        name: &str,
        channels: usize,
    ) -> Result<Self> {
        Ok(Self {
            weight: params.constant(&format!("{name}.weight"), channels, 1.0)?,
            bias: params.constant(&format!("{name}.bias"), channels, 0.0)?,
            running_mean: buffers.constant(&format!("{name}.running_mean"), channels, 0.0)?,
            running_var: buffers.constant(&format!("{name}.running_var"), channels, 1.0)?,
            channels,
        })
    }

    /// Normalises `x` (`(…, C)`); in training also updates the running statistics.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let c = *dims.last().unwrap_or(&0);
        if c != self.channels {
            candle_core::bail!(
                "batch norm over {} channels got shape {dims:?}",
                self.channels
            );
        }
        let rows = x.elem_count() / c.max(1);
        let flat = x.reshape((rows, c))?;
        let (mean, var) = if train {
            if rows < 2 {
                candle_core::bail!(
                    "batch norm in training needs more than 1 value per channel, got shape {dims:?}"
                );
            }
            let mean = flat.mean_keepdim(0)?;
            let var = flat.broadcast_sub(&mean)?.sqr()?.mean_keepdim(0)?;
            self.update_running(&mean, &var, rows)?;
            (mean, var)
        } else {
            (
                self.running_mean.as_tensor().unsqueeze(0)?,
                self.running_var.as_tensor().unsqueeze(0)?,
            )
        };
        let y = flat
            .broadcast_sub(&mean)?
            .broadcast_div(&(var + EPS)?.sqrt()?)?
            .broadcast_mul(self.weight.as_tensor())?
            .broadcast_add(self.bias.as_tensor())?;
        y.reshape(dims)
    }

    fn update_running(&self, mean: &Tensor, biased_var: &Tensor, rows: usize) -> Result<()> {
        let unbiased = (biased_var.detach() * (rows as f64 / (rows as f64 - 1.0)))?.squeeze(0)?;
        let mean = mean.detach().squeeze(0)?;
        let rm = ((self.running_mean.as_tensor() * (1.0 - MOMENTUM))? + (mean * MOMENTUM)?)?;
        let rv = ((self.running_var.as_tensor() * (1.0 - MOMENTUM))? + (unbiased * MOMENTUM)?)?;
        self.running_mean.set(&rm)?;
        self.running_var.set(&rv)
    }

    /// Eval-mode affine form `y = x · scale + shift`, for folding into neighbours on export.
    pub fn eval_affine(&self) -> Result<(Tensor, Tensor)> {
        let scale = self
            .weight
            .as_tensor()
            .div(&(self.running_var.as_tensor() + EPS)?.sqrt()?)?;
        let shift = (self.bias.as_tensor() - self.running_mean.as_tensor().mul(&scale)?)?;
        Ok((scale, shift))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn bn() -> (BatchNorm, ParamStore, ParamStore) {
        let mut p = ParamStore::new(0, &Device::Cpu);
        let mut b = ParamStore::new(0, &Device::Cpu);
        let bn = BatchNorm::new(&mut p, &mut b, "bn", 2).unwrap();
        (bn, p, b)
    }

    #[test]
    fn train_normalises_batch_and_updates_running_stats_like_pytorch() {
        let (bn, _, buffers) = bn();
        // Channel 0: 1,2,3,4 (mean 2.5, biased var 1.25, unbiased 5/3); channel 1: all 10.
        let x = Tensor::new(
            &[[1f32, 10.], [2., 10.], [3., 10.], [4., 10.]],
            &Device::Cpu,
        )
        .unwrap();
        let y = bn.forward(&x, true).unwrap().to_vec2::<f32>().unwrap();
        let want0 = (1.0 - 2.5) / (1.25f32 + 1e-5).sqrt();
        assert!((y[0][0] - want0).abs() < 1e-5);
        assert!(y[0][1].abs() < 1e-5);
        let rm = buffers
            .get("bn.running_mean")
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let rv = buffers
            .get("bn.running_var")
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!((rm[0] - 0.25).abs() < 1e-6 && (rm[1] - 1.0).abs() < 1e-6);
        assert!((rv[0] - (0.9 + 0.1 * 5.0 / 3.0)).abs() < 1e-6);
        assert!((rv[1] - 0.9).abs() < 1e-6);
    }

    #[test]
    fn eval_uses_running_stats_and_matches_affine_form() {
        let (bn, _, _) = bn();
        let x = Tensor::new(&[[1f32, 10.], [2., 10.], [3., 12.]], &Device::Cpu).unwrap();
        bn.forward(&x, true).unwrap();
        let y = bn.forward(&x, false).unwrap();
        let (scale, shift) = bn.eval_affine().unwrap();
        let y2 = x
            .broadcast_mul(&scale)
            .unwrap()
            .broadcast_add(&shift)
            .unwrap();
        let d = (y - y2)
            .unwrap()
            .abs()
            .unwrap()
            .max_keepdim(0)
            .unwrap()
            .max(1)
            .unwrap();
        assert!(d.to_vec1::<f32>().unwrap()[0] < 1e-5);
    }
}
