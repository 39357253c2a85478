//! Named tensors owned by a model: trainable parameters (candle `Var`s) and non-trainable
//! buffers (batch-norm running statistics), created with seeded initialisers so the same seed
//! gives the same model, and saved to / loaded from safetensors by name.
//!
//! candle cannot seed its CPU random generator, so initial values are drawn here with ChaCha.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr_free::normal;

/// An ordered map from names to variables, with a seeded initialiser.
pub struct ParamStore {
    vars: BTreeMap<String, Var>,
    rng: ChaCha8Rng,
    device: Device,
}

impl ParamStore {
    /// An empty store whose initialisers draw from `seed`.
    pub fn new(seed: u64, device: &Device) -> Self {
        Self {
            vars: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            device: device.clone(),
        }
    }

    /// The device the variables live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    fn insert(&mut self, name: &str, values: Vec<f32>, shape: Shape) -> Result<Var> {
        let var = Var::from_tensor(&Tensor::from_vec(values, shape, &self.device)?)?;
        if self.vars.insert(name.to_string(), var.clone()).is_some() {
            candle_core::bail!("parameter {name} defined twice");
        }
        Ok(var)
    }

    /// A variable filled with `value`.
    pub fn constant<S: Into<Shape>>(&mut self, name: &str, shape: S, value: f32) -> Result<Var> {
        let shape = shape.into();
        self.insert(name, vec![value; shape.elem_count()], shape)
    }

    /// A variable drawn from N(0, std²).
    pub fn normal<S: Into<Shape>>(&mut self, name: &str, shape: S, std: f32) -> Result<Var> {
        let shape = shape.into();
        let values = (0..shape.elem_count())
            .map(|_| normal(&mut self.rng) * std)
            .collect();
        self.insert(name, values, shape)
    }

    /// A variable drawn from U(−bound, bound): PyTorch's default for `nn.Linear` / `nn.Conv1d`
    /// weights and biases with `bound = 1/√fan_in`.
    pub fn uniform<S: Into<Shape>>(&mut self, name: &str, shape: S, bound: f32) -> Result<Var> {
        let shape = shape.into();
        let values = (0..shape.elem_count())
            .map(|_| self.rng.random_range(-bound..=bound))
            .collect();
        self.insert(name, values, shape)
    }

    /// A variable holding a copy of `t`.
    pub fn from_tensor(&mut self, name: &str, t: &Tensor) -> Result<Var> {
        let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        self.insert(name, values, t.shape().clone())
    }

    /// The variable `name`, if defined.
    pub fn get(&self, name: &str) -> Option<&Var> {
        self.vars.get(name)
    }

    /// All variables by name, in name order.
    pub fn named(&self) -> Vec<(String, Var)> {
        self.vars
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }

    /// Number of scalar values held.
    pub fn num_values(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }

    /// Overwrites every variable from `tensors` (by name). Every variable must be present with
    /// its exact shape; `what` names the source in errors.
    pub fn load(&self, tensors: &BTreeMap<String, Tensor>, prefix: &str, what: &str) -> Result<()> {
        for (name, var) in &self.vars {
            let key = format!("{prefix}{name}");
            let t = tensors.get(&key).ok_or_else(|| {
                candle_core::Error::Msg(format!("{what}: tensor {key} is missing"))
            })?;
            if t.dims() != var.dims() {
                candle_core::bail!(
                    "{what}: tensor {key} has shape {:?}, expected {:?}",
                    t.dims(),
                    var.dims()
                );
            }
            var.set(&t.to_dtype(DType::F32)?.to_device(&self.device)?)?;
        }
        Ok(())
    }
}

/// A standard normal draw without an extra dependency (Box–Muller).
pub(crate) mod rand_distr_free {
    use rand::Rng;

    pub fn normal(rng: &mut impl Rng) -> f32 {
        let u1: f64 = rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = rng.random::<f64>();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_values_and_duplicates_rejected() {
        let mut a = ParamStore::new(7, &Device::Cpu);
        let mut b = ParamStore::new(7, &Device::Cpu);
        let va = a.normal("w", (3, 4), 0.02).unwrap();
        let vb = b.normal("w", (3, 4), 0.02).unwrap();
        assert_eq!(
            va.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vb.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        assert!(a.constant("w", 2, 1.0).is_err());
        let u = a.uniform("u", 1000, 0.5).unwrap();
        let max = u.abs().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(max <= 0.5);
    }

    #[test]
    fn load_checks_names_and_shapes() {
        let mut s = ParamStore::new(1, &Device::Cpu);
        s.constant("a", 3, 0.0).unwrap();
        let mut map = BTreeMap::new();
        let err = s.load(&map, "p.", "ckpt.safetensors").unwrap_err();
        assert!(err.to_string().contains("p.a is missing"), "{err}");
        map.insert(
            "p.a".into(),
            Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap(),
        );
        let err = s.load(&map, "p.", "ckpt.safetensors").unwrap_err();
        assert!(err.to_string().contains("shape"), "{err}");
        map.insert(
            "p.a".into(),
            Tensor::ones(3, DType::F32, &Device::Cpu).unwrap(),
        );
        s.load(&map, "p.", "ckpt.safetensors").unwrap();
        assert_eq!(s.get("a").unwrap().to_vec1::<f32>().unwrap(), vec![1.0; 3]);
    }
}
