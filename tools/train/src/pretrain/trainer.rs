//! The optimisation itself: AdamW in two groups (weight decay on weight matrices only), linear
//! warm-up then cosine decay per step, CLIP's temperature clamp, one contrastive step per batch.
//!
//! AdamW's betas and epsilon are CLIP's (β₂ = 0.98, ε = 1e-6, Radford et al. 2021, §2.5): the
//! default β₂ = 0.999 is unstable for contrastive transformers trained from scratch.

use candle_core::{Device, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use indicatif::ProgressBar;

use super::init::{decays, LOGIT_SCALE};
use super::loss::{clip_loss, soft_targets};
use super::pairs::{ids_tensor, Pairs};
use super::PretrainError;
use crate::clip::Clip;
use crate::data::augment::Augment;
use crate::model::params::ParamStore;

/// CLIP clamps `logit_scale` to ln 100 so that the temperature never drops below 0.01.
pub const MAX_LOGIT_SCALE: f32 = 4.605_170_2;
/// AdamW β₁ (CLIP).
const BETA1: f64 = 0.9;
/// AdamW β₂ (CLIP).
const BETA2: f64 = 0.98;
/// AdamW ε (CLIP).
const EPS: f64 = 1e-6;

/// The learning rate at `step` of `total`: linear warm-up over `warmup` steps to `peak`, then
/// a cosine decay to 0 at the last step.
pub fn lr_at(step: usize, total: usize, warmup: usize, peak: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let t = ((step - warmup) as f64 / span).min(1.0);
    0.5 * peak * (1.0 + (std::f64::consts::PI * t).cos())
}

/// Everything a training step needs besides the data.
pub struct Trainer {
    /// The model being trained (towers over the variables of `params`).
    pub clip: Clip,
    decayed: AdamW,
    not_decayed: AdamW,
    logit_scale: Var,
    augment: Augment,
    clause_dropout: f64,
    device: Device,
    /// Optimiser steps taken.
    pub step: usize,
}

impl Trainer {
    /// Optimises `params` (the variables `clip` was built from) with AdamW at `weight_decay`;
    /// images get `augment`, captions `clause_dropout` ([`super::clauses`]).
    pub fn new(
        clip: Clip,
        params: &ParamStore,
        weight_decay: f64,
        augment: Augment,
        clause_dropout: f64,
        device: &Device,
    ) -> Result<Self, PretrainError> {
        let (decay, keep): (Vec<_>, Vec<_>) = params
            .named()
            .into_iter()
            .partition(|(name, var)| decays(name, var.rank()));
        let adamw = |vars: Vec<(String, Var)>, weight_decay| {
            AdamW::new(
                vars.into_iter().map(|(_, v)| v).collect(),
                ParamsAdamW {
                    lr: 0.0,
                    beta1: BETA1,
                    beta2: BETA2,
                    eps: EPS,
                    weight_decay,
                },
            )
        };
        let logit_scale = params
            .get(LOGIT_SCALE)
            .cloned()
            .ok_or_else(|| PretrainError::Config("the model has no logit_scale".into()))?;
        Ok(Self {
            clip,
            decayed: adamw(decay, weight_decay)?,
            not_decayed: adamw(keep, 0.0)?,
            logit_scale,
            augment,
            clause_dropout,
            device: device.clone(),
            step: 0,
        })
    }

    /// The current `logit_scale`.
    pub fn logit_scale(&self) -> Result<f32, PretrainError> {
        Ok(self.logit_scale.as_tensor().to_scalar::<f32>()?)
    }

    /// One contrastive step on `batch` at learning rate `lr`; returns the loss before the step.
    pub fn step(
        &mut self,
        pairs: &Pairs,
        batch: &[usize],
        lr: f64,
        rng: &mut rand_chacha::ChaCha8Rng,
    ) -> Result<f32, PretrainError> {
        let tokenizer = self.clip.tokenizer()?;
        let pixels = pairs.pixels(batch, &self.augment, rng, &self.device)?;
        let seqs = pairs.batch_ids(batch, self.clause_dropout, tokenizer, rng)?;
        let ids = ids_tensor(&seqs, tokenizer, &self.device)?;
        let targets = soft_targets(&seqs, &self.device)?;
        let image = self.clip.vision.image_features(&pixels)?;
        let text = self.clip.text.text_features(&ids)?;
        let loss = clip_loss(&image, &text, self.logit_scale.as_tensor(), &targets)?;
        let value = loss.to_scalar::<f32>()?;
        if !value.is_finite() {
            return Err(PretrainError::Diverged {
                step: self.step,
                loss: value,
            });
        }
        let grads = loss.backward()?;
        for opt in [&mut self.decayed, &mut self.not_decayed] {
            opt.set_learning_rate(lr);
            opt.step(&grads)?;
        }
        let clamped = self
            .logit_scale
            .as_tensor()
            .detach()
            .clamp(0f32, MAX_LOGIT_SCALE)?;
        self.logit_scale.set(&clamped)?;
        self.step += 1;
        Ok(value)
    }

    /// One pass over `pairs` (epoch `epoch` of a run of `total_steps` steps, seed `seed`);
    /// returns the mean loss and the learning rate of the last step.
    pub fn epoch(
        &mut self,
        pairs: &Pairs,
        schedule: &Schedule,
        epoch: usize,
        bar: &ProgressBar,
    ) -> Result<(f64, f64), PretrainError> {
        let mut rng = Pairs::augment_rng(schedule.seed, epoch);
        let (mut sum, mut count, mut lr) = (0.0, 0usize, 0.0);
        for batch in pairs.epoch_batches(schedule.batch_size, schedule.seed, epoch) {
            lr = lr_at(
                self.step,
                schedule.total_steps,
                schedule.warmup,
                schedule.peak_lr,
            );
            let loss = self.step(pairs, &batch, lr, &mut rng)?;
            sum += f64::from(loss);
            count += 1;
            bar.inc(1);
            bar.set_message(format!("epoch {} loss {loss:.4}", epoch + 1));
        }
        Ok((sum / count.max(1) as f64, lr))
    }
}

/// The batch and learning-rate plan of a run.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Pairs per batch.
    pub batch_size: usize,
    /// Steps in the whole run.
    pub total_steps: usize,
    /// Warm-up steps.
    pub warmup: usize,
    /// Peak learning rate.
    pub peak_lr: f64,
    /// Seed of shuffling and augmentation.
    pub seed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lr_warms_up_then_decays_to_zero() {
        let peak = 1e-3;
        assert!((lr_at(0, 100, 10, peak) - 1e-4).abs() < 1e-12);
        assert!((lr_at(9, 100, 10, peak) - peak).abs() < 1e-12);
        assert!((lr_at(10, 100, 10, peak) - peak).abs() < 1e-12);
        assert!((lr_at(55, 100, 10, peak) - peak / 2.0).abs() < 1e-12);
        assert!(lr_at(99, 100, 10, peak) < 1e-5);
        assert!((MAX_LOGIT_SCALE - 100f32.ln()).abs() < 1e-6);
    }
}
