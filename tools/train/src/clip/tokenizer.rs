//! The CLIP BPE tokenizer, read from a checkpoint's `tokenizer.json` with the `tokenizers` crate
//! (no network features). Sequences are `<|startoftext|> … <|endoftext|>`, padded to the context
//! length with the tokenizer's pad token, as transformers' `CLIPTokenizerFast` with
//! `padding="max_length"` does. Padding never changes a feature: the tower's causal mask hides it.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use tokenizers::Tokenizer;

use super::config::TextConfig;
use super::ClipError;

/// CLIP's start-of-text token.
pub const SOT: &str = "<|startoftext|>";
/// CLIP's end-of-text token.
pub const EOT: &str = "<|endoftext|>";

/// A loaded CLIP tokenizer.
pub struct ClipTokenizer {
    inner: Tokenizer,
    path: PathBuf,
    sot_id: u32,
    eot_id: u32,
    pad_id: u32,
    context_length: usize,
}

impl ClipTokenizer {
    /// Loads `tokenizer.json` and checks it against the text tower's config.
    pub fn load(path: &Path, text: &TextConfig) -> Result<Self, ClipError> {
        let err = |msg: String| ClipError::Tokenizer {
            path: path.to_path_buf(),
            msg,
        };
        if !path.exists() {
            return Err(err("file not found".into()));
        }
        let mut inner = Tokenizer::from_file(path)
            .map_err(|e| err(format!("not a valid tokenizer.json: {e}")))?;
        let pad_id = inner
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| inner.token_to_id(EOT));
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| err(format!("cannot disable truncation: {e}")))?;
        let id = |tok: &str| {
            inner
                .token_to_id(tok)
                .ok_or_else(|| err(format!("no {tok} token; this is not a CLIP tokenizer")))
        };
        let sot_id = id(SOT)?;
        let eot_id = id(EOT)?;
        let vocab = inner.get_vocab_size(true);
        if vocab > text.vocab_size {
            return Err(err(format!(
                "has {vocab} tokens but the text tower's vocab_size is {}",
                text.vocab_size
            )));
        }
        Ok(Self {
            inner,
            path: path.to_path_buf(),
            sot_id,
            eot_id,
            pad_id: pad_id.unwrap_or(eot_id),
            context_length: text.max_position_embeddings,
        })
    }

    /// `<|startoftext|>`'s id.
    pub fn sot_id(&self) -> u32 {
        self.sot_id
    }

    /// `<|endoftext|>`'s id.
    pub fn eot_id(&self) -> u32 {
        self.eot_id
    }

    /// The id used for padding.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The text tower's context length.
    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// Ids of `text` including the start and end tokens, unpadded, truncated to the context
    /// length as transformers truncates (`truncation=True`): the first L−2 word tokens, then
    /// `<|endoftext|>`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ClipError> {
        let mut ids = self.encode_full(text)?;
        if ids.len() > self.context_length {
            ids.truncate(self.context_length - 1);
            ids.push(self.eot_id);
        }
        Ok(ids)
    }

    /// Like [`ClipTokenizer::encode`], but a text longer than the context is an error instead of
    /// being truncated (prompts whose class name would be cut).
    pub fn encode_untruncated(&self, text: &str) -> Result<Vec<u32>, ClipError> {
        let ids = self.encode_full(text)?;
        if ids.len() > self.context_length {
            return Err(ClipError::Input(format!(
                "text {text:?} is {} tokens; the context holds {}",
                ids.len(),
                self.context_length
            )));
        }
        Ok(ids)
    }

    fn encode_full(&self, text: &str) -> Result<Vec<u32>, ClipError> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| ClipError::Tokenizer {
                path: self.path.clone(),
                msg: format!("cannot encode {text:?}: {e}"),
            })?;
        Ok(enc.get_ids().to_vec())
    }

    /// Ids of the words of `text` only, without start and end tokens.
    pub fn encode_words(&self, text: &str) -> Result<Vec<u32>, ClipError> {
        let ids = self.encode(text)?;
        Ok(ids
            .into_iter()
            .filter(|&id| id != self.sot_id && id != self.eot_id)
            .collect())
    }

    /// Encodes several texts.
    pub fn encode_batch(&self, texts: &[String]) -> Result<Vec<Vec<u32>>, ClipError> {
        texts.iter().map(|t| self.encode(t)).collect()
    }

    /// Pads sequences to the context length into an `(N, L)` u32 tensor.
    pub fn pad_to_tensor(&self, seqs: &[Vec<u32>], device: &Device) -> Result<Tensor, ClipError> {
        pad_ids(seqs, self.context_length, self.pad_id, device)
    }
}

/// Pads id sequences to `len` with `pad` into an `(N, len)` u32 tensor; a longer sequence is an
/// error.
pub fn pad_ids(
    seqs: &[Vec<u32>],
    len: usize,
    pad: u32,
    device: &Device,
) -> Result<Tensor, ClipError> {
    let mut flat = Vec::with_capacity(seqs.len() * len);
    for (i, seq) in seqs.iter().enumerate() {
        if seq.len() > len {
            return Err(ClipError::Input(format!(
                "token sequence {i} has {} ids; the context holds {len}",
                seq.len()
            )));
        }
        flat.extend_from_slice(seq);
        flat.extend(std::iter::repeat_n(pad, len - seq.len()));
    }
    Ok(Tensor::from_vec(flat, (seqs.len(), len), device)?)
}
