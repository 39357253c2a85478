//! How a frame's bytes reach the disk: [`FileWriter`] in the field; tests put a writer in its
//! place that fails like a full disk.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes one saved frame.
pub trait FrameWriter {
    /// Writes `bytes` as the file `path` (its folder may not exist yet). On error nothing
    /// is left at `path`.
    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()>;
}

/// Writes frames as files: to `NAME.tmp`, synced, then renamed, so a power cut never leaves a
/// half-written frame under its real name.
#[derive(Clone, Copy, Debug, Default)]
pub struct FileWriter;

impl FrameWriter for FileWriter {
    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let tmp = temp_path(path);
        let written = write_synced(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_data()
}

/// `NAME.tmp` next to `path`.
pub(super) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}
