//! SGD with momentum and weight decay, with the exact semantics of PyTorch's `torch.optim.SGD`
//! (dampening 0, `nesterov=False`, `maximize=False`), the optimiser of the reference recipe
//! (`shared/design/xrvlm-method.md` §6: lr 2e-3, momentum 0.9, weight decay 1e-4, no clipping).
//!
//! This file owns the update rule, the per-variable momentum buffers and their checkpoint form.
//! For every trainable variable `p` that received a gradient:
//!
//! ```text
//! g   = grad + weight_decay · p
//! buf = g                         (first step of this variable)
//! buf = momentum · buf + g        (later steps)
//! p  -= lr · buf                  (with momentum 0: p -= lr · g, and no buffer is kept)
//! ```
//!
//! As in torch, the buffer does not include the learning rate, so changing the lr from one epoch
//! to the next (the schedule of [`super::schedule`]) does not rescale the accumulated velocity.
//! Variables without a gradient in a step are left untouched and their buffer is not decayed.
//!
//! candle's own `candle_nn::SGD` has no momentum, hence this module.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

/// Prefix of the checkpoint names of the momentum buffers: `momentum.<variable name>`.
pub const MOMENTUM_PREFIX: &str = "momentum.";

/// Errors raised while building an [`Sgd`] or restoring its state.
#[derive(Debug, thiserror::Error)]
pub enum SgdError {
    /// A hyper-parameter is negative or not finite.
    #[error("train/sgd.rs: invalid SGD config: {field} = {value} (must be finite and >= 0)")]
    InvalidConfig {
        /// Name of the offending field.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// Two trainable variables share a name, so their buffers could not be told apart.
    #[error("train/sgd.rs: trainable variable {name:?} is listed twice")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// A trainable variable is not floating point.
    #[error(
        "train/sgd.rs: trainable variable {name:?} has dtype {dtype:?}, SGD needs a float dtype"
    )]
    NotFloat {
        /// The variable name.
        name: String,
        /// Its dtype.
        dtype: candle_core::DType,
    },
    /// The checkpoint holds a momentum buffer for a variable this optimiser does not train.
    #[error(
        "train/sgd.rs: checkpoint has momentum buffer {key:?} but no trainable variable is named {name:?}"
    )]
    UnknownBuffer {
        /// The checkpoint key.
        key: String,
        /// The variable name it refers to.
        name: String,
    },
    /// A momentum buffer in the checkpoint does not have the shape of its variable.
    #[error(
        "train/sgd.rs: momentum buffer {key:?} has shape {found:?}, but variable {name:?} has shape {expected:?}"
    )]
    ShapeMismatch {
        /// The checkpoint key.
        key: String,
        /// The variable name.
        name: String,
        /// Shape of the variable.
        expected: Vec<usize>,
        /// Shape found in the checkpoint.
        found: Vec<usize>,
    },
    /// A tensor operation failed while converting a loaded buffer.
    #[error("train/sgd.rs: converting momentum buffer {key:?}: {source}")]
    Tensor {
        /// The checkpoint key.
        key: String,
        /// The candle error.
        source: candle_core::Error,
    },
}

/// Hyper-parameters of [`Sgd`]. The defaults are the reference recipe (§6).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SgdConfig {
    /// Base learning rate; the schedule multiplies it per epoch and passes the result to
    /// [`Sgd::step`].
    pub lr: f64,
    /// Momentum factor (torch `momentum`); 0 disables the buffers.
    pub momentum: f64,
    /// L2 penalty added to the gradient (torch `weight_decay`, not decoupled).
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            lr: 2e-3,
            momentum: 0.9,
            weight_decay: 1e-4,
        }
    }
}

impl SgdConfig {
    /// Checks that every hyper-parameter is finite and non-negative.
    pub fn validate(&self) -> Result<(), SgdError> {
        for (field, value) in [
            ("lr", self.lr),
            ("momentum", self.momentum),
            ("weight_decay", self.weight_decay),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(SgdError::InvalidConfig { field, value });
            }
        }
        Ok(())
    }
}

/// One trainable variable and its momentum buffer (`None` until its first gradient).
#[derive(Debug)]
struct Param {
    name: String,
    var: Var,
    momentum: Option<Tensor>,
}

/// SGD with momentum and weight decay over named trainable variables (torch semantics).
#[derive(Debug)]
pub struct Sgd {
    config: SgdConfig,
    params: Vec<Param>,
}

impl Sgd {
    /// Builds the optimiser over `vars` (name, variable). Names must be unique and every variable
    /// must be floating point.
    pub fn new(vars: Vec<(String, Var)>, config: SgdConfig) -> Result<Self, SgdError> {
        config.validate()?;
        let mut seen = std::collections::HashSet::new();
        let mut params = Vec::with_capacity(vars.len());
        for (name, var) in vars {
            if !seen.insert(name.clone()) {
                return Err(SgdError::DuplicateName { name });
            }
            if !var.dtype().is_float() {
                return Err(SgdError::NotFloat {
                    name,
                    dtype: var.dtype(),
                });
            }
            params.push(Param {
                name,
                var,
                momentum: None,
            });
        }
        Ok(Self { config, params })
    }

