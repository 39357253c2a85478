//! UnA, unified attention multi-part pooling (`xrvlm-method.md` §2.3).
//!
//! ```text
//! A0 = W_φ · BN(X)                  (B, M+1, N)   M+1 learned part queries against every token
//! A1 = softmax_N(τ · A0)
//! A  = ReLU(BN_{M+1}(A1))
//! Z  = A · F                        (B, M+1, D)   weighted sums of joint-space tokens
//! Z  = sign(Z) · sqrt(|Z| + 1e-6)
//! Z  = Z / max(‖vec Z_b‖₂, 1e-12)  one norm over the whole (M+1)·D vector of a sample
//! V  = Z[:, :M]                     the last map is background and dropped
//! ```
//! Reference: the authors' neck module (attention maps from block L−2 tokens, values from the
//! projected last-layer tokens).

use candle_core::{Result, Tensor, Var, D};

use super::batch_norm::BatchNorm;
use super::params::ParamStore;
use crate::clip::VisionStreams;

/// Added under the signed square root (§2.3).
const SQRT_EPS: f64 = 1e-6;
/// Floor of the joint L2 norm (§2.3).
const NORM_EPS: f64 = 1e-12;

/// The UnA module: BN(Cx), W_φ ((M+1)×Cx, no bias), BN(M+1).
#[derive(Clone)]
pub struct Una {
    bn_x: BatchNorm,
    queries: Var,
    bn_maps: BatchNorm,
    parts: usize,
    tau: f64,
}

impl Una {
    /// Creates UnA for `parts` = M visual parts over `width`-wide attention-source tokens.
    /// `W_φ` starts as PyTorch's `Conv1d` default, U(±1/√Cx).
    pub fn new(
        params: &mut ParamStore,
        buffers: &mut ParamStore,
        width: usize,
        parts: usize,
        tau: f64,
    ) -> Result<Self> {
        let maps = parts + 1;
        Ok(Self {
            bn_x: BatchNorm::new(params, buffers, "una.bn_x", width)?,
            queries: params.uniform("una.queries", (maps, width), 1.0 / (width as f32).sqrt())?,
            bn_maps: BatchNorm::new(params, buffers, "una.bn_maps", maps)?,
            parts,
            tau,
        })
    }

    /// Number of visual parts M.
    pub fn parts(&self) -> usize {
        self.parts
    }

    /// The part maps `A` `(B, M+1, N)` after the affine renormalisation and ReLU.
    pub fn maps(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let xb = self.bn_x.forward(x, train)?; // (B, N, Cx)
        let logits = xb.broadcast_matmul(&self.queries.as_tensor().t()?)?; // (B, N, M+1)
        let a1 = crate::clip::ops::softmax_last(&(logits.transpose(1, 2)? * self.tau)?)?;
        let a = self.bn_maps.forward(&a1.transpose(1, 2)?, train)?.relu()?;
        a.transpose(1, 2)?.contiguous()
    }

    /// Multi-part visual features `V` `(B, M, D)` from the two token streams.
    pub fn forward(&self, streams: &VisionStreams, train: bool) -> Result<Tensor> {
        let a = self.maps(&streams.x, train)?;
        let z = a.matmul(&streams.f.contiguous()?)?; // (B, M+1, D)
        let z = z.sign()?.mul(&(z.abs()? + SQRT_EPS)?.sqrt()?)?;
        let norm = z
            .sqr()?
            .sum_keepdim(D::Minus1)?
            .sum_keepdim(D::Minus2)?
            .sqrt()?
            .maximum(NORM_EPS)?;
        z.broadcast_div(&norm)?.narrow(1, 0, self.parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn shapes_and_joint_norm() {
        let dev = Device::Cpu;
        let mut p = ParamStore::new(3, &dev);
        let mut b = ParamStore::new(3, &dev);
        let una = Una::new(&mut p, &mut b, 8, 4, 1.0).unwrap();
        let streams = VisionStreams {
            x: Tensor::randn(0f32, 1.0, (2, 5, 8), &dev).unwrap(),
            f: Tensor::randn(0f32, 1.0, (2, 5, 6), &dev).unwrap(),
            pooled: Tensor::randn(0f32, 1.0, (2, 6), &dev).unwrap(),
        };
        let v = una.forward(&streams, true).unwrap();
        assert_eq!(v.dims(), &[2, 4, 6]);
        // The kept parts are a slice of a unit vector: their norm is at most 1.
        let n = v
            .sqr()
            .unwrap()
            .sum((1, 2))
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(n.iter().all(|&x| x <= 1.0 + 1e-5 && x > 0.0), "{n:?}");
        let a = una.maps(&streams.x, false).unwrap();
        assert_eq!(a.dims(), &[2, 5, 5]);
        assert!(
            a.flatten_all()
                .unwrap()
                .min(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                >= 0.0
        );
    }
}
