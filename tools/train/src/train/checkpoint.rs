//! Checkpoints: one safetensors file holding the trainable tensors (`param.*`), the batch-norm
//! buffers (`buffer.*`) and the optimiser state (`optim.*`), with the run's configuration and the
//! number of completed epochs in the safetensors metadata. The frozen CLIP weights are not
//! copied: the run configuration names the backbone directory.
//!
//! A checkpoint is written to a temporary file, synced, then renamed over the old one, so a kill
//! at any moment leaves either the previous checkpoint or the new one, never a torn file.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The format tag written into every checkpoint.
pub const FORMAT: &str = "xrvlm-train-checkpoint/1";

const KEY_FORMAT: &str = "format";
const KEY_RUN: &str = "run";
const KEY_EPOCH: &str = "epochs_done";

/// Errors reading or writing a checkpoint; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a checkpoint we understand.
    #[error("{path}: {msg}")]
    Format {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
}

/// A checkpoint read back from disk.
pub struct Checkpoint<R> {
    /// The run configuration it was written with.
    pub run: R,
    /// Completed epochs.
    pub epochs_done: usize,
    /// Every tensor, by its full name (`param.…`, `buffer.…`, `optim.…`).
    pub tensors: BTreeMap<String, Tensor>,
}

/// Writes a checkpoint atomically.
pub fn save<R: Serialize>(
    path: &Path,
    run: &R,
    epochs_done: usize,
    tensors: &[(String, Tensor)],
) -> Result<(), CheckpointError> {
    let fmt = |msg: String| CheckpointError::Format {
        path: path.to_path_buf(),
        msg,
    };
    let run_json = serde_json::to_string(run).map_err(|e| fmt(format!("run config: {e}")))?;
    let metadata = HashMap::from([
        (KEY_FORMAT.to_string(), FORMAT.to_string()),
        (KEY_RUN.to_string(), run_json),
        (KEY_EPOCH.to_string(), epochs_done.to_string()),
    ]);
    let contiguous = tensors
        .iter()
        .map(|(n, t)| Ok((n.clone(), t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<candle_core::Result<Vec<_>>>()
        .map_err(|e| fmt(e.to_string()))?;
    let bytes = safetensors::serialize(
        contiguous.iter().map(|(n, t)| (n.as_str(), t)),
        Some(metadata),
    )
    .map_err(|e| fmt(e.to_string()))?;
    write_atomically(path, &bytes).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    // Persist the rename itself.
    std::fs::File::open(dir)?.sync_all()
}

/// Reads a checkpoint onto `device`.
pub fn load<R: DeserializeOwned>(
    path: &Path,
    device: &Device,
) -> Result<Checkpoint<R>, CheckpointError> {
    let fmt = |msg: String| CheckpointError::Format {
        path: path.to_path_buf(),
        msg,
    };
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| fmt(format!("not a safetensors file: {e}")))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| fmt(format!("unreadable header: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    match meta.get(KEY_FORMAT) {
        Some(f) if f == FORMAT => {}
        Some(f) => return Err(fmt(format!("format {f:?}, expected {FORMAT:?}"))),
        None => {
            return Err(fmt(format!(
                "no \"{KEY_FORMAT}\" metadata: not an xrvlm-train checkpoint (a CLIP backbone goes in --clip)"
            )))
        }
    }
    let run_json = meta
        .get(KEY_RUN)
        .ok_or_else(|| fmt(format!("metadata has no \"{KEY_RUN}\"")))?;
    let run = serde_json::from_str(run_json).map_err(|e| fmt(format!("run config: {e}")))?;
    let epochs_done = meta
        .get(KEY_EPOCH)
        .and_then(|e| e.parse().ok())
        .ok_or_else(|| fmt(format!("metadata \"{KEY_EPOCH}\" missing or not a number")))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let t = candle_core::safetensors::Load::load(&view, device)
            .map_err(|e| fmt(format!("tensor {name}: {e}")))?;
        tensors.insert(name, t);
    }
    Ok(Checkpoint {
        run,
        epochs_done,
        tensors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Run {
        lr: f64,
    }

    #[test]
    fn round_trip_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.safetensors");
        let t = Tensor::new(&[1f32, 2.0, 3.0], &Device::Cpu).unwrap();
        save(&path, &Run { lr: 0.5 }, 3, &[("param.a".into(), t)]).unwrap();
        let ck: Checkpoint<Run> = load(&path, &Device::Cpu).unwrap();
        assert_eq!(ck.run, Run { lr: 0.5 });
        assert_eq!(ck.epochs_done, 3);
        assert_eq!(
            ck.tensors["param.a"].to_vec1::<f32>().unwrap(),
            vec![1.0, 2.0, 3.0]
        );

        std::fs::write(&path, b"garbage").unwrap();
        let err = load::<Run>(&path, &Device::Cpu).err().unwrap().to_string();
        assert!(
            err.contains("ckpt.safetensors") && err.contains("not a safetensors"),
            "{err}"
        );
        let plain = dir.path().join("plain.safetensors");
        candle_core::safetensors::save(
            &HashMap::from([(
                "w".to_string(),
                Tensor::zeros(2, candle_core::DType::F32, &Device::Cpu).unwrap(),
            )]),
            &plain,
        )
        .unwrap();
        let err = load::<Run>(&plain, &Device::Cpu).err().unwrap().to_string();
        assert!(err.contains("not an xrvlm-train checkpoint"), "{err}");
    }
}
