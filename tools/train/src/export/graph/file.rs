//! Writing a model: protobuf encoding, then an atomic replace (a temporary file in the target's
//! directory, fsync, rename, fsync of the directory), so a reader never sees half a model and a
//! crash leaves either the old file or the new one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message;
use tract_onnx::pb::ModelProto;

/// Encodes `model` and writes it to `path` atomically; returns the number of bytes written.
pub fn write_model(model: &ModelProto, path: &Path) -> std::io::Result<u64> {
    let bytes = model.encode_to_vec();
    write_atomic(path, &bytes)?;
    Ok(bytes.len() as u64)
}

/// Writes `bytes` to `path` through a temporary sibling file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_sibling(path);
    let result = write_synced(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        // Best effort: the temporary file is garbage whatever happened to it.
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    sync_parent(path)
}

fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model.onnx".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Makes the rename durable. Directories cannot be opened for syncing everywhere (Windows), so
/// only Unix does it.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    if cfg!(unix) {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.onnx");
        std::fs::write(&path, b"old").unwrap();
        let model = ModelProto {
            producer_name: "test".into(),
            ..ModelProto::default()
        };
        let n = write_model(&model, &path).unwrap();
        let back = ModelProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap();
        assert_eq!(back.producer_name, "test");
        assert_eq!(n, std::fs::metadata(&path).unwrap().len());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/m.onnx");
        assert!(write_model(&ModelProto::default(), &path).is_err());
    }
}
