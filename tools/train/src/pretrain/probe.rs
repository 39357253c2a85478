//! Backbone quality on species never seen in pre-training: a linear probe (multinomial logistic
//! regression) on frozen, standardised image features, trained on `shots` frames per held-out
//! species and scored on the others (at most [`TEST_PER_SPECIES`] each).
//!
//! The classifier is fitted by full-batch AdamW on the cross-entropy with a small weight decay,
//! for a fixed number of steps: on a few hundred 128-d features this converges in well under a
//! second, and being deterministic it needs no validation split.

use candle_core::{Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use serde::Serialize;
use xrvlm_runtime::preprocess::Preprocess;

use super::captions::{CaptionRecord, SynthSet};
use super::pairs::{epoch_rng, load_images};
use super::PretrainError;
use crate::clip::resnet::ResNetTower;

/// Test frames scored per held-out species (the protocol: 50).
pub const TEST_PER_SPECIES: usize = 50;
/// Optimiser steps of the probe.
const STEPS: usize = 500;

/// What the probe measured.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// The held-out species.
    pub species: Vec<String>,
    /// Training frames per species.
    pub shots: usize,
    /// Test frames in all.
    pub test_frames: usize,
    /// Top-1 on the test frames.
    pub top1: f64,
    /// Top-1 on the test frames by day, and how many there were.
    pub day: (f64, usize),
    /// Top-1 on the infrared night test frames, and how many there were.
    pub night: (f64, usize),
    /// 1 / number of species.
    pub chance: f64,
}

/// Frozen image features `(N, D)` of `images`: the deployed preprocessing (resize, centre
/// crop, CLIP normalisation), the tower in evaluation mode, 256 images at a time. The one
/// evaluation frame path of pre-training (probe, per-epoch score, `eval-vision`).
pub fn image_features(
    tower: &ResNetTower,
    images: &[image::RgbImage],
) -> Result<Tensor, PretrainError> {
    let size = tower.config().image_size;
    let pre = Preprocess::for_image_size(size as u32);
    let mut out = Vec::new();
    for chunk in images.chunks(256) {
        let mut flat = Vec::with_capacity(chunk.len() * 3 * size * size);
        for img in chunk {
            flat.extend(
                pre.apply(img)
                    .map_err(|e| PretrainError::Config(e.to_string()))?,
            );
        }
        let px = Tensor::from_vec(flat, (chunk.len(), 3, size, size), &Device::Cpu)?;
        // Detached: a tower under training holds variables, and a probe's (or a score's)
        // backward pass must not run through it.
        out.push(tower.image_features(&px)?.detach());
    }
    Ok(Tensor::cat(&out, 0)?)
}

/// Fits and scores the probe on the frames of `species` in `set`.
pub fn linear_probe(
    tower: &ResNetTower,
    set: &SynthSet,
    species: &[String],
    shots: usize,
    seed: u64,
) -> Result<ProbeReport, PretrainError> {
    let mut train: Vec<(&CaptionRecord, u32)> = Vec::new();
    let mut test: Vec<(&CaptionRecord, u32)> = Vec::new();
    for (label, name) in species.iter().enumerate() {
        let mut frames: Vec<&CaptionRecord> = set
            .records
            .iter()
            .filter(|r| r.has_animal() && &r.species == name)
            .collect();
        frames.shuffle(&mut epoch_rng(seed, label, 2));
        if frames.len() <= shots {
            return Err(PretrainError::Config(format!(
                "{}: species {name} has {} frames; the probe needs more than {shots}",
                set.root.display(),
                frames.len()
            )));
        }
        let (a, b) = frames.split_at(shots);
        train.extend(a.iter().map(|r| (*r, label as u32)));
        test.extend(b.iter().take(TEST_PER_SPECIES).map(|r| (*r, label as u32)));
    }
    let load = |v: &[(&CaptionRecord, u32)]| -> Result<(Tensor, Tensor), PretrainError> {
        let records: Vec<&CaptionRecord> = v.iter().map(|(r, _)| *r).collect();
        let feats = image_features(tower, &load_images(set, &records)?)?;
        let labels = Tensor::new(v.iter().map(|(_, l)| *l).collect::<Vec<_>>(), &Device::Cpu)?;
        Ok((feats, labels))
    };
    let (xtr, ytr) = load(&train)?;
    let (xte, yte) = load(&test)?;
    // Standardise with the training frames' statistics.
    let mean = xtr.mean_keepdim(0)?;
    let std = (xtr.broadcast_sub(&mean)?.sqr()?.mean_keepdim(0)? + 1e-6)?.sqrt()?;
    let norm = |x: &Tensor| x.broadcast_sub(&mean)?.broadcast_div(&std);
    let (xtr, xte) = (norm(&xtr)?, norm(&xte)?);
    let (k, d) = (species.len(), xtr.dim(1)?);
    let w = Var::zeros((d, k), candle_core::DType::F32, &Device::Cpu)?;
    let b = Var::zeros(k, candle_core::DType::F32, &Device::Cpu)?;
    let mut opt = AdamW::new(
        vec![w.clone(), b.clone()],
        ParamsAdamW {
            lr: 0.01,
            weight_decay: 1e-3,
            ..ParamsAdamW::default()
        },
    )?;
    let logits = |x: &Tensor| x.matmul(w.as_tensor())?.broadcast_add(b.as_tensor());
    for _ in 0..STEPS {
        let loss = candle_nn::loss::cross_entropy(&logits(&xtr)?, &ytr)?;
        opt.backward_step(&loss)?;
    }
    let pred = logits(&xte)?.argmax(D::Minus1)?.to_vec1::<u32>()?;
    let truth = yte.to_vec1::<u32>()?;
    let right: Vec<(bool, bool)> = pred
        .iter()
        .zip(&truth)
        .zip(&test)
        .map(|((p, t), (r, _))| (p == t, r.night))
        .collect();
    let score = |night: Option<bool>| {
        let kept: Vec<bool> = right
            .iter()
            .filter(|(_, n)| night.is_none_or(|want| *n == want))
            .map(|(ok, _)| *ok)
            .collect();
        let correct = kept.iter().filter(|ok| **ok).count();
        (correct as f64 / kept.len().max(1) as f64, kept.len())
    };
    Ok(ProbeReport {
        species: species.to_vec(),
        shots,
        test_frames: truth.len(),
        top1: score(None).0,
        day: score(Some(false)),
        night: score(Some(true)),
        chance: 1.0 / k.max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::resnet::ResNetConfig;
    use crate::pretrain::resnet_init::init_tower;

    #[test]
    fn features_of_a_tower_under_training_are_detached() {
        let config = ResNetConfig {
            image_size: 32,
            layers: [1, 1, 1, 1],
            width: 4,
            heads: 2,
            embed_dim: 8,
        };
        let params = init_tower(&config, 1, &Device::Cpu).unwrap();
        let tower = ResNetTower::new(&params.weights(std::path::Path::new("t")), &config).unwrap();
        let images = vec![image::RgbImage::new(40, 40); 3];
        let f = image_features(&tower, &images).unwrap();
        assert_eq!(f.dims(), &[3, 8]);
        // A probe's 500 optimiser steps would otherwise each backpropagate through the tower.
        assert!(!f.track_op());
    }
}
