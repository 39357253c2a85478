//! CRM scoring: the cross-relation head of XR-VLM in eval form (`xrvlm-method.md` §5.1).
//!
//! The image model produces parts `V` (N, M, D). Scoring turns them into class logits
//! (N, C) against the cached multi-part prompt features `T` (P, C, D):
//!
//! ```text
//! V̂[b,m] = s·V[b,m] / max(‖V[b,m]‖, 1e-6)           T̂[p,c] likewise
//! ε(x)    = ELU(bn_out(proj(bn_in(x))))              ELU with α = 1, BN as affine scale/shift
//! R[b, p·M·C + m·C + c] = ⟨ε_v(V̂[b,m]), ε_t(T̂[p,c])⟩
//! logits  = fc2 · bn_h(ELU(fc1 · bn_r(R) + b1))
//! ```
//!
//! Two implementations of the same function:
//! - [`UnfoldedCrm`] follows the formula step by step; `T' = ε_t(T̂)` is computed once when
//!   it is built. It is the reference.
//! - [`FoldedCrm`] uses the exact algebraic folding of §5.3 (BN layers folded into the
//!   neighbouring linear maps, `fc1 · bn_r` contracted with `T'` into one matrix G), so its
//!   cost no longer grows with P·M·C. It is what the runtime scores with; a test holds it to
//!   the unfolded form within fp32 rounding.
//!
//! [`probs`] has softmax; the order of classes is [`crate::ranking`]'s.
//!
//! The weights are [`CrmWeights`]: the tensors of `prompts.safetensors`, each checked for its
//! shape when the value is built, so every method can index without checks.

mod folded;
mod linalg;
pub mod probs;
mod unfolded;

pub use folded::FoldedCrm;
pub use unfolded::UnfoldedCrm;

/// Smallest norm a feature is divided by (the `1e-6` of the reference `F.normalize`).
pub const NORM_EPS: f32 = 1e-6;

/// Sizes of the CRM head. Every size is at least 1 (checked by [`CrmDims::new`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrmDims {
    classes: usize,
    parts: usize,
    prompts: usize,
    embed: usize,
    crm: usize,
    hidden: usize,
}

/// A CRM size that is zero.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("CRM size {name} must be at least 1")]
pub struct ZeroDimError {
    /// Which size (`classes`, `parts`, `prompts`, `embed_dim`, `crm_dim`, `hidden`).
    pub name: &'static str,
}

impl CrmDims {
    /// Sizes C, M, P, D, D' and H, in that order.
    pub fn new(
        classes: usize,
        parts: usize,
        prompts: usize,
        embed: usize,
        crm: usize,
        hidden: usize,
    ) -> Result<Self, ZeroDimError> {
        let named = [
            ("classes", classes),
            ("parts", parts),
            ("prompts", prompts),
            ("embed_dim", embed),
            ("crm_dim", crm),
            ("hidden", hidden),
        ];
        if let Some(&(name, _)) = named.iter().find(|(_, v)| *v == 0) {
            return Err(ZeroDimError { name });
        }
        Ok(Self {
            classes,
            parts,
            prompts,
            embed,
            crm,
            hidden,
        })
    }

    /// C, the number of classes (logits per image).
    pub fn classes(&self) -> usize {
        self.classes
    }
    /// M, the number of image parts.
    pub fn parts(&self) -> usize {
        self.parts
    }
    /// P, the number of prompts per class.
    pub fn prompts(&self) -> usize {
        self.prompts
    }
    /// D, the width of parts and prompt features.
    pub fn embed(&self) -> usize {
        self.embed
    }
    /// D', the width after ε.
    pub fn crm(&self) -> usize {
        self.crm
    }
    /// H, the hidden width of the relation MLP.
    pub fn hidden(&self) -> usize {
        self.hidden
    }
    /// P·M·C, the length of the relation vector R.
    pub fn relations(&self) -> usize {
        self.prompts * self.parts * self.classes
    }
    /// M·D, the floats of one image's parts.
    pub fn parts_len(&self) -> usize {
        self.parts * self.embed
    }
}

