//! The JSONL metrics log of a training run: one JSON object ([`Record`]) per line, appended after
//! every training epoch and every evaluation, written so that a power cut never costs more than
//! the line being written.
//!
//! - [`MetricsLog::append`] writes a whole line with one `write` call, then `sync_data`s it.
//! - [`read_records`] skips a torn or corrupt **last** line (the one a power cut can leave half
//!   written, or filled with NUL bytes by the file system) and counts it; a corrupt line anywhere
//!   else is an error naming the file and the line, because it is not what a power cut produces.
//! - [`MetricsLog::open`] removes such a torn last line before appending, so that the next record
//!   does not get glued to it and turn it into a corrupt middle line.
//! - [`truncate_after_epoch`] drops the records of an interrupted epoch before a resumed run
//!   re-runs it; it rewrites the file atomically (temporary file, `sync_data`, rename).
//!
//! A loss that became NaN is written by serde_json as `null` and read back as NaN, so a diverged
//! run still leaves a readable log.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use super::metrics::Evaluation;

/// Errors of the metrics log.
#[derive(Debug, thiserror::Error)]
pub enum MetricsLogError {
    /// A file-system operation failed.
    #[error("train/metrics_log.rs: cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done ("open", "read", "write", …).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A line that is not the last one does not hold a valid record.
    #[error("train/metrics_log.rs: {}:{line}: corrupt record (not the last line, so not a torn write): {source}", path.display())]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A record could not be turned into JSON.
    #[error("train/metrics_log.rs: cannot serialise record for {}: {source}", path.display())]
    Serialize {
        /// The log file.
        path: PathBuf,
        /// The serde error.
        source: serde_json::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> MetricsLogError + 'a {
    move |source| MetricsLogError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Which phase a [`Record`] summarises.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// A training epoch (or a window of training steps).
    Train,
    /// An evaluation pass.
    Eval,
}

/// One line of the metrics log.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Record {
    /// Training or evaluation.
    pub kind: RecordKind,
    /// 0-based epoch the record belongs to.
    pub epoch: usize,
    /// Global optimiser step count when the record was written.
    pub step: usize,
    /// Learning rate in effect during the epoch.
    #[serde(deserialize_with = "null_as_nan")]
    pub lr: f64,
    /// Mean loss: training cross-entropy for `train`, evaluation cross-entropy for `eval`.
    /// NaN (written as `null`) if the run diverged.
    #[serde(deserialize_with = "null_as_nan")]
    pub loss: f64,
    /// Top-1 accuracy in [0, 1] (evaluation records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top1: Option<f64>,
    /// Top-5 accuracy in [0, 1] (evaluation records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top5: Option<f64>,
    /// Wall-clock seconds the summarised work took.
    #[serde(deserialize_with = "null_as_nan")]
    pub seconds: f64,
}

/// serde_json writes non-finite floats as `null`; read them back as NaN.
fn null_as_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl Record {
    /// A training record.
    pub fn train(epoch: usize, step: usize, lr: f64, loss: f64, seconds: f64) -> Self {
        Self {
            kind: RecordKind::Train,
            epoch,
            step,
            lr,
            loss,
            top1: None,
            top5: None,
            seconds,
        }
    }

    /// An evaluation record from an [`Evaluation`] (its mean loss, NaN if it has none).
    pub fn eval(epoch: usize, step: usize, lr: f64, eval: &Evaluation, seconds: f64) -> Self {
        Self {
            kind: RecordKind::Eval,
            epoch,
            step,
            lr,
            loss: eval.mean_loss.unwrap_or(f64::NAN),
            top1: Some(eval.top1),
            top5: Some(eval.top5),
            seconds,
        }
    }
}

/// An open, append-only metrics log.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: File,
    /// Bytes of a torn last line that [`MetricsLog::open`] removed (0 if the file was clean).
    repaired_bytes: usize,
}

