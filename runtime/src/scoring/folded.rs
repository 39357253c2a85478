//! CRM scoring with the exact inference folding of `xrvlm-method.md` §5.3.
//!
//! In eval mode every BN is affine and T' is constant, so (all folds computed in f64):
//!
//! ```text
//! ε_v:  P'[o,i] = out_scale[o]·W[o,i]·in_scale[i]
//!       b'[o]   = out_scale[o]·(Σ_i W[o,i]·in_shift[i] + b[o]) + out_shift[o]
//! fc1:  W̃1[j,r] = W1[j,r]·σ_r[r]           b̃1[j] = Σ_r W1[j,r]·μ_r[r] + b1[j]
//!       G[j,m,k] = Σ_{p,c} W̃1[j, p·M·C + m·C + c] · T'[p,c,k]
//! fc2:  W̃2[c,j] = W2[c,j]·σ_h[j]            b̃2[c] = Σ_j W2[c,j]·μ_h[j]
//! ```
//!
//! and scoring one image is `V' = ELU(P'·V̂ + b')`, `h = ELU(G·vec(V') + b̃1)`,
//! `logits = W̃2·h + b̃2`: M·D·D' + M·D'·H + H·C multiply-adds, independent of P.

use super::linalg::{dot, elu, normalize_scaled, text_relation_features};
use super::{batch_of, CrmDims, CrmWeights, Epsilon, Logits, PartsShapeError};

/// CRM in eval form with every BN and the relation step folded into three linear maps.
#[derive(Clone, Debug)]
pub struct FoldedCrm {
    dims: CrmDims,
    feature_scale: f32,
    /// P', (D', D).
    proj: Vec<f32>,
    /// b', (D').
    proj_bias: Vec<f32>,
    /// G, (H, M·D').
    relation: Vec<f32>,
    /// b̃1, (H).
    relation_bias: Vec<f32>,
    /// W̃2, (C, H).
    out: Vec<f32>,
    /// b̃2, (C).
    out_bias: Vec<f32>,
}

impl FoldedCrm {
    /// Folds `weights`; costs H·P·M·C·D' multiply-adds once.
    pub fn new(weights: &CrmWeights) -> Self {
        let dims = *weights.dims();
        let (proj, proj_bias) = fold_epsilon(weights.eps_v());
        let text = text_relation_features(
            weights.prompt_features(),
            dims.embed(),
            weights.feature_scale(),
            weights.eps_t(),
        );
        let (relation, relation_bias) = fold_relation(weights, &text);
        let (out, out_bias) = fold_output(weights);
        Self {
            dims,
            feature_scale: weights.feature_scale(),
            proj,
            proj_bias,
            relation,
            relation_bias,
            out,
            out_bias,
        }
    }

    /// The sizes.
    pub fn dims(&self) -> &CrmDims {
        &self.dims
    }

    /// Logits (N, C) of parts (N, M, D) given row-major.
    pub fn score(&self, parts: &[f32]) -> Result<Logits, PartsShapeError> {
        batch_of(parts, &self.dims)?;
        let data = parts
            .chunks_exact(self.dims.parts_len())
            .flat_map(|image| self.score_one(image))
            .collect();
        Ok(Logits::new(self.dims.classes(), data))
    }

    /// Logits of one image's parts (M, D).
    fn score_one(&self, parts: &[f32]) -> Vec<f32> {
        let mut visual = Vec::with_capacity(self.dims.parts() * self.dims.crm());
        for v in parts.chunks_exact(self.dims.embed()) {
            let v = normalize_scaled(v, self.feature_scale);
            let rows = self.proj.chunks_exact(self.dims.embed());
            visual.extend(
                rows.zip(&self.proj_bias)
                    .map(|(row, &b)| elu(dot(row, &v) + f64::from(b))),
            );
        }
        let hidden: Vec<f64> = self
            .relation
            .chunks_exact(visual.len())
            .zip(&self.relation_bias)
            .map(|(row, &b)| elu(dot(row, &visual) + f64::from(b)))
            .collect();
        self.out
            .chunks_exact(self.dims.hidden())
            .zip(&self.out_bias)
            .map(|(row, &b)| (dot(row, &hidden) + f64::from(b)) as f32)
            .collect()
    }
}

/// ε's two BNs folded into its projection: (P', b').
fn fold_epsilon(eps: &Epsilon) -> (Vec<f32>, Vec<f32>) {
    let d_in = eps.bn_in.scale.len();
    let mut weight = Vec::with_capacity(eps.proj_weight.len());
    let mut bias = Vec::with_capacity(eps.proj_bias.len());
    for (o, row) in eps.proj_weight.chunks_exact(d_in).enumerate() {
        let out_scale = f64::from(eps.bn_out.scale[o]);
        let mut shifted = f64::from(eps.proj_bias[o]);
        for (i, &w) in row.iter().enumerate() {
            weight.push((out_scale * f64::from(w) * f64::from(eps.bn_in.scale[i])) as f32);
            shifted += f64::from(w) * f64::from(eps.bn_in.shift[i]);
        }
        bias.push((out_scale * shifted + f64::from(eps.bn_out.shift[o])) as f32);
    }
    (weight, bias)
}

/// bn_r and fc1 contracted with T' (P·C rows of D'): (G, b̃1).
fn fold_relation(weights: &CrmWeights, text: &[f64]) -> (Vec<f32>, Vec<f32>) {
    let dims = weights.dims();
    let (m_count, c_count, k_count) = (dims.parts(), dims.classes(), dims.crm());
    let bn = weights.bn_r();
    let mut g = Vec::with_capacity(dims.hidden() * m_count * k_count);
    let mut bias = Vec::with_capacity(dims.hidden());
    for (j, w1_row) in weights
        .fc1_weight()
        .chunks_exact(dims.relations())
        .enumerate()
    {
        let mut g_row = vec![0f64; m_count * k_count];
        let mut b = f64::from(weights.fc1_bias()[j]);
        for p in 0..dims.prompts() {
            for m in 0..m_count {
                for c in 0..c_count {
                    let r = (p * m_count + m) * c_count + c;
                    let w = f64::from(w1_row[r]);
                    b += w * f64::from(bn.shift[r]);
                    let w = w * f64::from(bn.scale[r]);
                    let t = &text[(p * c_count + c) * k_count..][..k_count];
                    let g_part = &mut g_row[m * k_count..][..k_count];
                    g_part.iter_mut().zip(t).for_each(|(acc, &t)| *acc += w * t);
                }
            }
        }
        g.extend(g_row.into_iter().map(|v| v as f32));
        bias.push(b as f32);
    }
    (g, bias)
}

/// bn_h folded into fc2: (W̃2, b̃2).
fn fold_output(weights: &CrmWeights) -> (Vec<f32>, Vec<f32>) {
    let bn = weights.bn_h();
    let h = weights.dims().hidden();
    let mut weight = Vec::with_capacity(weights.fc2_weight().len());
    let mut bias = Vec::with_capacity(weights.dims().classes());
    for row in weights.fc2_weight().chunks_exact(h) {
        let mut b = 0f64;
        for (j, &w) in row.iter().enumerate() {
            weight.push((f64::from(w) * f64::from(bn.scale[j])) as f32);
            b += f64::from(w) * f64::from(bn.shift[j]);
        }
        bias.push(b as f32);
    }
    (weight, bias)
}
