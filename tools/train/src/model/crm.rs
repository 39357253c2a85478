//! CRM, cross-relationship modelling (`xrvlm-method.md` §5.1): a classifier over the relations of
//! every image part with every prompt of every class.
//!
//! ```text
//! V̂[b,m] = s · V[b,m] / max(‖V[b,m]‖, 1e-6)        T̂[p,c] likewise        s = 64
//! ε_v: V' = ELU(BN_{D'}(W_v · BN_D(V̂) + b_v))         ε_t: T' = ELU(BN_{D'}(W_t · BN_D(T̂) + b_t))
//! R[b,p,m,c] = ⟨V'[b,m], T'[p,c]⟩   flattened in (p, m, c) order → (B, P·M·C)
//! ϑ: ŷ = W₂ · BN_H(ELU(W₁ · BN_{PMC}(r) + b₁))        no bias on W₂
//! ```
//! ε_v's batch norms take statistics over batch × parts, ε_t's over prompts × classes.
//! Reference: the authors' `cprm_plain` classifier (`fc1`, `fc2`, `prt_fc`, `x_sf`).

use candle_core::{Result, Tensor};

use super::batch_norm::BatchNorm;
use super::linear::TrainLinear;
use super::params::ParamStore;
use crate::clip::ops::elu;

/// Floor of each part's / prompt's norm before scaling (§5.1).
const PART_NORM_EPS: f64 = 1e-6;

/// The sizes of a CRM head.
#[derive(Clone, Copy, Debug)]
pub struct CrmShape {
    /// Visual parts M.
    pub parts: usize,
    /// Prompts per class P.
    pub prompts: usize,
    /// Classes C.
    pub classes: usize,
    /// Joint embedding D.
    pub dim: usize,
    /// CRM embedding D' (D/2 in the reference).
    pub crm_dim: usize,
    /// Hidden width H of ϑ.
    pub hidden: usize,
    /// Fixed feature scale s (64).
    pub scale: f64,
}

/// One side's embedding ε: BN_D → 1×1 conv (D→D') → BN_{D'} → ELU.
#[derive(Clone)]
pub struct Embedding {
    bn_in: BatchNorm,
    proj: TrainLinear,
    bn_out: BatchNorm,
}

