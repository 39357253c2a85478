//! CLIP's text tower (`CLIPTextTransformer` + `text_projection`): causal transformer, final
//! LayerNorm, and the feature of the end-of-text token, projected.
//!
//! The EOT position follows transformers exactly: when `eos_token_id` is the legacy value 2 it
//! is the argmax of the token ids (first occurrence); otherwise the first position holding
//! `eos_token_id` (position 0 if there is none, as `argmax` of an all-false mask gives).
//!
//! Because the mask is causal, tokens after the last EOT cannot change any EOT feature, so the
//! forward pass runs only up to the last EOT position. This is exact and makes short prompts in
//! a 77-token context several times cheaper (MPP runs this tower on every training step).

use candle_core::Tensor;

use super::config::TextConfig;
use super::layers::{causal_mask, load_layers, BlockShape, EncoderLayer, LayerNorm, Linear};
use super::weights::Weights;
use super::ClipError;

/// transformers' legacy `eos_token_id` that selects the argmax rule.
const LEGACY_EOS_ID: u32 = 2;

/// The frozen text tower.
#[derive(Clone)]
pub struct TextTower {
    config: TextConfig,
    token_embedding: Tensor,
    position: Tensor,
    layers: Vec<EncoderLayer>,
    final_ln: LayerNorm,
    projection: Linear,
}

impl TextTower {
    /// Loads `text_model.*` and `text_projection.weight`.
    pub fn new(
        w: &Weights,
        c: &TextConfig,
        projection_dim: usize,
    ) -> std::result::Result<Self, ClipError> {
        let width = c.hidden_size;
        let shape = BlockShape {
            width,
            intermediate: c.intermediate_size,
            heads: c.num_attention_heads,
            act: c.hidden_act,
            eps: c.layer_norm_eps,
        };
        Ok(Self {
            config: c.clone(),
            token_embedding: w.get(
                "text_model.embeddings.token_embedding.weight",
                &[c.vocab_size, width],
            )?,
            position: w.get(
                "text_model.embeddings.position_embedding.weight",
                &[c.max_position_embeddings, width],
            )?,
            layers: load_layers(w, "text_model.encoder.layers", c.num_hidden_layers, shape)?,
            final_ln: LayerNorm::load(w, "text_model.final_layer_norm", width, c.layer_norm_eps)?,
            projection: Linear::load(w, "text_projection", width, projection_dim, false)?,
        })
    }

    /// The tower's configuration.
    pub fn config(&self) -> &TextConfig {
        &self.config
    }

    /// Where the reference reads the EOT feature of each sequence.
    pub fn eot_positions(&self, ids: &[Vec<u32>]) -> Vec<usize> {
        ids.iter()
            .map(|seq| eot_position(seq, self.config.eos_token_id))
            .collect()
    }

    /// Token embeddings `(N, L, width)` of ids `(N, L)`; ids are checked against the vocabulary.
    pub fn embed_tokens(&self, ids: &Tensor) -> std::result::Result<Tensor, ClipError> {
        let (n, l) = ids.dims2()?;
        let flat = ids.flatten_all()?.to_dtype(candle_core::DType::U32)?;
        let vocab = self.config.vocab_size as u32;
        if let Some(bad) = flat.to_vec1::<u32>()?.into_iter().find(|&id| id >= vocab) {
            return Err(ClipError::Input(format!(
                "token id {bad} is outside the vocabulary (size {vocab})"
            )));
        }
        let e = self.token_embedding.index_select(&flat, 0)?;
        Ok(e.reshape((n, l, self.config.hidden_size))?)
    }

    /// The frozen token embedding of one id `(width)`, for prompt builders.
    pub fn token_embedding(&self) -> &Tensor {
        &self.token_embedding
    }

    /// Runs the transformer on input embeddings `(N, L, width)` and returns the projected
    /// features `(N, D)` at `eot[i]` of each sequence. Differentiable in `embeds`.
    pub fn forward_embeds(
        &self,
        embeds: &Tensor,
        eot: &[usize],
    ) -> std::result::Result<Tensor, ClipError> {
        let (n, l, width) = embeds.dims3()?;
        if eot.len() != n {
            return Err(ClipError::Input(format!(
                "{} EOT positions for {n} sequences",
                eot.len()
            )));
        }
        let max_pos = self.config.max_position_embeddings;
        if l > max_pos {
            return Err(ClipError::Input(format!(
                "sequence length {l} exceeds the context length {max_pos}"
            )));
        }
        let used = eot.iter().map(|&e| e + 1).max().unwrap_or(1).min(l);
        let h = embeds
            .narrow(1, 0, used)?
            .broadcast_add(&self.position.narrow(0, 0, used)?)?;
        let mask = causal_mask(used, &h)?;
        let mut h = h;
        for layer in &self.layers {
            h = layer.forward(&h, Some(&mask))?;
        }
        let rows: Vec<u32> = eot
            .iter()
            .enumerate()
            .map(|(i, &e)| (i * used + e.min(used - 1)) as u32)
            .collect();
        let rows = Tensor::from_vec(rows, n, h.device())?;
        let picked = h.reshape((n * used, width))?.index_select(&rows, 0)?;
        Ok(self.projection.forward(&self.final_ln.forward(&picked)?)?)
    }

    /// `get_text_features`: projected EOT features `(N, D)` of token ids `(N, L)`.
    pub fn text_features(&self, ids: &Tensor) -> std::result::Result<Tensor, ClipError> {
        let ids_u32 = ids.to_dtype(candle_core::DType::U32)?.to_vec2::<u32>()?;
        let eot = self.eot_positions(&ids_u32);
        let embeds = self.embed_tokens(ids)?;
        self.forward_embeds(&embeds, &eot)
    }
}

/// The EOT position of one sequence under transformers' rule for `eos_token_id`.
pub fn eot_position(seq: &[u32], eos_token_id: u32) -> usize {
    if eos_token_id == LEGACY_EOS_ID {
        // torch.argmax returns the first occurrence of the maximum.
        let mut best = 0;
        for (i, &id) in seq.iter().enumerate() {
            if id > seq[best] {
                best = i;
            }
        }
        best
    } else {
        seq.iter().position(|&id| id == eos_token_id).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eot_rules_follow_transformers() {
        // Legacy rule: argmax, first occurrence (padding with the EOT id keeps the first one).
        assert_eq!(eot_position(&[49406, 320, 49407, 49407], 2), 2);
        assert_eq!(eot_position(&[49406, 320, 49407, 0, 0], 2), 2);
        // New rule: first position equal to the id, even if larger ids follow.
        assert_eq!(eot_position(&[5, 9, 7, 9], 7), 2);
        assert_eq!(eot_position(&[5, 9, 8], 7), 0);
    }
}
