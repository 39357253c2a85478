//! The per-epoch learning-rate schedule of the reference recipe (`shared/design/xrvlm-method.md`
//! §6) and of the CoOp baseline (§9). The schedule is stepped once per epoch: every step of
//! epoch `e` (0-based) uses [`Schedule::lr`]`(base_lr, e)`.
//!
//! - **Warm-up** for the first `W` epochs, either linear (XR-VLM: factor `(e+1)/W`, so 0.2, 0.4,
//!   …, 1.0 with `W = 5`) or constant (CoOp: a fixed lr such as 1e-5 for one epoch, Dassl's
//!   `ConstantWarmupScheduler`).
//! - **Cosine** afterwards: factor `0.5·(1 + cos(π·(e − W)/T))`.
//!
//! **Reference quirk, kept on purpose:** `T` is the *total* number of epochs (the reference builds
//! its cosine scheduler with `T_0 = MAX_EPOCHS`), not `total − W`. The cosine therefore never
//! reaches zero: with 100 epochs and `W = 5` the last epoch (99) runs at factor
//! `0.5·(1 + cos(0.94π)) ≈ 0.0089`. CoOp has the same property (its successor
//! `CosineAnnealingLR` gets `T_max = max_epoch`).

use serde::{Deserialize, Serialize};

/// Errors raised by [`Schedule::validate`].
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScheduleError {
    /// The schedule has no epochs.
    #[error("train/schedule.rs: a schedule needs at least one epoch")]
    NoEpochs,
    /// The warm-up is as long as or longer than the whole run.
    #[error("train/schedule.rs: warm-up of {warmup} epochs does not fit in {epochs} epochs")]
    WarmupTooLong {
        /// Warm-up epochs.
        warmup: usize,
        /// Total epochs.
        epochs: usize,
    },
    /// The constant warm-up learning rate is negative or not finite.
    #[error("train/schedule.rs: constant warm-up lr {lr} must be finite and >= 0")]
    InvalidWarmupLr {
        /// The offending lr.
        lr: f64,
    },
}

/// How the first epochs are run before the cosine decay starts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Warmup {
    /// No warm-up: cosine from epoch 0.
    None,
    /// Linear warm-up (XR-VLM): epoch `e < epochs` uses `base_lr·(e+1)/epochs`.
    Linear {
        /// Warm-up length `W` in epochs.
        epochs: usize,
    },
    /// Constant warm-up (CoOp): epoch `e < epochs` uses `lr`, whatever the base lr.
    Constant {
        /// Warm-up length `W` in epochs.
        epochs: usize,
        /// The fixed warm-up learning rate (CoOp: 1e-5).
        lr: f64,
    },
}

impl Warmup {
    /// Warm-up length `W` in epochs (0 for [`Warmup::None`]).
    pub fn epochs(&self) -> usize {
        match *self {
            Warmup::None => 0,
            Warmup::Linear { epochs } | Warmup::Constant { epochs, .. } => epochs,
        }
    }
}

/// A warm-up followed by the cosine decay described in the module doc.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Schedule {
    /// Total number of epochs; also the cosine period `T` (reference quirk).
    pub epochs: usize,
    /// The warm-up phase.
    pub warmup: Warmup,
}

/// Epochs of the reference recipe (§6, `MAX_EPOCHS`).
pub const XRVLM_EPOCHS: usize = 100;
/// Linear warm-up epochs of the reference recipe (§6).
pub const XRVLM_WARMUP_EPOCHS: usize = 5;
/// Epochs of the CoOp baseline (`cfg/naive/coop.yml`, §9).
pub const COOP_EPOCHS: usize = 200;
/// Constant warm-up lr of the CoOp baseline, used for its single warm-up epoch (§9).
pub const COOP_WARMUP_LR: f64 = 1e-5;

impl Default for Schedule {
    fn default() -> Self {
        Self::xrvlm()
    }
}

impl Schedule {
    /// The reference XR-VLM schedule: 100 epochs, 5 of linear warm-up, then cosine with T = 100.
    pub fn xrvlm() -> Self {
        Self::linear_warmup_cosine(XRVLM_EPOCHS, XRVLM_WARMUP_EPOCHS)
    }

    /// The CoOp schedule: 200 epochs, 1 epoch at 1e-5, then cosine with T = 200.
    pub fn coop() -> Self {
        Self::constant_warmup_cosine(COOP_EPOCHS, 1, COOP_WARMUP_LR)
    }

    /// `epochs` in total, the first `warmup` of them with a linear warm-up.
    pub fn linear_warmup_cosine(epochs: usize, warmup: usize) -> Self {
        let warmup = if warmup == 0 {
            Warmup::None
        } else {
            Warmup::Linear { epochs: warmup }
        };
        Self { epochs, warmup }
    }

