//! The tensors of a `model.safetensors` checkpoint, fetched by HF name with their shape checked,
//! so that a missing or mis-shaped tensor is an error naming the file, the tensor and the shapes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::ClipError;

/// The tensors of one checkpoint file on the target device, handed out in one dtype.
pub struct Weights {
    path: PathBuf,
    tensors: HashMap<String, Tensor>,
    dtype: DType,
}

impl Weights {
    /// Reads every tensor of a safetensors file.
    pub fn load(path: &Path, device: &Device) -> Result<Self, ClipError> {
        if !path.exists() {
            return Err(ClipError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
            });
        }
        let tensors =
            candle_core::safetensors::load(path, device).map_err(|e| ClipError::Safetensors {
                path: path.to_path_buf(),
                msg: e.to_string(),
            })?;
        Ok(Self::from_tensors(path, tensors))
    }

    /// Wraps tensors already in memory; `path` names them in errors.
    pub fn from_tensors(path: &Path, tensors: HashMap<String, Tensor>) -> Self {
        Self {
            path: path.to_path_buf(),
            tensors,
            dtype: DType::F32,
        }
    }

    /// The same file's tensors under other names (a layout's renaming, [`super::open_clip`]).
    pub fn map_tensors(
        self,
        f: impl FnOnce(HashMap<String, Tensor>) -> candle_core::Result<HashMap<String, Tensor>>,
    ) -> Result<Self, ClipError> {
        Ok(Self {
            tensors: f(self.tensors)?,
            ..self
        })
    }

    /// Returns tensors in `dtype` (f32 by default; bf16 for mixed precision on CUDA).
    pub fn with_dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    /// Every tensor by name, as stored (before any dtype conversion).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Tensor)> {
        self.tensors.iter()
    }

    /// The file these weights came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, name: &str, msg: String) -> ClipError {
        ClipError::Tensor {
            path: self.path.clone(),
            name: name.to_string(),
            msg,
        }
    }

    /// The tensor `name`, which must have exactly `shape`, in the weights' dtype.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor, ClipError> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| self.err(name, format!("missing (expected shape {shape:?})")))?;
        if t.dims() != shape {
            return Err(self.err(
                name,
                format!("has shape {:?}, expected {shape:?}", t.dims()),
            ));
        }
        self.to_f32(name, t)
    }

    /// The tensor `name` if present (any shape), in the weights' dtype.
    pub fn get_optional(&self, name: &str) -> Result<Option<Tensor>, ClipError> {
        match self.tensors.get(name) {
            Some(t) => Ok(Some(self.to_f32(name, t)?)),
            None => Ok(None),
        }
    }

    fn to_f32(&self, name: &str, t: &Tensor) -> Result<Tensor, ClipError> {
        match t.dtype() {
            d if d == self.dtype => Ok(t.clone()),
            DType::F32 | DType::F16 | DType::BF16 | DType::F64 => Ok(t.to_dtype(self.dtype)?),
            other => Err(self.err(
                name,
                format!("has dtype {other:?}, expected a floating-point tensor"),
            )),
        }
    }
}
