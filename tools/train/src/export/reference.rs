//! Reference data for checking the exported graphs in other runtimes (`tools/check_onnx.py`):
//! an input batch and our outputs for it, as `.npy` files in one directory.
//!
//! | file | content |
//! |---|---|
//! | `input.npy` | the preprocessed images `(N, 3, S, S)` |
//! | `parts.fp32.npy` | the training crate's `parts` (candle, `Model::parts` in eval mode) |
//! | `parts.int8.npy` | tract's `parts` from the int8 graph, when one is given |

use std::path::Path;

use candle_core::{DType, Tensor};

use super::npy::write_npy;
use super::tract_run::TractGraph;
use super::ExportError;
use crate::model::Model;

/// Writes `input.npy`, `parts.fp32.npy` and, with `int8_graph` (a written
/// `visual.int8.onnx`), `parts.int8.npy` into `dir`.
pub fn write_reference(
    model: &Model,
    images: &Tensor,
    dir: &Path,
    int8_graph: Option<&Path>,
) -> Result<(), ExportError> {
    save(dir, "input.npy", images)?;
    let streams = model.streams(images)?;
    let parts = model
        .parts(&streams, false)?
        .ok_or(ExportError::NoParts(model.config.kind))?;
    save(dir, "parts.fp32.npy", &parts)?;
    if let Some(path) = int8_graph {
        let proto = read_proto(path)?;
        let out = TractGraph::load(&proto, "int8")?
            .run(images)?
            .swap_remove(0);
        write(dir, "parts.int8.npy", &out.dims, &out.data)?;
    }
    Ok(())
}

fn read_proto(path: &Path) -> Result<tract_onnx::pb::ModelProto, ExportError> {
    use prost::Message;
    let bytes = std::fs::read(path).map_err(|source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    tract_onnx::pb::ModelProto::decode(bytes.as_slice()).map_err(|e| ExportError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

fn save(dir: &Path, name: &str, t: &Tensor) -> Result<(), ExportError> {
    let data = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    write(dir, name, t.dims(), &data)
}

fn write(dir: &Path, name: &str, dims: &[usize], data: &[f32]) -> Result<(), ExportError> {
    let path = dir.join(name);
    write_npy(&path, dims, data).map_err(|source| ExportError::Io { path, source })
}