    /// The hyper-parameters this optimiser was built with.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// Names of the trainable variables, in the order given to [`Sgd::new`].
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(|p| p.name.as_str())
    }

    /// Number of trainable scalars (sum of the element counts of all variables).
    pub fn num_parameters(&self) -> usize {
        self.params.iter().map(|p| p.var.elem_count()).sum()
    }

    /// Applies one update with learning rate `lr` (the scheduled value, not `config.lr`).
    /// Variables with no gradient in `grads` are skipped, as torch does.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> candle_core::Result<()> {
        let SgdConfig {
            momentum,
            weight_decay,
            ..
        } = self.config;
        for param in &mut self.params {
            let Some(grad) = grads.get(param.var.as_tensor()) else {
                continue;
            };
            // Detach everything: the buffer must not keep a backprop graph alive across steps.
            let p = param.var.as_tensor().detach();
            let grad = grad.detach();
            let g = if weight_decay != 0.0 {
                (grad + (&p * weight_decay)?)?
            } else {
                grad
            };
            let direction = if momentum != 0.0 {
                let buf = match param.momentum.take() {
                    // `copy` so that the buffer never shares storage with a gradient that may
                    // alias another variable's storage (e.g. d(w·x)/dx = w).
                    None => g.copy()?,
                    Some(buf) => ((buf * momentum)? + g)?,
                };
                param.momentum = Some(buf.clone());
                buf
            } else {
                g
            };
            param.var.set(&(p - (direction * lr)?)?)?;
        }
        Ok(())
    }

    /// The momentum buffers for a checkpoint, named `momentum.<variable name>`, in variable order.
    /// Variables that have not received a gradient yet have no buffer and are absent.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .filter_map(|p| {
                p.momentum
                    .as_ref()
                    .map(|buf| (format!("{MOMENTUM_PREFIX}{}", p.name), buf.clone()))
            })
            .collect()
    }

    /// Restores momentum buffers saved by [`Sgd::state`]. Keys without the `momentum.` prefix are
    /// ignored, so a whole checkpoint map may be passed. A variable with no saved buffer starts
    /// afresh (torch does the same for parameters missing from the state). Buffers are converted
    /// to the dtype and device of their variable. Nothing is changed unless every buffer is valid.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>) -> Result<(), SgdError> {
        let index: HashMap<&str, usize> = self
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i))
            .collect();
        let mut loaded = Vec::new();
        for (key, tensor) in tensors {
            let Some(name) = key.strip_prefix(MOMENTUM_PREFIX) else {
                continue;
            };
            let Some(&i) = index.get(name) else {
                return Err(SgdError::UnknownBuffer {
                    key: key.clone(),
                    name: name.to_string(),
                });
            };
            let var = &self.params[i].var;
            if tensor.dims() != var.dims() {
                return Err(SgdError::ShapeMismatch {
                    key: key.clone(),
                    name: name.to_string(),
                    expected: var.dims().to_vec(),
                    found: tensor.dims().to_vec(),
                });
            }
            let buf = tensor
                .to_device(var.device())
                .and_then(|t| t.to_dtype(var.dtype()))
                .and_then(|t| t.detach().copy())
                .map_err(|source| SgdError::Tensor {
                    key: key.clone(),
                    source,
                })?;
            loaded.push((i, buf));
        }
        for (i, buf) in loaded {
            self.params[i].momentum = Some(buf);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn quadratic_step(opt: &mut Sgd, p: &Var, lr: f64) -> candle_core::Result<()> {
        // loss = 0.5 · Σ p², so grad = p.
        let loss = (p.as_tensor().sqr()?.sum_all()? * 0.5)?;
        opt.step(&loss.backward()?, lr)
    }

    #[test]
    fn three_steps_match_hand_computed_torch_values() -> anyhow::Result<()> {
        let p = Var::from_slice(&[1.0f64, -2.0], 2, &Device::Cpu)?;
        let untouched = Var::from_slice(&[5.0f64], 1, &Device::Cpu)?;
        let config = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.2,
        };
        let mut opt = Sgd::new(
            vec![
                ("p".into(), p.clone()),
                ("frozen".into(), untouched.clone()),
            ],
            config,
        )?;
        // Hand computation for p0 = 1 (the -2 element is the same times -2), g = grad + 0.2·p:
        // 1: g = 1.2·1      = 1.2,     buf = 1.2,                     p = 1 - 0.12          = 0.88
        // 2: g = 1.2·0.88   = 1.056,   buf = 1.08 + 1.056 = 2.136,    p = 0.88 - 0.2136     = 0.6664
        // 3: g = 1.2·0.6664 = 0.79968, buf = 1.9224 + 0.79968 = 2.72208,
        //                                                             p = 0.6664 - 0.272208 = 0.394192
        let expected = [(0.88, 1.2), (0.6664, 2.136), (0.394192, 2.72208)];
        for (p_expected, buf_expected) in expected {
            quadratic_step(&mut opt, &p, 0.1)?;
            let got = p.as_tensor().to_vec1::<f64>()?;
            assert!((got[0] - p_expected).abs() < 1e-12, "{got:?}");
            assert!((got[1] + 2.0 * p_expected).abs() < 1e-12, "{got:?}");
            let state = opt.state();
            assert_eq!(state.len(), 1, "only p has a buffer");
            assert_eq!(state[0].0, "momentum.p");
            let buf = state[0].1.to_vec1::<f64>()?;
            assert!((buf[0] - buf_expected).abs() < 1e-12, "{buf:?}");
        }
        assert_eq!(untouched.as_tensor().to_vec1::<f64>()?, vec![5.0]);
        Ok(())
    }

    #[test]
    fn zero_momentum_is_plain_sgd_without_buffers() -> anyhow::Result<()> {
        let p = Var::from_slice(&[1.0f32], 1, &Device::Cpu)?;
        let config = SgdConfig {
            lr: 0.5,
            momentum: 0.0,
            weight_decay: 0.0,
        };
        let mut opt = Sgd::new(vec![("p".into(), p.clone())], config)?;
        quadratic_step(&mut opt, &p, 0.5)?;
        quadratic_step(&mut opt, &p, 0.5)?;
        assert_eq!(p.as_tensor().to_vec1::<f32>()?, vec![0.25]);
        assert!(opt.state().is_empty());
        Ok(())
    }

    #[test]
    fn restored_state_continues_like_an_uninterrupted_run() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let a = Var::from_slice(&[1.0f32, 3.0], 2, &dev)?;
        let mut opt_a = Sgd::new(vec![("w".into(), a.clone())], SgdConfig::default())?;
        quadratic_step(&mut opt_a, &a, 0.01)?;
        let saved: HashMap<String, Tensor> = opt_a.state().into_iter().collect();
        quadratic_step(&mut opt_a, &a, 0.01)?;

        let b = Var::from_slice(&[1.0f32, 3.0], 2, &dev)?;
        let mut opt_b = Sgd::new(vec![("w".into(), b.clone())], SgdConfig::default())?;
        quadratic_step(&mut opt_b, &b, 0.01)?;
        let mut opt_c = Sgd::new(vec![("w".into(), b.clone())], SgdConfig::default())?;
        opt_c.load_state(&saved)?;
        quadratic_step(&mut opt_c, &b, 0.01)?;
        assert_eq!(
            a.as_tensor().to_vec1::<f32>()?,
            b.as_tensor().to_vec1::<f32>()?
        );
        Ok(())
    }

    #[test]
    fn load_state_rejects_wrong_shape_and_unknown_names() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let w = Var::zeros((2, 3), DType::F32, &dev)?;
        let mut opt = Sgd::new(vec![("head.w".into(), w)], SgdConfig::default())?;
        let mut map = HashMap::new();
        map.insert(
            "momentum.head.w".to_string(),
            Tensor::zeros(6, DType::F32, &dev)?,
        );
        let err = opt.load_state(&map).unwrap_err();
        assert!(matches!(err, SgdError::ShapeMismatch { .. }), "{err}");
        assert!(err.to_string().contains("sgd.rs"), "{err}");
        assert!(err.to_string().contains("[2, 3]"), "{err}");

        let mut map = HashMap::new();
        map.insert(
            "momentum.other".to_string(),
            Tensor::zeros(1, DType::F32, &dev)?,
        );
        map.insert("head.w".to_string(), Tensor::zeros(1, DType::F32, &dev)?);
        let err = opt.load_state(&map).unwrap_err();
        assert!(matches!(err, SgdError::UnknownBuffer { .. }), "{err}");
        assert!(opt.state().is_empty(), "a failed load changes nothing");
        Ok(())
    }

    #[test]
    fn new_rejects_duplicates_and_bad_config() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let v = Var::zeros(1, DType::F32, &dev)?;
        let dup = Sgd::new(
            vec![("x".into(), v.clone()), ("x".into(), v.clone())],
            SgdConfig::default(),
        );
        assert!(matches!(dup, Err(SgdError::DuplicateName { .. })));
        let bad = SgdConfig {
            lr: f64::NAN,
            ..SgdConfig::default()
        };
        assert!(matches!(
            Sgd::new(vec![], bad),
            Err(SgdError::InvalidConfig { field: "lr", .. })
        ));
        assert_eq!(
            SgdConfig::default(),
            SgdConfig {
                lr: 2e-3,
                momentum: 0.9,
                weight_decay: 1e-4
            }
        );
        Ok(())
    }
}
