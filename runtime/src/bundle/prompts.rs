//! `prompts.safetensors`: the cached prompt features and the CRM weights in eval form.
//!
//! Every tensor of [`CrmWeights::tensor_specs`] must be present as F32 with exactly its shape
//! and only finite values, and no other tensor may be present; the error names the file and
//! the tensor.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::scoring::{CrmDims, CrmWeights, WeightsError};

/// Why `prompts.safetensors` was refused. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum PromptsError {
    /// Not a safetensors file.
    #[error("{}: not a valid safetensors file: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A required tensor is absent.
    #[error("{}: tensor {tensor} is missing (expected F32 {expected:?})", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// Its expected shape.
        expected: Vec<usize>,
    },
    /// A tensor the format does not define.
    #[error("{}: unexpected tensor {tensor}", path.display())]
    Unexpected {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
    },
    /// A tensor is not F32.
    #[error("{}: tensor {tensor} is {found}, expected F32", path.display())]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// Its dtype.
        found: String,
    },
    /// A tensor has the wrong shape.
    #[error("{}: tensor {tensor} has shape {found:?}, expected {expected:?}", path.display())]
    Shape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The manifest's shape.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// A tensor holds NaN or an infinity.
    #[error("{}: tensor {tensor} holds a non-finite value ({value}) at flat index {index}", path.display())]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// Flat index of the first bad value.
        index: usize,
        /// The value.
        value: f32,
    },
    /// The weights were refused (feature scale or lengths).
    #[error("{}: {source}", path.display())]
    Weights {
        /// The file.
        path: PathBuf,
        /// The reason.
        #[source]
        source: WeightsError,
    },
}

/// Builds the CRM weights of `dims` from the safetensors `bytes` read from `path`.
pub fn parse_prompts(
    bytes: &[u8],
    path: &Path,
    dims: CrmDims,
    feature_scale: f32,
) -> Result<CrmWeights, PromptsError> {
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| PromptsError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let specs = CrmWeights::tensor_specs(&dims);
    let known: HashSet<&str> = specs.iter().map(|(n, _)| n.as_str()).collect();
    let mut names = tensors.names();
    names.sort_unstable();
    if let Some(extra) = names.into_iter().find(|n| !known.contains(n)) {
        return Err(PromptsError::Unexpected {
            path: path.to_path_buf(),
            tensor: extra.to_string(),
        });
    }
    let fetch = |name: &str, shape: &[usize]| read_f32(&tensors, path, name, shape);
    CrmWeights::from_named(dims, feature_scale, fetch).map_err(|e| match e {
        Fetch::Prompts(e) => e,
        Fetch::Weights(source) => PromptsError::Weights {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Error type threaded through [`CrmWeights::from_named`].
enum Fetch {
    Prompts(PromptsError),
    Weights(WeightsError),
}

impl From<WeightsError> for Fetch {
    fn from(e: WeightsError) -> Self {
        Fetch::Weights(e)
    }
}

/// The F32 tensor `name` of exactly `shape`, all values finite.
fn read_f32(
    tensors: &SafeTensors<'_>,
    path: &Path,
    name: &str,
    shape: &[usize],
) -> Result<Vec<f32>, Fetch> {
    let err = |e: PromptsError| Fetch::Prompts(e);
    let view = tensors.tensor(name).map_err(|_| {
        err(PromptsError::Missing {
            path: path.to_path_buf(),
            tensor: name.to_string(),
            expected: shape.to_vec(),
        })
    })?;
    if view.dtype() != Dtype::F32 {
        return Err(err(PromptsError::Dtype {
            path: path.to_path_buf(),
            tensor: name.to_string(),
            found: format!("{:?}", view.dtype()),
        }));
    }
    if view.shape() != shape {
        return Err(err(PromptsError::Shape {
            path: path.to_path_buf(),
            tensor: name.to_string(),
            expected: shape.to_vec(),
            found: view.shape().to_vec(),
        }));
    }
    let data: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some((index, &value)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(err(PromptsError::NonFinite {
            path: path.to_path_buf(),
            tensor: name.to_string(),
            index,
            value,
        }));
    }
    Ok(data)
}
