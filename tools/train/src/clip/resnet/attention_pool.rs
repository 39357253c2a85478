//! CLIP's `AttentionPool2d`: the last map's tokens plus their mean, with a learned position
//! embedding, attended to by the mean token alone (multi-head, q/k/v/c projections with biases).
//!
//! Reference: OpenAI CLIP `clip/model.py`, `AttentionPool2d.forward` (query = `x[:1]`, keys and
//! values = all `HW + 1` tokens, `c_proj` as the output projection).
//!
//! [`AttentionPool::values`] is XR-VLM's value path for ResNets (`xrvlm-method.md` §2.2, the
//! MaskCLIP trick): every spatial token through `v_proj` and `c_proj` without attention, the
//! mean token dropped.

use candle_core::{Result, Tensor, D};

use crate::clip::layers::Linear;
use crate::clip::ops::softmax_last;
use crate::clip::weights::Weights;
use crate::clip::ClipError;

/// The attention pool of a ModifiedResNet.
#[derive(Clone)]
pub struct AttentionPool {
    position: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    c: Linear,
    heads: usize,
}

impl AttentionPool {
    /// Loads `{prefix}.positional_embedding` `(tokens + 1, width)` and `{prefix}.{q,k,v,c}_proj`.
    pub fn load(
        w: &Weights,
        prefix: &str,
        tokens: usize,
        width: usize,
        heads: usize,
        out: usize,
    ) -> std::result::Result<Self, ClipError> {
        Ok(Self {
            position: w.get(
                &format!("{prefix}.positional_embedding"),
                &[tokens + 1, width],
            )?,
            q: Linear::load(w, &format!("{prefix}.q_proj"), width, width, true)?,
            k: Linear::load(w, &format!("{prefix}.k_proj"), width, width, true)?,
            v: Linear::load(w, &format!("{prefix}.v_proj"), width, width, true)?,
            c: Linear::load(w, &format!("{prefix}.c_proj"), width, out, true)?,
            heads,
        })
    }

    /// `(B, C, H, W)` → mean token then the `H·W` tokens, position added: `(B, HW + 1, C)`.
    fn tokens(&self, map: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = map.dims4()?;
        let spatial = map.reshape((b, c, h * w))?.transpose(1, 2)?;
        let mean = spatial.mean_keepdim(1)?;
        Tensor::cat(&[&mean, &spatial], 1)?.broadcast_add(&self.position)
    }

    /// The pooled image feature `(B, out)`.
    pub fn forward(&self, map: &Tensor) -> Result<Tensor> {
        self.pool_tokens(&self.tokens(map)?)
    }

    /// [`AttentionPool::values`] and [`AttentionPool::forward`] of one map, its tokens built once.
    pub fn values_and_pooled(&self, map: &Tensor) -> Result<(Tensor, Tensor)> {
        let x = self.tokens(map)?;
        Ok((self.value_tokens(&x)?, self.pool_tokens(&x)?))
    }

    fn pool_tokens(&self, x: &Tensor) -> Result<Tensor> {
        let (b, n, c) = x.dims3()?;
        let hd = c / self.heads;
        let split = |t: Tensor, len: usize| {
            t.reshape((b, len, self.heads, hd))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = (self.q.forward(&x.narrow(1, 0, 1)?)? * (hd as f64).powf(-0.5))?;
        let q = split(q, 1)?;
        let k = split(self.k.forward(x)?, n)?;
        let v = split(self.v.forward(x)?, n)?;
        let attn = softmax_last(&q.matmul(&k.transpose(D::Minus2, D::Minus1)?.contiguous()?)?)?;
        let pooled = attn.matmul(&v)?.transpose(1, 2)?.reshape((b, c))?;
        self.c.forward(&pooled)
    }

    /// [`AttentionPool::values`] as one layer on the map's tokens `X` `(B, HW, C)`:
    /// `X · Wᵀ + B` with `W = c·v` `(out, C)` and `B` `(HW, out)` the position embedding's and
    /// both biases' share. Exact up to f32 rounding; what the exported graph computes.
    pub fn folded_values(&self) -> Result<(Tensor, Tensor)> {
        let weight = self.c.weight().matmul(self.v.weight())?;
        let rows = self.position.dim(0)?;
        let spatial = self.position.narrow(0, 1, rows - 1)?;
        let bias = self.c.forward(&self.v.forward(&spatial)?)?;
        Ok((weight, bias))
    }

    /// Every spatial token through `v_proj` and `c_proj`, no attention: `(B, HW, out)`.
    pub fn values(&self, map: &Tensor) -> Result<Tensor> {
        self.value_tokens(&self.tokens(map)?)
    }

    fn value_tokens(&self, x: &Tensor) -> Result<Tensor> {
        let n = x.dim(1)?;
        let spatial = x.narrow(1, 1, n - 1)?;
        self.c.forward(&self.v.forward(&spatial)?)
    }
}
