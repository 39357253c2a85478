//! CRM scoring written as the formula reads (`xrvlm-method.md` §5.1): the reference form.

use super::linalg::text_relation_features;
use super::linalg::{apply_affine, dot, elu, epsilon, matvec, normalize_scaled};
use super::{batch_of, CrmDims, CrmWeights, Logits, PartsShapeError};

/// CRM in eval form, step by step, with `T' = ε_t(T̂)` computed once at construction.
#[derive(Clone, Debug)]
pub struct UnfoldedCrm {
    weights: CrmWeights,
    /// T', (P, C, D') row-major.
    text: Vec<f32>,
}

impl UnfoldedCrm {
    /// Precomputes T' from the cached prompt features.
    pub fn new(weights: CrmWeights) -> Self {
        let d = weights.dims();
        let text = text_relation_features(
            weights.prompt_features(),
            d.embed(),
            weights.feature_scale(),
            weights.eps_t(),
        );
        let text = text.into_iter().map(|v| v as f32).collect();
        Self { weights, text }
    }

    /// The sizes.
    pub fn dims(&self) -> &CrmDims {
        self.weights.dims()
    }

    /// T' = ε_t(T̂), (P, C, D') row-major.
    pub fn text_features(&self) -> &[f32] {
        &self.text
    }

    /// Logits (N, C) of parts (N, M, D) given row-major.
    pub fn score(&self, parts: &[f32]) -> Result<Logits, PartsShapeError> {
        let dims = *self.dims();
        batch_of(parts, &dims)?;
        let data = parts
            .chunks_exact(dims.parts_len())
            .flat_map(|image| self.score_one(image))
            .collect();
        Ok(Logits::new(dims.classes(), data))
    }

    /// Logits of one image's parts (M, D).
    fn score_one(&self, parts: &[f32]) -> Vec<f32> {
        let w = &self.weights;
        let dims = w.dims();
        let visual: Vec<Vec<f64>> = parts
            .chunks_exact(dims.embed())
            .map(|v| epsilon(w.eps_v(), &normalize_scaled(v, w.feature_scale())))
            .collect();
        let mut relations = self.relations(&visual);
        apply_affine(&mut relations, w.bn_r());
        let mut hidden = matvec(w.fc1_weight(), &relations);
        for (h, &b) in hidden.iter_mut().zip(w.fc1_bias()) {
            *h = elu(*h + f64::from(b));
        }
        apply_affine(&mut hidden, w.bn_h());
        w.fc2_weight()
            .chunks_exact(dims.hidden())
            .map(|row| dot(row, &hidden) as f32)
            .collect()
    }

    /// R in (p, m, c) order from V' (M vectors of D').
    fn relations(&self, visual: &[Vec<f64>]) -> Vec<f64> {
        let dims = self.dims();
        let mut r = Vec::with_capacity(dims.relations());
        for p in 0..dims.prompts() {
            for v in visual {
                for c in 0..dims.classes() {
                    let start = (p * dims.classes() + c) * dims.crm();
                    r.push(dot(&self.text[start..start + dims.crm()], v));
                }
            }
        }
        r
    }
}
