//! The (image, caption) pairs of pre-training, decoded once and kept in memory (a synth set is a
//! few thousand 72-pixel images, a few tens of MB), and their seeded batches.
//!
//! Each epoch is a fresh permutation cut into full batches; a last partial batch is dropped (a
//! contrastive batch much smaller than the others has too few negatives), unless the whole set
//! is smaller than one batch. Shuffling and augmentation draw from ChaCha streams keyed by
//! (seed, epoch), so the same seed gives the same batches and crops.

use candle_core::{Device, Tensor};
use image::RgbImage;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use xrvlm_runtime::image_io::load_rgb;

use super::captions::{CaptionRecord, SynthSet};
use super::clauses::drop_clauses;
use super::PretrainError;
use crate::clip::tokenizer::pad_ids;
use crate::clip::ClipTokenizer;
use crate::data::augment::Augment;

/// Stream of the shuffling draws within an epoch's generator.
const SHUFFLE_STREAM: u64 = 0;
/// Stream of the augmentation draws within an epoch's generator.
const AUGMENT_STREAM: u64 = 1;

/// A generator for `stream` of `epoch`, derived from `seed`.
pub fn epoch_rng(seed: u64, epoch: usize, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(2 * epoch as u64 + stream);
    rng
}

/// The batches of `epoch` over `len` items: a seeded permutation cut into full batches of
/// `batch_size` (the last partial one dropped, unless there is only one).
pub fn epoch_batches(len: usize, batch_size: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut epoch_rng(seed, epoch, SHUFFLE_STREAM));
    let steps = (len / batch_size).max(1);
    order
        .chunks(batch_size)
        .take(steps)
        .map(<[usize]>::to_vec)
        .collect()
}

/// Decodes the image of every record, in order.
pub fn load_images(
    set: &SynthSet,
    records: &[&CaptionRecord],
) -> Result<Vec<RgbImage>, PretrainError> {
    records
        .iter()
        .map(|r| {
            let path = set.image_path(r);
            let img = load_rgb(&path).map_err(|e| PretrainError::File {
                path: path.clone(),
                msg: e.to_string(),
            })?;
            if img.width() == 0 || img.height() == 0 {
                return Err(PretrainError::File {
                    path,
                    msg: "the image has no pixels".into(),
                });
            }
            Ok(img)
        })
        .collect()
}

/// Pre-training pairs in memory.
pub struct Pairs {
    images: Vec<RgbImage>,
    captions: Vec<String>,
    ids: Vec<Vec<u32>>,
}

impl Pairs {
    /// Decodes the images of `records` and tokenizes their captions.
    pub fn load(
        set: &SynthSet,
        records: &[&CaptionRecord],
        tokenizer: &ClipTokenizer,
    ) -> Result<Self, PretrainError> {
        let ids = records
            .iter()
            .map(|r| tokenizer.encode(&r.caption))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            images: load_images(set, records)?,
            captions: records.iter().map(|r| r.caption.clone()).collect(),
            ids,
        })
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Optimiser steps per epoch at `batch_size`.
    pub fn steps_per_epoch(&self, batch_size: usize) -> usize {
        (self.len() / batch_size).max(1)
    }

    /// The batches (pair indices) of `epoch`.
    pub fn epoch_batches(&self, batch_size: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
        epoch_batches(self.len(), batch_size, seed, epoch)
    }

    /// A generator for the augmentation of `epoch`.
    pub fn augment_rng(seed: u64, epoch: usize) -> ChaCha8Rng {
        epoch_rng(seed, epoch, AUGMENT_STREAM)
    }

    /// Augmented, normalised pixels `(B, 3, S, S)` of a batch.
    pub fn pixels(
        &self,
        batch: &[usize],
        augment: &Augment,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let s = augment.size as usize;
        let mut flat = Vec::with_capacity(batch.len() * augment.output_len());
        for &i in batch {
            flat.extend(augment.apply(&self.images[i], rng));
        }
        Tensor::from_vec(flat, (batch.len(), 3, s, s), device)
    }

    /// The token ids of a batch's captions, unpadded; with `clause_dropout` > 0 each caption
    /// first loses clauses at random ([`drop_clauses`]).
    pub fn batch_ids(
        &self,
        batch: &[usize],
        clause_dropout: f64,
        tokenizer: &ClipTokenizer,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<Vec<u32>>, PretrainError> {
        if clause_dropout <= 0.0 {
            return Ok(batch.iter().map(|&i| self.ids[i].clone()).collect());
        }
        batch
            .iter()
            .map(|&i| {
                let text = drop_clauses(&self.captions[i], clause_dropout, rng);
                Ok(tokenizer.encode(&text)?)
            })
            .collect()
    }
}

/// Token id sequences padded to the tokenizer's context, `(B, L)`.
pub fn ids_tensor(
    ids: &[Vec<u32>],
    tokenizer: &ClipTokenizer,
    device: &Device,
) -> Result<Tensor, PretrainError> {
    Ok(pad_ids(
        ids,
        tokenizer.context_length(),
        tokenizer.pad_id(),
        device,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_rngs_are_reproducible_and_distinct() {
        use rand::Rng;
        let a: u64 = epoch_rng(7, 3, 0).random();
        assert_eq!(a, epoch_rng(7, 3, 0).random::<u64>());
        assert_ne!(a, epoch_rng(7, 4, 0).random::<u64>());
        assert_ne!(a, epoch_rng(7, 3, 1).random::<u64>());
        assert_ne!(a, epoch_rng(8, 3, 0).random::<u64>());
    }
}
