//! The model trained and evaluated by `xrvlm-train`: the frozen CLIP towers plus one selectable
//! head — XR-VLM (UnA + MPP + CRM) or a baseline of `xrvlm-method.md` §9:
//! - `zero-shot`: CLIP with a hand-written template, nothing trained;
//! - `coop`: one shared learned context, cosine against the global image feature;
//! - `alignment` (`single_sim`): UnA parts against MPP prompts, part m with prompt m, cosine summed;
//! - `vision-only` (`single_vis`): UnA parts, a separate MLP per part, logits averaged;
//! - `xrvlm` (`single_xpr`): UnA + MPP + CRM.
//!
//! The image tower's streams are detached: the towers are frozen and receive no gradient. The
//! text tower is not detached for MPP and CoOp: their contexts learn through it.

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use super::batch_norm::BatchNorm;
use super::crm::{scaled_unit, Crm, CrmShape};
use super::linear::TrainLinear;
use super::params::ParamStore;
use super::prompts::{l2_normalize, template_features, ContextKind, PromptLearner};
use super::una::Una;
use crate::clip::ops::elu;
use crate::clip::{Clip, ClipError, VisionStreams};

/// Which head sits on the frozen towers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum HeadKind {
    /// UnA + MPP + CRM.
    Xrvlm,
    /// UnA + MPP with part-wise cosine alignment (`single_sim`).
    #[value(alias = "single-sim")]
    Alignment,
    /// UnA parts with per-part MLPs, no text (`single_vis`).
    VisionOnly,
    /// CoOp: a shared learned context.
    Coop,
    /// Zero-shot CLIP with a template.
    ZeroShot,
}

/// The head's hyper-parameters (§1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadConfig {
    /// The head.
    pub kind: HeadKind,
    /// Visual parts M.
    pub parts: usize,
    /// Prompts per class P.
    pub prompts: usize,
    /// Learned context tokens per prompt.
    pub context_len: usize,
    /// CRM embedding D'; `None` means D/2.
    pub crm_dim: Option<usize>,
    /// Hidden width H of CRM's ϑ and of the vision-only MLPs.
    pub hidden: usize,
    /// Fixed feature scale s.
    pub scale: f64,
    /// UnA softmax temperature multiplier τ.
    pub una_tau: f64,
    /// Zero-shot template; `{}` is replaced by the class name.
    pub template: String,
    /// Seed of the parameter initialisation.
    pub seed: u64,
}

impl Default for HeadConfig {
    fn default() -> Self {
        Self {
            kind: HeadKind::Xrvlm,
            parts: 4,
            prompts: 4,
            context_len: 16,
            crm_dim: None,
            hidden: 1024,
            scale: 64.0,
            una_tau: 1.0,
            template: "a photo of the {}".into(),
            seed: 0,
        }
    }
}

