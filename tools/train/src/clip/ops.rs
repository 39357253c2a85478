//! Tensor ops written only with primitives that have a backward pass in candle 0.11.
//!
//! candle's fused `LayerNorm` and `softmax_last_dim` have no backward pass: gradients silently
//! stop there. MPP's context vectors learn *through* the frozen text tower, so every op on that
//! path must be differentiable; these are. `tests::*_has_gradient` prove it.

use candle_core::{DType, Result, Tensor, D};

use super::config::Activation;

/// LayerNorm over the last axis, `(x − mean) / sqrt(var + eps) · weight + bias`, with biased
/// variance as PyTorch computes it. Half-precision inputs are normalised in f32, as CLIP does.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let in_dtype = x.dtype();
    let xf = upcast(x)?;
    let mean = xf.mean_keepdim(D::Minus1)?;
    let centred = xf.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed
        .to_dtype(in_dtype)?
        .broadcast_mul(weight)?
        .broadcast_add(bias)
}

/// Softmax over the last axis. The row maximum is subtracted for stability and detached: softmax
/// is shift-invariant, so the gradient is exactly the same and the max needs no backward pass.
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let in_dtype = x.dtype();
    let xf = upcast(x)?;
    let max = xf.max_keepdim(D::Minus1)?.detach();
    let e = xf.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?
        .to_dtype(in_dtype)
}

/// The logistic sigmoid, `1 / (1 + e^{−x})`.
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    (x.neg()?.exp()? + 1.0)?.recip()
}

/// OpenAI CLIP's activation, `x · sigmoid(1.702 x)`.
pub fn quick_gelu(x: &Tensor) -> Result<Tensor> {
    x.mul(&sigmoid(&(x * 1.702)?)?)
}

/// Applies a tower's configured activation.
pub fn activation(x: &Tensor, act: Activation) -> Result<Tensor> {
    match act {
        Activation::QuickGelu => quick_gelu(x),
        Activation::Gelu => x.gelu_erf(),
    }
}

/// ELU with α = 1: `x` where `x > 0`, else `e^x − 1`.
pub fn elu(x: &Tensor) -> Result<Tensor> {
    let pos = x.relu()?;
    let neg = (x.minimum(0.0)?.exp()? - 1.0)?;
    pos + neg
}

fn upcast(x: &Tensor) -> Result<Tensor> {
    match x.dtype() {
        DType::F16 | DType::BF16 => x.to_dtype(DType::F32),
        _ => Ok(x.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn var(shape: (usize, usize)) -> Var {
        let dev = Device::Cpu;
        Var::from_tensor(&Tensor::randn(0f32, 1.0, shape, &dev).unwrap()).unwrap()
    }

    fn max_abs(t: &Tensor) -> f32 {
        t.abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    fn assert_has_gradient(x: &Var, y: &Tensor) {
        // A random projection of the output, so the gradient is not trivially zero (the sum of a
        // softmax row or of a layer-normed row is constant).
        let w = Tensor::randn(0f32, 1.0, y.shape(), y.device()).unwrap();
        let loss = y.mul(&w).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let g = grads
            .get(x.as_tensor())
            .expect("gradient reaches the input");
        let m = max_abs(g);
        assert!(m.is_finite() && m > 0.0, "gradient max {m}");
    }

    #[test]
    fn layer_norm_matches_definition_and_has_gradient() {
        let x = var((3, 8));
        let w = Tensor::randn(0f32, 1.0, 8, &Device::Cpu).unwrap();
        let b = Tensor::randn(0f32, 1.0, 8, &Device::Cpu).unwrap();
        let y = layer_norm(x.as_tensor(), &w, &b, 1e-5).unwrap();
        let fused = candle_nn::ops::layer_norm(x.as_tensor(), &w, &b, 1e-5).unwrap();
        assert!(max_abs(&(&y - &fused).unwrap()) < 1e-5);
        assert_has_gradient(&x, &y);
    }

    #[test]
    fn softmax_matches_fused_and_has_gradient() {
        let x = var((4, 7));
        let y = softmax_last(x.as_tensor()).unwrap();
        let fused = candle_nn::ops::softmax_last_dim(x.as_tensor()).unwrap();
        assert!(max_abs(&(&y - &fused).unwrap()) < 1e-6);
        assert_has_gradient(&x, &y);
    }

    #[test]
    fn activations_have_gradient() {
        for act in [Activation::QuickGelu, Activation::Gelu] {
            let x = var((2, 5));
            let y = activation(x.as_tensor(), act).unwrap();
            assert_has_gradient(&x, &y);
        }
        let x = var((2, 5));
        let y = elu(x.as_tensor()).unwrap();
        assert_has_gradient(&x, &y);
    }

    #[test]
    fn quick_gelu_and_elu_values() {
        let x = Tensor::new(&[-2f32, 0.0, 1.5], &Device::Cpu).unwrap();
        let q = quick_gelu(&x).unwrap().to_vec1::<f32>().unwrap();
        for (q, v) in q.iter().zip([-2f32, 0.0, 1.5]) {
            let want = v / (1.0 + (-1.702 * v).exp());
            assert!((q - want).abs() < 1e-6);
        }
        let e = elu(&x).unwrap().to_vec1::<f32>().unwrap();
        assert!((e[0] - ((-2f32).exp() - 1.0)).abs() < 1e-6);
        assert_eq!(e[1], 0.0);
        assert!((e[2] - 1.5).abs() < 1e-6);
    }
}