impl Embedding {
    fn new(
        p: &mut ParamStore,
        b: &mut ParamStore,
        name: &str,
        dim: usize,
        out: usize,
    ) -> Result<Self> {
        Ok(Self {
            bn_in: BatchNorm::new(p, b, &format!("{name}.bn_in"), dim)?,
            proj: TrainLinear::new(p, &format!("{name}.proj"), dim, out, true)?,
            bn_out: BatchNorm::new(p, b, &format!("{name}.bn_out"), out)?,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.proj.forward(&self.bn_in.forward(x, train)?)?;
        elu(&self.bn_out.forward(&h, train)?)
    }

    /// The eval-mode tensors under `{name}.*`: `bn_in.{scale,shift}`, `proj.{weight,bias}`,
    /// `bn_out.{scale,shift}`.
    fn eval_tensors(&self, name: &str, out: &mut Vec<(String, Tensor)>) -> Result<()> {
        push_affine(out, &format!("{name}.bn_in"), &self.bn_in)?;
        push_linear(out, &format!("{name}.proj"), &self.proj);
        push_affine(out, &format!("{name}.bn_out"), &self.bn_out)
    }
}

/// Appends a batch norm's eval-mode affine as `{name}.scale` and `{name}.shift`.
fn push_affine(out: &mut Vec<(String, Tensor)>, name: &str, bn: &BatchNorm) -> Result<()> {
    let (scale, shift) = bn.eval_affine()?;
    out.push((format!("{name}.scale"), scale));
    out.push((format!("{name}.shift"), shift));
    Ok(())
}

/// Appends a dense layer as `{name}.weight` and, if it has one, `{name}.bias`.
fn push_linear(out: &mut Vec<(String, Tensor)>, name: &str, linear: &TrainLinear) {
    out.push((format!("{name}.weight"), linear.weight().clone()));
    if let Some(b) = linear.bias() {
        out.push((format!("{name}.bias"), b.clone()));
    }
}

/// The CRM head.
#[derive(Clone)]
pub struct Crm {
    shape: CrmShape,
    eps_v: Embedding,
    eps_t: Embedding,
    bn_r: BatchNorm,
    fc1: TrainLinear,
    bn_h: BatchNorm,
    fc2: TrainLinear,
}

/// Each row of the last axis scaled to norm `scale` (floor `1e-6` on the norm).
pub fn scaled_unit(x: &Tensor, scale: f64) -> Result<Tensor> {
    let norm = x
        .sqr()?
        .sum_keepdim(candle_core::D::Minus1)?
        .sqrt()?
        .maximum(PART_NORM_EPS)?;
    x.broadcast_div(&norm)? * scale
}

impl Crm {
    /// Creates the CRM parameters under `crm.*`.
    pub fn new(p: &mut ParamStore, b: &mut ParamStore, s: CrmShape) -> Result<Self> {
        let pmc = s.prompts * s.parts * s.classes;
        Ok(Self {
            shape: s,
            eps_v: Embedding::new(p, b, "crm.eps_v", s.dim, s.crm_dim)?,
            eps_t: Embedding::new(p, b, "crm.eps_t", s.dim, s.crm_dim)?,
            bn_r: BatchNorm::new(p, b, "crm.bn_r", pmc)?,
            fc1: TrainLinear::new(p, "crm.fc1", pmc, s.hidden, true)?,
            bn_h: BatchNorm::new(p, b, "crm.bn_h", s.hidden)?,
            fc2: TrainLinear::new(p, "crm.fc2", s.hidden, s.classes, false)?,
        })
    }

    /// The head's sizes.
    pub fn shape(&self) -> CrmShape {
        self.shape
    }

    /// The text side `T' = ε_t(T̂)` `(P, C, D')`; constant in eval mode, so it can be cached.
    pub fn text_embedding(&self, t: &Tensor, train: bool) -> Result<Tensor> {
        self.eps_t
            .forward(&scaled_unit(t, self.shape.scale)?, train)
    }

    /// The image side `V' = ε_v(V̂)` `(B, M, D')`.
    pub fn part_embedding(&self, v: &Tensor, train: bool) -> Result<Tensor> {
        self.eps_v
            .forward(&scaled_unit(v, self.shape.scale)?, train)
    }

    /// The relation vector `r` `(B, P·M·C)` in (p, m, c) order.
    pub fn relations(&self, v_emb: &Tensor, t_emb: &Tensor) -> Result<Tensor> {
        let CrmShape {
            parts: m,
            prompts: p,
            classes: c,
            ..
        } = self.shape;
        let b = v_emb.dim(0)?;
        let k = v_emb.dim(2)?;
        let t_flat = t_emb.reshape((p * c, k))?;
        v_emb
            .broadcast_matmul(&t_flat.t()?)? // (B, M, P·C)
            .reshape((b, m, p, c))?
            .permute((0, 2, 1, 3))?
            .contiguous()?
            .reshape((b, p * m * c))
    }

    /// ϑ: logits `(B, C)` from relations.
    pub fn classify(&self, r: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.fc1.forward(&self.bn_r.forward(r, train)?)?;
        let h = self.bn_h.forward(&elu(&h)?, train)?;
        self.fc2.forward(&h)
    }

    /// The head in eval form, as the bundle stores it (`models/BUNDLE.md`): every batch norm as
    /// its running-statistics affine, under `crm.eps_v.*`, `crm.eps_t.*`, `crm.bn_r.*`,
    /// `crm.fc1.*`, `crm.bn_h.*` and `crm.fc2.weight`.
    pub fn eval_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        self.eps_v.eval_tensors("crm.eps_v", &mut out)?;
        self.eps_t.eval_tensors("crm.eps_t", &mut out)?;
        push_affine(&mut out, "crm.bn_r", &self.bn_r)?;
        push_linear(&mut out, "crm.fc1", &self.fc1);
        push_affine(&mut out, "crm.bn_h", &self.bn_h)?;
        push_linear(&mut out, "crm.fc2", &self.fc2);
        Ok(out)
    }

    /// Logits `(B, C)` from parts `V` `(B, M, D)` and the cached text side `T'`.
    pub fn forward(&self, v: &Tensor, t_emb: &Tensor, train: bool) -> Result<Tensor> {
        let v_emb = self.part_embedding(v, train)?;
        self.classify(&self.relations(&v_emb, t_emb)?, train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn relations_follow_pmc_order() {
        let dev = Device::Cpu;
        let mut p = ParamStore::new(0, &dev);
        let mut b = ParamStore::new(0, &dev);
        let s = CrmShape {
            parts: 2,
            prompts: 3,
            classes: 4,
            dim: 6,
            crm_dim: 5,
            hidden: 7,
            scale: 64.0,
        };
        let crm = Crm::new(&mut p, &mut b, s).unwrap();
        let v = Tensor::randn(0f32, 1.0, (2, 2, 5), &dev).unwrap();
        let t = Tensor::randn(0f32, 1.0, (3, 4, 5), &dev).unwrap();
        let r = crm.relations(&v, &t).unwrap().to_vec2::<f32>().unwrap();
        let vv = v.to_vec3::<f32>().unwrap();
        let tt = t.to_vec3::<f32>().unwrap();
        for bi in 0..2 {
            for pi in 0..3 {
                for mi in 0..2 {
                    for ci in 0..4 {
                        let want: f32 = (0..5).map(|k| vv[bi][mi][k] * tt[pi][ci][k]).sum();
                        let got = r[bi][pi * 2 * 4 + mi * 4 + ci];
                        assert!((want - got).abs() < 1e-4, "{want} vs {got}");
                    }
                }
            }
        }
        let t_emb = crm
            .text_embedding(&Tensor::randn(0f32, 1.0, (3, 4, 6), &dev).unwrap(), true)
            .unwrap();
        let logits = crm
            .forward(
                &Tensor::randn(0f32, 1.0, (2, 2, 6), &dev).unwrap(),
                &t_emb,
                true,
            )
            .unwrap();
        assert_eq!(logits.dims(), &[2, 4]);
    }

    #[test]
    fn scaled_unit_has_norm_scale() {
        let x = Tensor::new(&[[3f32, 4.0], [0.0, 0.0]], &Device::Cpu).unwrap();
        let y = scaled_unit(&x, 64.0).unwrap().to_vec2::<f32>().unwrap();
        assert!((y[0][0] - 38.4).abs() < 1e-4 && (y[0][1] - 51.2).abs() < 1e-4);
        assert_eq!(y[1], vec![0.0, 0.0]);
    }
}