/// An eval-mode batch norm as a per-channel affine map `y = x·scale + shift`.
#[derive(Clone, Debug, PartialEq)]
pub struct Affine {
    /// γ / √(var + eps).
    pub scale: Vec<f32>,
    /// β − mean·scale.
    pub shift: Vec<f32>,
}

/// ε = ELU ∘ bn_out ∘ proj ∘ bn_in, mapping D to D'.
#[derive(Clone, Debug, PartialEq)]
pub struct Epsilon {
    /// BN over the D inputs.
    pub bn_in: Affine,
    /// Projection weight, (D', D) row-major.
    pub proj_weight: Vec<f32>,
    /// Projection bias, (D').
    pub proj_bias: Vec<f32>,
    /// BN over the D' outputs.
    pub bn_out: Affine,
}

/// The CRM weights in eval form, every tensor of the shape [`CrmWeights::tensor_specs`] gives.
#[derive(Clone, Debug, PartialEq)]
pub struct CrmWeights {
    dims: CrmDims,
    feature_scale: f32,
    prompt_features: Vec<f32>,
    eps_v: Epsilon,
    eps_t: Epsilon,
    bn_r: Affine,
    fc1_weight: Vec<f32>,
    fc1_bias: Vec<f32>,
    bn_h: Affine,
    fc2_weight: Vec<f32>,
}

/// Name of the cached prompt features tensor, (P, C, D).
pub const PROMPT_FEATURES: &str = "prompt_features";

impl CrmWeights {
    /// Every tensor name of the eval form with its shape, in a fixed order.
    pub fn tensor_specs(dims: &CrmDims) -> Vec<(String, Vec<usize>)> {
        let (d, d2, h, r) = (dims.embed, dims.crm, dims.hidden, dims.relations());
        let mut specs = vec![(
            PROMPT_FEATURES.to_string(),
            vec![dims.prompts, dims.classes, d],
        )];
        for side in ["eps_v", "eps_t"] {
            specs.push((format!("crm.{side}.bn_in.scale"), vec![d]));
            specs.push((format!("crm.{side}.bn_in.shift"), vec![d]));
            specs.push((format!("crm.{side}.proj.weight"), vec![d2, d]));
            specs.push((format!("crm.{side}.proj.bias"), vec![d2]));
            specs.push((format!("crm.{side}.bn_out.scale"), vec![d2]));
            specs.push((format!("crm.{side}.bn_out.shift"), vec![d2]));
        }
        specs.extend([
            ("crm.bn_r.scale".to_string(), vec![r]),
            ("crm.bn_r.shift".to_string(), vec![r]),
            ("crm.fc1.weight".to_string(), vec![h, r]),
            ("crm.fc1.bias".to_string(), vec![h]),
            ("crm.bn_h.scale".to_string(), vec![h]),
            ("crm.bn_h.shift".to_string(), vec![h]),
            ("crm.fc2.weight".to_string(), vec![dims.classes, h]),
        ]);
        specs
    }

    /// Builds the weights by asking `fetch(name, shape)` for each tensor of
    /// [`Self::tensor_specs`]. `fetch` returns the row-major data of that shape or an error,
    /// which is passed through; data of another length is reported as [`WeightsError`]
    /// converted into `E`.
    pub fn from_named<E: From<WeightsError>>(
        dims: CrmDims,
        feature_scale: f32,
        mut fetch: impl FnMut(&str, &[usize]) -> Result<Vec<f32>, E>,
    ) -> Result<Self, E> {
        if !(feature_scale.is_finite() && feature_scale > 0.0) {
            return Err(WeightsError::FeatureScale(feature_scale).into());
        }
        let mut get = |name: &str, shape: &[usize]| -> Result<Vec<f32>, E> {
            let data = fetch(name, shape)?;
            let expected: usize = shape.iter().product();
            if data.len() != expected {
                return Err(WeightsError::Length {
                    name: name.to_string(),
                    expected,
                    got: data.len(),
                }
                .into());
            }
            Ok(data)
        };
        let specs = Self::tensor_specs(&dims);
        let mut tensors = Vec::with_capacity(specs.len());
        for (name, shape) in &specs {
            tensors.push(get(name, shape)?);
        }
        let mut it = tensors.into_iter();
        let mut next = || it.next().expect("one tensor per spec");
        let prompt_features = next();
        let mut epsilon = || Epsilon {
            bn_in: Affine {
                scale: next(),
                shift: next(),
            },
            proj_weight: next(),
            proj_bias: next(),
            bn_out: Affine {
                scale: next(),
                shift: next(),
            },
        };
        let eps_v = epsilon();
        let eps_t = epsilon();
        Ok(Self {
            dims,
            feature_scale,
            prompt_features,
            eps_v,
            eps_t,
            bn_r: Affine {
                scale: next(),
                shift: next(),
            },
            fc1_weight: next(),
            fc1_bias: next(),
            bn_h: Affine {
                scale: next(),
                shift: next(),
            },
            fc2_weight: next(),
        })
    }