impl MetricsLog {
    /// Opens `path` for appending, creating it and its parent directories if needed. A torn or
    /// corrupt last line left by a power cut is removed first (see
    /// [`MetricsLog::repaired_bytes`]); a complete last line missing only its newline gets one.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, MetricsLogError> {
        let path = path.as_ref().to_path_buf();
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = parent {
            fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        }
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        if !existed {
            sync_dir(parent);
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(io_err("read", &path))?;
        let mut repaired_bytes = 0;
        if let Some(last) = non_blank_lines(&bytes).last() {
            if serde_json::from_slice::<Record>(&bytes[last.clone()]).is_err() {
                repaired_bytes = bytes.len() - last.start;
                file.set_len(last.start as u64)
                    .map_err(io_err("truncate torn line of", &path))?;
            } else if !bytes.ends_with(b"\n") {
                file.write_all(b"\n").map_err(io_err("write", &path))?;
            }
            file.sync_data().map_err(io_err("sync", &path))?;
        }
        Ok(Self {
            path,
            file,
            repaired_bytes,
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of a torn last line removed by [`MetricsLog::open`] (0 if the file was clean).
    pub fn repaired_bytes(&self) -> usize {
        self.repaired_bytes
    }

    /// Appends one record as one line and syncs it to disk before returning.
    pub fn append(&mut self, record: &Record) -> Result<(), MetricsLogError> {
        let mut line = serde_json::to_vec(record).map_err(|source| MetricsLogError::Serialize {
            path: self.path.clone(),
            source,
        })?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(io_err("write", &self.path))?;
        self.file.flush().map_err(io_err("flush", &self.path))?;
        self.file.sync_data().map_err(io_err("sync", &self.path))
    }
}

/// Byte ranges of the lines of `bytes` that hold anything but ASCII whitespace (without `\n`).
fn non_blank_lines(bytes: &[u8]) -> Vec<Range<usize>> {
    let mut lines = Vec::new();
    let mut start = 0;
    for piece in bytes.split(|&b| b == b'\n') {
        let range = start..start + piece.len();
        start = range.end + 1;
        if !piece.iter().all(u8::is_ascii_whitespace) {
            lines.push(range);
        }
    }
    lines
}

/// The parsed content of a log file.
struct Scan {
    bytes: Vec<u8>,
    /// Each valid record with the byte range of its line.
    records: Vec<(Record, Range<usize>)>,
    /// Torn last lines skipped (0 or 1).
    torn: usize,
}

fn scan(path: &Path) -> Result<Scan, MetricsLogError> {
    let bytes = fs::read(path).map_err(io_err("read", path))?;
    let lines = non_blank_lines(&bytes);
    let mut records = Vec::with_capacity(lines.len());
    let mut torn = 0;
    for (i, range) in lines.iter().enumerate() {
        match serde_json::from_slice::<Record>(&bytes[range.clone()]) {
            Ok(record) => records.push((record, range.clone())),
            Err(_) if i + 1 == lines.len() => torn = 1,
            Err(source) => {
                let line = bytes[..range.start].iter().filter(|&&b| b == b'\n').count() + 1;
                return Err(MetricsLogError::Corrupt {
                    path: path.to_path_buf(),
                    line,
                    source,
                });
            }
        }
    }
    Ok(Scan {
        bytes,
        records,
        torn,
    })
}

/// Reads every record of a log. Returns the records and the number of torn last lines skipped
/// (0 or 1). Blank lines are ignored; a corrupt line other than the last one is an error.
pub fn read_records(path: impl AsRef<Path>) -> Result<(Vec<Record>, usize), MetricsLogError> {
    let scan = scan(path.as_ref())?;
    let records = scan.records.into_iter().map(|(r, _)| r).collect();
    Ok((records, scan.torn))
}

/// Keeps only the records of epochs `0..=epoch` (the epochs a checkpoint has completed) and drops
/// the rest, together with any torn last line, so that a resumed run can re-run the interrupted
/// epoch without duplicate records. Kept lines are copied byte for byte. The file is replaced
/// atomically (temporary file in the same directory, `sync_data`, rename). Returns the number of
/// records dropped; a missing file is left missing and gives 0.
///
/// Call it before [`MetricsLog::open`], not while a [`MetricsLog`] on the same file is open.
pub fn truncate_after_epoch(
    path: impl AsRef<Path>,
    epoch: usize,
) -> Result<usize, MetricsLogError> {
    let path = path.as_ref();
    if !path.exists() {
        return Ok(0);
    }
    let scan = scan(path)?;
    let dropped = scan.records.iter().filter(|(r, _)| r.epoch > epoch).count();
    if dropped == 0 && scan.torn == 0 {
        return Ok(0);
    }
    let mut out = Vec::with_capacity(scan.bytes.len());
    for (_, range) in scan.records.iter().filter(|(r, _)| r.epoch <= epoch) {
        out.extend_from_slice(&scan.bytes[range.clone()]);
        out.push(b'\n');
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    {
        let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        file.write_all(&out).map_err(io_err("write", &tmp))?;
        file.sync_data().map_err(io_err("sync", &tmp))?;
    }
    fs::rename(&tmp, path).map_err(io_err("rename temporary file onto", path))?;
    sync_dir(path.parent().filter(|p| !p.as_os_str().is_empty()));
    Ok(dropped)
}

/// Best effort: makes a new or renamed directory entry durable. Opening a directory fails on
/// some platforms (Windows); the data itself is already synced, so errors are ignored.
fn sync_dir(dir: Option<&Path>) {
    if let Ok(d) = File::open(dir.unwrap_or(Path::new("."))) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Record> {
        vec![
            Record::train(0, 10, 4e-4, 2.5, 12.0),
            Record {
                kind: RecordKind::Eval,
                epoch: 0,
                step: 10,
                lr: 4e-4,
                loss: 2.0,
                top1: Some(0.4),
                top5: Some(0.7),
                seconds: 3.0,
            },
            Record::train(1, 20, 8e-4, 1.5, 11.0),
            Record::train(2, 30, 1.2e-3, 1.0, 11.5),
        ]
    }

    fn write_all(path: &Path, records: &[Record]) -> Result<(), MetricsLogError> {
        let mut log = MetricsLog::open(path)?;
        for r in records {
            log.append(r)?;
        }
        Ok(())
    }

    #[test]
    fn append_then_read_round_trips_and_skips_none_fields() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("run/deeper/metrics.jsonl");
        write_all(&path, &sample())?;
        let text = fs::read_to_string(&path)?;
        let first = text.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            r#"{"kind":"train","epoch":0,"step":10,"lr":0.0004,"loss":2.5,"seconds":12.0}"#
        );
        let (records, torn) = read_records(&path)?;
        assert_eq!((records, torn), (sample(), 0));
        // Re-opening appends rather than overwriting.
        write_all(&path, &sample()[..1])?;
        assert_eq!(read_records(&path)?.0.len(), 5);
        Ok(())
    }

    #[test]
    fn torn_last_line_is_skipped_counted_and_repaired_on_open() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("metrics.jsonl");
        write_all(&path, &sample()[..2])?;
        let mut file = OpenOptions::new().append(true).open(&path)?;
        file.write_all(br#"{"kind":"train","epoch":1,"st"#)?;
        drop(file);
        let (records, torn) = read_records(&path)?;
        assert_eq!((records.len(), torn), (2, 1));

        let mut log = MetricsLog::open(&path)?;
        assert_eq!(log.repaired_bytes(), 29);
        log.append(&sample()[2])?;
        assert_eq!(read_records(&path)?, (sample()[..3].to_vec(), 0));

        // NUL bytes left by a file system after a power cut count as a torn line too.
        let mut file = OpenOptions::new().append(true).open(&path)?;
        file.write_all(&[0u8; 16])?;
        drop(file);
        assert_eq!(read_records(&path)?.1, 1);
        Ok(())
    }

    #[test]
    fn corrupt_middle_line_is_an_error_naming_file_and_line() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("metrics.jsonl");
        let mut text = String::new();
        for r in sample() {
            text.push_str(&serde_json::to_string(&r)?);
            text.push('\n');
        }
        let mut lines: Vec<&str> = text.lines().collect();
        lines[2] = "{not json";
        lines.insert(1, "");
        fs::write(&path, lines.join("\n") + "\n")?;
        let err = read_records(&path).unwrap_err();
        assert!(
            matches!(err, MetricsLogError::Corrupt { line: 4, .. }),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("metrics_log.rs") && msg.contains("metrics.jsonl:4"),
            "{msg}"
        );
        Ok(())
    }

    #[test]
    fn truncate_after_epoch_drops_later_epochs_atomically() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("metrics.jsonl");
        assert_eq!(truncate_after_epoch(&path, 0)?, 0, "missing file");
        assert!(!path.exists());
        write_all(&path, &sample())?;
        let mut file = OpenOptions::new().append(true).open(&path)?;
        file.write_all(b"{\"kind\":")?;
        drop(file);

        assert_eq!(truncate_after_epoch(&path, 0)?, 2);
        assert_eq!(read_records(&path)?, (sample()[..2].to_vec(), 0));
        assert_eq!(truncate_after_epoch(&path, 5)?, 0);
        let leftovers: Vec<_> = fs::read_dir(dir.path())?.collect::<Result<_, _>>()?;
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
        Ok(())
    }

    #[test]
    fn nan_loss_survives_a_round_trip() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("metrics.jsonl");
        write_all(&path, &[Record::train(0, 1, 1e-3, f64::NAN, 1.0)])?;
        assert!(fs::read_to_string(&path)?.contains("\"loss\":null"));
        let (records, torn) = read_records(&path)?;
        assert_eq!(torn, 0);
        assert!(records[0].loss.is_nan());
        Ok(())
    }
}