/// Errors building or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The head's settings are inconsistent.
    #[error("head config: {0}")]
    Config(String),
    /// The CLIP towers failed.
    #[error(transparent)]
    Clip(#[from] ClipError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// One vision-only part classifier: BN(D) → Linear(D→H) → ELU → BN(H) → Linear(H→C).
#[derive(Clone)]
pub struct PartMlp {
    bn_in: BatchNorm,
    fc1: TrainLinear,
    bn_h: BatchNorm,
    fc2: TrainLinear,
}

impl PartMlp {
    fn new(
        p: &mut ParamStore,
        b: &mut ParamStore,
        i: usize,
        d: usize,
        h: usize,
        c: usize,
    ) -> candle_core::Result<Self> {
        let name = format!("vis.part{i}");
        Ok(Self {
            bn_in: BatchNorm::new(p, b, &format!("{name}.bn_in"), d)?,
            fc1: TrainLinear::new(p, &format!("{name}.fc1"), d, h, true)?,
            bn_h: BatchNorm::new(p, b, &format!("{name}.bn_h"), h)?,
            fc2: TrainLinear::new(p, &format!("{name}.fc2"), h, c, true)?,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let h = elu(&self.fc1.forward(&self.bn_in.forward(x, train)?)?)?;
        self.fc2.forward(&self.bn_h.forward(&h, train)?)
    }
}

/// The head's modules.
#[derive(Clone)]
pub enum Head {
    /// UnA + MPP + CRM.
    Xrvlm {
        /// Multi-part visual features.
        una: Una,
        /// Multi-part prompts.
        prompts: PromptLearner,
        /// Cross-relation classifier (boxed: it is by far the largest variant).
        crm: Box<Crm>,
    },
    /// UnA + MPP + part-wise cosine.
    Alignment {
        /// Multi-part visual features.
        una: Una,
        /// Multi-part prompts.
        prompts: PromptLearner,
        /// CLIP's logit scale, trainable as in the reference.
        logit_scale: Var,
    },
    /// UnA + per-part MLPs.
    VisionOnly {
        /// Multi-part visual features.
        una: Una,
        /// One MLP per part.
        mlps: Vec<PartMlp>,
    },
    /// Shared learned context.
    Coop {
        /// The shared prompt.
        prompts: PromptLearner,
    },
    /// Template prompts, computed once.
    ZeroShot {
        /// Normalised class features `(C, D)`.
        text: Tensor,
    },
}

/// Frozen CLIP + a head, with its parameters and buffers.
pub struct Model {
    /// The frozen towers.
    pub clip: Clip,
    /// The head.
    pub head: Head,
    /// The head's settings.
    pub config: HeadConfig,
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Trainable parameters.
    pub params: ParamStore,
    /// Batch-norm running statistics.
    pub buffers: ParamStore,
    dtype: DType,
}

impl Model {
    /// Builds the head on `clip` for `classes`. `dtype` is the towers' compute type (f32, or bf16
    /// on CUDA); heads always compute in f32.
    pub fn new(
        clip: Clip,
        classes: Vec<String>,
        config: HeadConfig,
        device: &Device,
        dtype: DType,
    ) -> Result<Self, ModelError> {
        if classes.is_empty() {
            return Err(ModelError::Config("no classes".into()));
        }
        if config.parts == 0 || config.prompts == 0 {
            return Err(ModelError::Config(
                "parts and prompts must be at least 1".into(),
            ));
        }
        if config.kind == HeadKind::Alignment && config.parts != config.prompts {
            return Err(ModelError::Config(format!(
                "the alignment head pairs part m with prompt m, so parts ({}) must equal prompts ({})",
                config.parts, config.prompts
            )));
        }
        let mut params = ParamStore::new(config.seed, device);
        let mut buffers = ParamStore::new(config.seed, device);
        let head = build_head(&clip, &classes, &config, &mut params, &mut buffers, device)?;
        Ok(Self {
            clip,
            head,
            config,
            classes,
            params,
            buffers,
            dtype,
        })
    }

    /// Number of classes C.
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// The frozen image tower's token streams, detached, in f32.
    pub fn streams(&self, pixels: &Tensor) -> Result<VisionStreams, ModelError> {
        let s = self.clip.vision.streams(&pixels.to_dtype(self.dtype)?)?;
        Ok(VisionStreams {
            x: s.x.detach().to_dtype(DType::F32)?,
            f: s.f.detach().to_dtype(DType::F32)?,
            pooled: s.pooled.detach().to_dtype(DType::F32)?,
        })
    }

    /// The text side of the head: XR-VLM's `T'` `(P, C, D')`, alignment's normalised `T`
    /// `(P, C, D)`, CoOp's / zero-shot's normalised `(C, D)`; `None` for vision-only. In eval
    /// mode it does not depend on the image, so callers compute it once per evaluation.
    pub fn class_features(&self, train: bool) -> Result<Option<Tensor>, ModelError> {
        let text = &self.clip.text;
        Ok(match &self.head {
            Head::Xrvlm { prompts, crm, .. } => {
                Some(crm.text_embedding(&prompts.features(text)?, train)?)
            }
            Head::Alignment { prompts, .. } => Some(l2_normalize(&prompts.features(text)?)?),
            Head::Coop { prompts } => Some(l2_normalize(&prompts.features(text)?.squeeze(0)?)?),
            Head::ZeroShot { text } => Some(text.clone()),
            Head::VisionOnly { .. } => None,
        })
    }

    /// What an XR-VLM bundle stores of the head: `prompt_features`, the raw text features `T`
    /// `(P, C, D)` of every prompt of every class in f32, then the CRM in eval form
    /// ([`Crm::eval_tensors`]). Only the XR-VLM head has this form.
    pub fn xrvlm_eval_tensors(&self) -> Result<Vec<(String, Tensor)>, ModelError> {
        let Head::Xrvlm { prompts, crm, .. } = &self.head else {
            return Err(ModelError::Config(format!(
                "only an XR-VLM head can be exported as a bundle, not {:?}",
                self.config.kind
            )));
        };
        let t = prompts.features(&self.clip.text)?.to_dtype(DType::F32)?;
        let mut out = vec![("prompt_features".to_string(), t)];
        out.extend(crm.eval_tensors()?);
        Ok(out)
    }

    /// Multi-part visual features `V` `(B, M, D)`; `None` for heads without UnA.
    pub fn parts(
        &self,
        streams: &VisionStreams,
        train: bool,
    ) -> Result<Option<Tensor>, ModelError> {
        Ok(match &self.head {
            Head::Xrvlm { una, .. }
            | Head::Alignment { una, .. }
            | Head::VisionOnly { una, .. } => Some(una.forward(streams, train)?),
            Head::Coop { .. } | Head::ZeroShot { .. } => None,
        })
    }

    /// Logits `(B, C)` from the image streams and the class features of [`Model::class_features`].
    pub fn logits_from(
        &self,
        streams: &VisionStreams,
        class_features: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor, ModelError> {
        let need = || ModelError::Config("this head needs class features".into());
        let logits = match &self.head {
            Head::Xrvlm { una, crm, .. } => crm.forward(
                &una.forward(streams, train)?,
                class_features.ok_or_else(need)?,
                train,
            )?,
            Head::Alignment {
                una, logit_scale, ..
            } => {
                let v = l2_normalize(&una.forward(streams, train)?)?; // (B, M, D)
                let t = class_features.ok_or_else(need)?; // (P, C, D), P = M
                let per_part = v
                    .transpose(0, 1)?
                    .contiguous()?
                    .matmul(&t.transpose(1, 2)?.contiguous()?)?; // (M, B, C)
                let m = self.config.parts.max(self.config.prompts) as f64;
                (per_part.sum(0)? / m)?.broadcast_mul(&logit_scale.as_tensor().exp()?)?
            }
            Head::VisionOnly { una, mlps } => {
                let v = scaled_unit(&una.forward(streams, train)?, 1.0)?;
                let v = (v * self.config.scale)?;
                let mut sum: Option<Tensor> = None;
                for (i, mlp) in mlps.iter().enumerate() {
                    let y = mlp.forward(&v.narrow(1, i, 1)?.squeeze(1)?, train)?;
                    sum = Some(match sum {
                        Some(s) => (s + y)?,
                        None => y,
                    });
                }
                let sum = sum.ok_or_else(|| ModelError::Config("no parts".into()))?;
                (sum / mlps.len() as f64)?
            }
            Head::Coop { .. } | Head::ZeroShot { .. } => {
                let img = l2_normalize(&streams.pooled)?;
                let t = class_features.ok_or_else(need)?;
                (img.matmul(&t.t()?)? * self.clip.logit_scale.exp() as f64)?
            }
        };
        Ok(logits)
    }

    /// Logits `(B, C)` of preprocessed pixels `(B, 3, S, S)`, text side included.
    pub fn logits(&self, pixels: &Tensor, train: bool) -> Result<Tensor, ModelError> {
        let class_features = self.class_features(train)?;
        let streams = self.streams(pixels)?;
        self.logits_from(&streams, class_features.as_ref(), train)
    }

    /// The trainable variables by name (empty for zero-shot).
    pub fn trainable(&self) -> Vec<(String, Var)> {
        self.params.named()
    }
}

fn build_head(
    clip: &Clip,
    classes: &[String],
    c: &HeadConfig,
    params: &mut ParamStore,
    buffers: &mut ParamStore,
    device: &Device,
) -> Result<Head, ModelError> {
    let width = clip.config.vision.token_width();
    let d = clip.config.projection_dim;
    let n = classes.len();
    let una = |p: &mut ParamStore, b: &mut ParamStore| Una::new(p, b, width, c.parts, c.una_tau);
    Ok(match c.kind {
        HeadKind::Xrvlm => {
            let una = una(params, buffers)?;
            let prompts = PromptLearner::new(
                params,
                clip,
                classes,
                c.prompts,
                c.context_len,
                ContextKind::ClassSpecific,
            )?;
            let shape = CrmShape {
                parts: c.parts,
                prompts: c.prompts,
                classes: n,
                dim: d,
                crm_dim: c.crm_dim.unwrap_or((d / 2).max(1)),
                hidden: c.hidden,
                scale: c.scale,
            };
            let crm = Crm::new(params, buffers, shape)?;
            Head::Xrvlm {
                una,
                prompts,
                crm: Box::new(crm),
            }
        }
        HeadKind::Alignment => {
            let una = una(params, buffers)?;
            let prompts = PromptLearner::new(
                params,
                clip,
                classes,
                c.prompts,
                c.context_len,
                ContextKind::ClassSpecific,
            )?;
            let init = Tensor::new(&[clip.logit_scale], device)?;
            let logit_scale = params.from_tensor("logit_scale", &init)?;
            Head::Alignment {
                una,
                prompts,
                logit_scale,
            }
        }
        HeadKind::VisionOnly => {
            let una = una(params, buffers)?;
            let mlps = (0..c.parts)
                .map(|i| PartMlp::new(params, buffers, i, d, c.hidden, n))
                .collect::<candle_core::Result<Vec<_>>>()?;
            Head::VisionOnly { una, mlps }
        }
        HeadKind::Coop => {
            let prompts =
                PromptLearner::new(params, clip, classes, 1, c.context_len, ContextKind::Shared)?;
            Head::Coop { prompts }
        }
        HeadKind::ZeroShot => {
            let text = template_features(clip, classes, &c.template, device)?;
            Head::ZeroShot {
                text: l2_normalize(&text.to_dtype(DType::F32)?)?,
            }
        }
    })
}