    /// The sizes.
    pub fn dims(&self) -> &CrmDims {
        &self.dims
    }
    /// s, the scale of normalised features (`head.feature_scale`).
    pub fn feature_scale(&self) -> f32 {
        self.feature_scale
    }
    /// T, (P, C, D) row-major.
    pub fn prompt_features(&self) -> &[f32] {
        &self.prompt_features
    }
    /// ε on the image side.
    pub fn eps_v(&self) -> &Epsilon {
        &self.eps_v
    }
    /// ε on the text side.
    pub fn eps_t(&self) -> &Epsilon {
        &self.eps_t
    }
    /// BN over the P·M·C relations.
    pub fn bn_r(&self) -> &Affine {
        &self.bn_r
    }
    /// fc1 weight, (H, P·M·C) row-major.
    pub fn fc1_weight(&self) -> &[f32] {
        &self.fc1_weight
    }
    /// fc1 bias, (H).
    pub fn fc1_bias(&self) -> &[f32] {
        &self.fc1_bias
    }
    /// BN over the H hidden units.
    pub fn bn_h(&self) -> &Affine {
        &self.bn_h
    }
    /// fc2 weight, (C, H) row-major; fc2 has no bias.
    pub fn fc2_weight(&self) -> &[f32] {
        &self.fc2_weight
    }
}

/// Why [`CrmWeights::from_named`] rejected its input.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum WeightsError {
    /// A tensor has the wrong number of elements.
    #[error("tensor {name}: expected {expected} values, got {got}")]
    Length {
        /// Tensor name.
        name: String,
        /// Elements its shape implies.
        expected: usize,
        /// Elements supplied.
        got: usize,
    },
    /// The feature scale is not a finite positive number.
    #[error("feature_scale must be finite and > 0, got {0}")]
    FeatureScale(f32),
}

/// Logits of a batch: N rows of C values, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Logits {
    classes: usize,
    data: Vec<f32>,
}

impl Logits {
    /// Wraps `data` as rows of `classes` values. `classes` must be at least 1 and divide the
    /// length (it does for every producer in this crate).
    fn new(classes: usize, data: Vec<f32>) -> Self {
        debug_assert!(classes > 0 && data.len().is_multiple_of(classes));
        Self { classes, data }
    }
    /// N, the number of images.
    pub fn batch(&self) -> usize {
        self.data.len() / self.classes
    }
    /// C, logits per image.
    pub fn classes(&self) -> usize {
        self.classes
    }
    /// Logits of image `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.classes..(i + 1) * self.classes]
    }
    /// Every row in order.
    pub fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks_exact(self.classes)
    }
    /// All values, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }
}

/// Parts whose length is not a whole number of images.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("parts hold {len} floats, not a multiple of M·D = {per_image}")]
pub struct PartsShapeError {
    /// Floats given.
    pub len: usize,
    /// Floats per image (M·D).
    pub per_image: usize,
}

/// Checks that `parts` is whole images of M·D floats and returns N.
fn batch_of(parts: &[f32], dims: &CrmDims) -> Result<usize, PartsShapeError> {
    let per_image = dims.parts_len();
    if !parts.len().is_multiple_of(per_image) {
        return Err(PartsShapeError {
            len: parts.len(),
            per_image,
        });
    }
    Ok(parts.len() / per_image)
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
