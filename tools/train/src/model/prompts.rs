//! Class prompts for the text tower: MPP's learned multi-part prompts (`xrvlm-method.md` §3),
//! CoOp's shared context (§9) and zero-shot CLIP's hand-written template.
//!
//! A learned prompt is the token sequence of `"X X … X Name."` (one `X` per context slot) in
//! which the `X` embeddings are replaced by learned vectors: `[SOS] v₁ … v_L <name> "." [EOS]`.
//! The start token and the suffix are frozen embeddings; the class name goes at the end.

use candle_core::{Result, Tensor, Var};

use super::params::ParamStore;
use crate::clip::{Clip, ClipError, TextTower};

/// Standard deviation of the context initialisation, N(0, 0.02²) (§3).
const CTX_INIT_STD: f32 = 0.02;

/// Whether each class (and prompt) has its own context vectors or all classes share one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextKind {
    /// MPP: `P × C` independent contexts.
    ClassSpecific,
    /// CoOp: one context shared by every class (`P` must be 1).
    Shared,
}

/// The reference's class-name normalisation: `_` becomes a space and every word is capitalised
/// ("Black_footed_Albatross" → "Black Footed Albatross").
pub fn display_name(raw: &str) -> String {
    raw.replace('_', " ")
        .split_whitespace()
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first
                    .to_uppercase()
                    .chain(chars.flat_map(char::to_lowercase))
                    .collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join(" ")
}

/// Learned prompts: `P` prompts per class with `L` context vectors each.
#[derive(Clone)]
pub struct PromptLearner {
    ctx: Var,
    prompts: usize,
    classes: usize,
    ctx_len: usize,
    /// Embedding of the start token `(1, 1, W)`.
    prefix: Tensor,
    /// Embeddings of `<name> "." [EOS] [pad…]` per class `(C, S, W)`.
    suffix: Tensor,
    /// EOT position of each class's prompt.
    eot: Vec<usize>,
}

impl PromptLearner {
    /// Tokenises every class's prompt and creates the context variable `prompt.ctx`.
    pub fn new(
        params: &mut ParamStore,
        clip: &Clip,
        class_names: &[String],
        prompts: usize,
        ctx_len: usize,
        kind: ContextKind,
    ) -> std::result::Result<Self, ClipError> {
        if kind == ContextKind::Shared && prompts != 1 {
            return Err(ClipError::Input(format!(
                "a shared (CoOp) context has one prompt per class, not {prompts}"
            )));
        }
        let tok = clip.tokenizer()?;
        let placeholder = vec!["X"; ctx_len].join(" ");
        let mut suffixes = Vec::with_capacity(class_names.len());
        for name in class_names {
            let text = format!("{placeholder} {}.", display_name(name));
            let ids = tok.encode_untruncated(&text)?;
            suffixes.push(split_prompt(&ids, ctx_len, &text)?);
        }
        let width = clip.config.text.hidden_size;
        let longest = suffixes.iter().map(Vec::len).max().unwrap_or(0);
        let eot = suffixes.iter().map(|s| ctx_len + s.len()).collect();
        let padded: Vec<Vec<u32>> = suffixes
            .iter()
            .map(|s| {
                let mut s = s.clone();
                s.resize(longest, tok.pad_id());
                s
            })
            .collect();
        let device = params.device().clone();
        let ids = crate::clip::tokenizer::pad_ids(&padded, longest, tok.pad_id(), &device)?;
        let suffix = clip.text.embed_tokens(&ids)?;
        let sot = Tensor::new(&[[tok.sot_id()]], &device)?;
        let prefix = clip.text.embed_tokens(&sot)?;
        let (p, c) = match kind {
            ContextKind::ClassSpecific => (prompts, class_names.len()),
            ContextKind::Shared => (1, 1),
        };
        let ctx = params.normal("prompt.ctx", (p, c, ctx_len, width), CTX_INIT_STD)?;
        Ok(Self {
            ctx,
            prompts,
            classes: class_names.len(),
            ctx_len,
            prefix,
            suffix,
            eot,
        })
    }

    /// Prompts per class P.
    pub fn prompts(&self) -> usize {
        self.prompts
    }

    /// The class prompt features `T` `(P, C, D)`, differentiable in the contexts.
    pub fn features(&self, text: &TextTower) -> std::result::Result<Tensor, ClipError> {
        let (p, c, l) = (self.prompts, self.classes, self.ctx_len);
        let (_, s, w) = self.suffix.dims3()?;
        let n = p * c;
        let ctx = self
            .ctx
            .as_tensor()
            .to_dtype(self.suffix.dtype())?
            .broadcast_as((p, c, l, w))?
            .reshape((n, l, w))?;
        let prefix = self.prefix.broadcast_as((n, 1, w))?;
        let suffix = self
            .suffix
            .unsqueeze(0)?
            .broadcast_as((p, c, s, w))?
            .reshape((n, s, w))?;
        let embeds = Tensor::cat(&[&prefix, &ctx, &suffix], 1)?;
        let eot: Vec<usize> = (0..p).flat_map(|_| self.eot.iter().copied()).collect();
        let t = text.forward_embeds(&embeds, &eot)?;
        let d = t.dim(1)?;
        Ok(t.to_dtype(candle_core::DType::F32)?.reshape((p, c, d))?)
    }
}

/// Checks that ids are `[SOS] X×L <suffix…>` and returns the suffix (name, ".", EOS).
fn split_prompt(
    ids: &[u32],
    ctx_len: usize,
    text: &str,
) -> std::result::Result<Vec<u32>, ClipError> {
    let slots = ids.get(1..=ctx_len).unwrap_or(&[]);
    let placeholder_ok = slots.len() == ctx_len && slots.windows(2).all(|w| w[0] == w[1]);
    if !placeholder_ok || ids.len() <= ctx_len + 2 {
        return Err(ClipError::Input(format!(
            "prompt {text:?} does not tokenize as [SOS] + {ctx_len} single 'X' tokens + name; \
             the tokenizer must map \"X\" to one token"
        )));
    }
    Ok(ids[1 + ctx_len..].to_vec())
}

/// Zero-shot class features `(C, D)`: one hand-written template per class, e.g.
/// `"a photo of the {}"` (the reference's CUB template, no period).
pub fn template_features(
    clip: &Clip,
    class_names: &[String],
    template: &str,
    device: &candle_core::Device,
) -> std::result::Result<Tensor, ClipError> {
    let texts: Vec<String> = class_names
        .iter()
        .map(|n| template.replace("{}", &display_name(n)))
        .collect();
    clip.encode_texts(&texts, device)
}

/// L2-normalises the last axis (floor `1e-12`).
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x
        .sqr()?
        .sum_keepdim(candle_core::D::Minus1)?
        .sqrt()?
        .maximum(1e-12)?;
    x.broadcast_div(&norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_like_the_reference() {
        assert_eq!(
            display_name("Black_footed_Albatross"),
            "Black Footed Albatross"
        );
        assert_eq!(display_name("northern cardinal"), "Northern Cardinal");
        assert_eq!(display_name("__odd__name_"), "Odd Name");
    }

    #[test]
    fn split_prompt_checks_placeholder() {
        let ids = [1, 9, 9, 9, 5, 6, 2];
        assert_eq!(split_prompt(&ids, 3, "t").unwrap(), vec![5, 6, 2]);
        assert!(split_prompt(&[1, 9, 8, 9, 5, 2], 3, "t").is_err());
        assert!(split_prompt(&[1, 9, 9, 9, 2], 3, "t").is_err());
    }
}
