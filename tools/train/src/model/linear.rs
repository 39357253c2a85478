//! A trainable dense layer with PyTorch's default initialisation (`nn.Linear`, and `nn.Conv1d`
//! with kernel 1, which is the same map): weight and bias drawn from U(±1/√fan_in).

use candle_core::{Result, Tensor, Var};

use super::params::ParamStore;

/// `y = x Wᵀ + b` over the last axis, weight `(out, in)`.
#[derive(Clone)]
pub struct TrainLinear {
    weight: Var,
    bias: Option<Var>,
}

impl TrainLinear {
    /// Creates `{name}.weight` and, if `bias`, `{name}.bias`.
    pub fn new(
        params: &mut ParamStore,
        name: &str,
        input: usize,
        output: usize,
        bias: bool,
    ) -> Result<Self> {
        let bound = 1.0 / (input as f32).sqrt();
        let weight = params.uniform(&format!("{name}.weight"), (output, input), bound)?;
        let bias = if bias {
            Some(params.uniform(&format!("{name}.bias"), output, bound)?)
        } else {
            None
        };
        Ok(Self { weight, bias })
    }

    /// Applies the layer.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.broadcast_matmul(&self.weight.as_tensor().t()?)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b.as_tensor()),
            None => Ok(y),
        }
    }

    /// The weight `(out, in)`.
    pub fn weight(&self) -> &Tensor {
        self.weight.as_tensor()
    }

    /// The bias, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref().map(Var::as_tensor)
    }
}