    /// `epochs` in total, the first `warmup` of them at the constant `warmup_lr`.
    pub fn constant_warmup_cosine(epochs: usize, warmup: usize, warmup_lr: f64) -> Self {
        let warmup = if warmup == 0 {
            Warmup::None
        } else {
            Warmup::Constant {
                epochs: warmup,
                lr: warmup_lr,
            }
        };
        Self { epochs, warmup }
    }

    /// Checks that there is at least one epoch, that the warm-up leaves room for the cosine
    /// phase and that a constant warm-up lr is finite and non-negative.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        if self.epochs == 0 {
            return Err(ScheduleError::NoEpochs);
        }
        let warmup = self.warmup.epochs();
        if warmup >= self.epochs {
            return Err(ScheduleError::WarmupTooLong {
                warmup,
                epochs: self.epochs,
            });
        }
        if let Warmup::Constant { lr, .. } = self.warmup {
            if !lr.is_finite() || lr < 0.0 {
                return Err(ScheduleError::InvalidWarmupLr { lr });
            }
        }
        Ok(())
    }

    /// The cosine factor `0.5·(1 + cos(π·(e − W)/T))` for an epoch after the warm-up
    /// (`T` = total epochs). Epochs inside the warm-up give 1.
    pub fn cosine_factor(&self, epoch: usize) -> f64 {
        let since = epoch.saturating_sub(self.warmup.epochs()) as f64;
        let period = self.epochs.max(1) as f64;
        0.5 * (1.0 + (std::f64::consts::PI * since / period).cos())
    }

    /// Learning rate for every step of 0-based `epoch`, given the optimiser's base lr.
    pub fn lr(&self, base_lr: f64, epoch: usize) -> f64 {
        match self.warmup {
            Warmup::Linear { epochs } if epoch < epochs => {
                base_lr * (epoch + 1) as f64 / epochs as f64
            }
            Warmup::Constant { epochs, lr } if epoch < epochs => lr,
            _ => base_lr * self.cosine_factor(epoch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn xrvlm_schedule_matches_reference_figures() {
        let s = Schedule::xrvlm();
        s.validate().unwrap();
        let factors: Vec<f64> = (0..6).map(|e| s.lr(1.0, e)).collect();
        for (got, want) in factors.iter().zip([0.2, 0.4, 0.6, 0.8, 1.0, 1.0]) {
            assert!(close(*got, want), "{factors:?}");
        }
        // Epoch 99 of 100: 0.5·(1 + cos(0.94π)) ≈ 0.00886, not 0 (T = total epochs).
        let last = s.lr(1.0, 99);
        assert!((last - 0.008856).abs() < 1e-6, "{last}");
        assert!(close(s.lr(2e-3, 0), 4e-4));
        // Halfway through the cosine (e - W = T/2) the factor is 0.5.
        assert!(close(s.lr(1.0, 55), 0.5));
    }

    #[test]
    fn coop_schedule_uses_constant_warmup_then_full_lr() {
        let s = Schedule::coop();
        s.validate().unwrap();
        assert!(close(s.lr(2e-3, 0), 1e-5));
        assert!(close(s.lr(2e-3, 1), 2e-3));
        let want = 2e-3 * 0.5 * (1.0 + (std::f64::consts::PI * 198.0 / 200.0).cos());
        assert!(close(s.lr(2e-3, 199), want));
        assert!(s.lr(2e-3, 199) > 0.0);
    }

    #[test]
    fn no_warmup_is_plain_cosine_and_monotone() {
        let s = Schedule::linear_warmup_cosine(10, 0);
        assert_eq!(s.warmup, Warmup::None);
        assert!(close(s.lr(1.0, 0), 1.0));
        let lrs: Vec<f64> = (0..10).map(|e| s.lr(1.0, e)).collect();
        assert!(lrs.windows(2).all(|w| w[1] < w[0]), "{lrs:?}");
    }

    #[test]
    fn validate_rejects_degenerate_schedules() {
        assert_eq!(
            Schedule::linear_warmup_cosine(0, 0).validate(),
            Err(ScheduleError::NoEpochs)
        );
        assert_eq!(
            Schedule::linear_warmup_cosine(5, 5).validate(),
            Err(ScheduleError::WarmupTooLong {
                warmup: 5,
                epochs: 5
            })
        );
        let err = Schedule::constant_warmup_cosine(5, 1, -1.0).validate();
        assert_eq!(err, Err(ScheduleError::InvalidWarmupLr { lr: -1.0 }));
    }

    #[test]
    fn schedule_round_trips_through_json() {
        for s in [
            Schedule::xrvlm(),
            Schedule::coop(),
            Schedule::linear_warmup_cosine(3, 0),
        ] {
            let text = serde_json::to_string(&s).unwrap();
            assert_eq!(
                serde_json::from_str::<Schedule>(&text).unwrap(),
                s,
                "{text}"
            );
        }
        let text = serde_json::to_string(&Schedule::xrvlm()).unwrap();
        assert_eq!(
            text,
            r#"{"epochs":100,"warmup":{"kind":"linear","epochs":5}}"#
        );
    }
}
