//! The append-only detection log (JSON Lines) that survives power cuts.
//!
//! Each record is one line written with a single `write_all` of the whole line, newline
//! included, then `sync_data` before [`DetectionLog::append`] returns: a record the caller was
//! told is written is on the disk. A power cut can still leave the last line torn (cut short,
//! or not parseable). [`DetectionLog::open`] finds that, moves the torn bytes to a side file
//! next to the log (`detections.jsonl.torn-1`, …), cuts the log back to its last good newline,
//! syncs, and says so in its [`OpenReport`]; the caller logs the report as a `recovery` record.
//! Bad lines before the last are corruption that no write of ours makes: they are reported and
//! left in place, never dropped. A write that fails (a full disk) is cut back off the log, so
//! the next record starts on a line of its own.
//!
//! [`read_records`] reads a log without changing it (tests, `xrvlm export-camtrap`).

mod record;
mod scan;

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub use record::{
    utc, Entry, EventRecord, FailureRecord, FailureStage, FrameRecord, HealthRecord, ModelRecord,
    Record, RecoveryReport, StartRecord, TopClass,
};
pub use scan::LineProblem;

/// File name of the log inside the output folder.
pub const DETECTION_LOG_FILE: &str = "detections.jsonl";

/// An open log, positioned at its end.
#[derive(Debug)]
pub struct DetectionLog {
    path: PathBuf,
    file: File,
    /// Length of the log: where the next record starts, and where a failed write is cut back to.
    len: u64,
    next_seq: u64,
}

/// What opening an existing log found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpenReport {
    /// Records in the log.
    pub records: usize,
    /// The largest event id in the log, to number new events after it.
    pub last_event_id: Option<u64>,
    /// The torn last line that was set aside, if there was one.
    pub recovery: Option<RecoveryReport>,
    /// Lines before the last that are not records.
    pub corrupt_lines: Vec<LineProblem>,
}

/// Why the log could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An I/O error on the log or its side file.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A record that cannot be turned into JSON (a non-finite number).
    #[error("{}: cannot encode a record: {source}", path.display())]
    Encode {
        /// The log.
        path: PathBuf,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
}

fn io<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(std::io::Error) -> LogError + 'a {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

impl DetectionLog {
    /// Opens (or creates) the log at `path`, setting aside a torn last line.
    pub fn open(path: &Path) -> Result<(Self, OpenReport), LogError> {
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io(path, "cannot open"))?;
        if !existed {
            sync_parent(path)?;
        }
        let scanned = scan::scan(BufReader::new(&file)).map_err(io(path, "cannot read"))?;
        let recovery = match &scanned.torn {
            Some(_) => Some(set_aside_torn_tail(path, &file, scanned.good_len)?),
            None => None,
        };
        let report = OpenReport {
            records: scanned.entries.len(),
            last_event_id: scanned.entries.iter().filter_map(event_id).max(),
            recovery,
            corrupt_lines: scanned.corrupt,
        };
        let next_seq = scanned.entries.iter().map(|e| e.seq).max().unwrap_or(0) + 1;
        let log = Self {
            path: path.to_path_buf(),
            file,
            len: scanned.good_len,
            next_seq,
        };
        Ok((log, report))
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sequence number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends `record` as one line and syncs it to disk; returns its sequence number.
    pub fn append(&mut self, record: Record) -> Result<u64, LogError> {
        let entry = Entry {
            seq: self.next_seq,
            record,
        };
        let mut line = serde_json::to_string(&entry).map_err(|source| LogError::Encode {
            path: self.path.clone(),
            source,
        })?;
        line.push('\n');
        let written = self
            .file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            // Part of the line may be on disk: cut it off so the log stays whole lines.
            let _ = self.file.set_len(self.len);
            return Err(io(&self.path, "cannot append a record")(source));
        }
        self.len += line.len() as u64;
        self.next_seq += 1;
        Ok(entry.seq)
    }
}

fn event_id(entry: &Entry) -> Option<u64> {
    match &entry.record {
        Record::Event(e) => Some(e.event_id),
        _ => None,
    }
}

/// Copies the bytes after `good_len` to the first free `LOG.torn-<n>`, syncs it, then cuts the
/// log back to `good_len` and syncs the log.
fn set_aside_torn_tail(
    path: &Path,
    file: &File,
    good_len: u64,
) -> Result<RecoveryReport, LogError> {
    let mut tail = Vec::new();
    let mut reader = file;
    reader
        .seek(SeekFrom::Start(good_len))
        .and_then(|_| reader.read_to_end(&mut tail))
        .map_err(io(path, "cannot read the torn line"))?;
    let tail = tail.as_slice();
    let side = free_side_file(path);
    let mut side_file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&side)
        .map_err(io(&side, "cannot create"))?;
    side_file
        .write_all(tail)
        .and_then(|()| side_file.sync_all())
        .map_err(io(&side, "cannot write"))?;
    sync_parent(path)?;
    file.set_len(good_len)
        .and_then(|()| file.sync_all())
        .map_err(io(path, "cannot truncate the torn line"))?;
    Ok(RecoveryReport {
        torn_bytes: tail.len() as u64,
        side_file: side.display().to_string(),
        truncated_to: good_len,
    })
}

fn free_side_file(path: &Path) -> PathBuf {
    let mut n = 1;
    loop {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".torn-{n}"));
        let side = PathBuf::from(name);
        if !side.exists() {
            return side;
        }
        n += 1;
    }
}

/// Syncs the directory holding `path`, so a newly created file survives a power cut.
fn sync_parent(path: &Path) -> Result<(), LogError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(io(parent, "cannot sync the directory"))
}

/// Every record of the log at `path`, and the lines that are not records (a torn last line
/// included); the file is not changed.
pub fn read_records(path: &Path) -> Result<(Vec<Entry>, Vec<LineProblem>), LogError> {
    let file = File::open(path).map_err(io(path, "cannot open"))?;
    let scanned = scan::scan(BufReader::new(file)).map_err(io(path, "cannot read"))?;
    let mut problems = scanned.corrupt;
    problems.extend(scanned.torn);
    Ok((scanned.entries, problems))
}

#[cfg(test)]
mod tests;
