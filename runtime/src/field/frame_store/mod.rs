//! Saved frames under a storage budget, and their JPEG encoding ([`encode_jpeg`]).
//!
//! Frames are JPEG files under `OUTPUT/frames/`, in a folder per capture day:
//! `frames/2026-11-21/0000000042_cam-000123.jpg`. The leading number counts saves; it orders
//! the frames oldest first, and [`FrameStore::open`] recovers that order after a restart by
//! scanning the folder. When a new frame would take the total past the budget, the oldest
//! frames are deleted first. Only files named in this form are counted or ever deleted, and
//! only under `frames/`: the detection log beside it is never evictable.
//!
//! A failed write (a full disk) is returned as [`FrameStoreError::Write`], which the loop
//! records; the store then deletes the oldest frames to make room for the next one. The frame
//! itself is not retried: the log record of it stays, without a saved file.

mod writer;

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use writer::{FileWriter, FrameWriter};

/// Folder of saved frames inside the output folder.
pub const FRAMES_DIR: &str = "frames";

/// Digits of the save counter in file names: ten digits sort correctly for 10^10 saves.
const COUNTER_DIGITS: usize = 10;

/// A saved frame the store knows.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SavedFrame {
    counter: u64,
    /// Relative to the output folder, `/`-separated.
    relative: String,
    bytes: u64,
}

/// The saved frames of one output folder.
#[derive(Debug)]
pub struct FrameStore<W: FrameWriter = FileWriter> {
    output: PathBuf,
    budget: u64,
    /// Oldest first.
    saved: VecDeque<SavedFrame>,
    total: u64,
    next_counter: u64,
    writer: W,
}

/// A frame that was saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    /// The file, relative to the output folder (`frames/2026-11-21/…jpg`).
    pub relative: String,
    /// Frames deleted to make room, relative to the output folder, oldest first.
    pub evicted: Vec<String>,
}

/// Why a frame was not saved, or the folder could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameStoreError {
    /// The frames folder could not be listed.
    #[error("{}: cannot list saved frames: {source}", path.display())]
    Scan {
        /// The folder.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The frame is larger than the whole budget.
    #[error("a frame of {bytes} bytes does not fit a storage budget of {budget} bytes")]
    TooLarge {
        /// Size of the frame.
        bytes: u64,
        /// The budget.
        budget: u64,
    },
    /// The frame could not be written; `evicted` lists the frames deleted afterwards.
    #[error("{}: cannot write frame: {source}{}", path.display(), evicted_note(evicted))]
    Write {
        /// The file.
        path: PathBuf,
        /// The error (`StorageFull` for a full disk).
        #[source]
        source: io::Error,
        /// Frames deleted after the failure to make room, relative to the output folder.
        evicted: Vec<String>,
    },
    /// An old frame could not be deleted.
    #[error("{}: cannot delete old frame: {source}", path.display())]
    Evict {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn evicted_note(evicted: &[String]) -> String {
    if evicted.is_empty() {
        String::new()
    } else {
        format!(" (deleted {} old frame(s) to make room)", evicted.len())
    }
}

impl FrameStoreError {
    /// Whether the disk was full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, FrameStoreError::Write { source, .. } if source.kind() == io::ErrorKind::StorageFull)
    }
}

impl FrameStore<FileWriter> {
    /// The store of `output` (the profile's output folder), `budget` bytes for frames.
    pub fn open(output: &Path, budget: u64) -> Result<Self, FrameStoreError> {
        Self::open_with(output, budget, FileWriter)
    }
}

impl<W: FrameWriter> FrameStore<W> {
    /// As [`FrameStore::open`], writing frames through `writer`.
    pub fn open_with(output: &Path, budget: u64, writer: W) -> Result<Self, FrameStoreError> {
        let mut saved = scan_frames(output)?;
        saved.sort_by_key(|f| f.counter);
        let mut store = Self {
            output: output.to_path_buf(),
            budget,
            total: saved.iter().map(|f| f.bytes).sum(),
            next_counter: saved.last().map_or(1, |f| f.counter + 1),
            saved: saved.into(),
            writer,
        };
        // A smaller budget than last run's takes effect at once.
        store.evict_until(|total| total <= budget)?;
        Ok(store)
    }

    /// Bytes of saved frames.
    pub fn total_bytes(&self) -> u64 {
        self.total
    }

    /// The budget in bytes.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Saved frames, oldest first, relative to the output folder.
    pub fn frames(&self) -> impl Iterator<Item = &str> {
        self.saved.iter().map(|f| f.relative.as_str())
    }

    /// Saves `jpeg` as the frame `media_id` captured on `day` (`YYYY-MM-DD`, local), deleting
    /// the oldest frames first if the budget needs it.
    pub fn save(
        &mut self,
        day: &str,
        media_id: &str,
        jpeg: &[u8],
    ) -> Result<Saved, FrameStoreError> {
        let bytes = jpeg.len() as u64;
        if bytes > self.budget {
            return Err(FrameStoreError::TooLarge {
                bytes,
                budget: self.budget,
            });
        }
        let budget = self.budget;
        let evicted = self.evict_until(|total| total + bytes <= budget)?;
        let relative = format!(
            "{FRAMES_DIR}/{}/{:0width$}_{}.jpg",
            clean(day),
            self.next_counter,
            clean(media_id),
            width = COUNTER_DIGITS
        );
        let path = self.output.join(&relative);
        if let Err(source) = self.writer.write(&path, jpeg) {
            // Make room for the next frame: as many bytes as this one needed.
            let target = self.total.saturating_sub(bytes);
            let freed = self.evict_until(|total| total <= target)?;
            return Err(FrameStoreError::Write {
                path,
                source,
                evicted: freed,
            });
        }
        self.saved.push_back(SavedFrame {
            counter: self.next_counter,
            relative: relative.clone(),
            bytes,
        });
        self.total += bytes;
        self.next_counter += 1;
        Ok(Saved { relative, evicted })
    }

    /// Deletes the oldest frames until `fits(total)`; returns what it deleted.
    fn evict_until(&mut self, fits: impl Fn(u64) -> bool) -> Result<Vec<String>, FrameStoreError> {
        let mut evicted = Vec::new();
        while !fits(self.total) {
            let Some(oldest) = self.saved.front() else {
                break;
            };
            let path = self.output.join(&oldest.relative);
            match fs::remove_file(&path) {
                Ok(()) => {}
                // Already gone (deleted by hand): it no longer takes space either.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(FrameStoreError::Evict { path, source }),
            }
            let oldest = self.saved.pop_front().expect("front exists");
            self.total -= oldest.bytes;
            evicted.push(oldest.relative);
        }
        Ok(evicted)
    }
}

/// `text` with anything but ASCII letters, digits, `-` and `.` as `_`, so a media id is one
/// safe path component.
fn clean(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.starts_with('.') {
        format!("_{cleaned}")
    } else {
        cleaned
    }
}

/// The store's frames under `OUTPUT/frames/DAY/`; half-written `.tmp` files are deleted.
fn scan_frames(output: &Path) -> Result<Vec<SavedFrame>, FrameStoreError> {
    let root = output.join(FRAMES_DIR);
    let scan_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FrameStoreError::Scan { path, source }
    };
    let mut frames = Vec::new();
    let days = match fs::read_dir(&root) {
        Ok(days) => days,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(frames),
        Err(e) => return Err(scan_error(&root)(e)),
    };
    for day in days {
        let day = day.map_err(scan_error(&root))?;
        if !day.file_type().map_err(scan_error(&root))?.is_dir() {
            continue;
        }
        let day_name = day.file_name().to_string_lossy().into_owned();
        for file in fs::read_dir(day.path()).map_err(scan_error(&day.path()))? {
            let file = file.map_err(scan_error(&day.path()))?;
            let name = file.file_name().to_string_lossy().into_owned();
            if name.ends_with(".jpg.tmp") && counter_of(name.trim_end_matches(".tmp")).is_some() {
                let _ = fs::remove_file(file.path());
                continue;
            }
            let Some(counter) = counter_of(&name) else {
                continue;
            };
            let meta = file.metadata().map_err(scan_error(&file.path()))?;
            if meta.is_file() {
                frames.push(SavedFrame {
                    counter,
                    relative: format!("{FRAMES_DIR}/{day_name}/{name}"),
                    bytes: meta.len(),
                });
            }
        }
    }
    Ok(frames)
}

/// The save counter of a file named by the store (`0000000042_ID.jpg`).
fn counter_of(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".jpg")?;
    let (digits, _) = stem.split_once('_')?;
    if digits.len() != COUNTER_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A frame as the JPEG the store saves, at `quality` (1–100).
pub fn encode_jpeg(image: &image::RgbImage, quality: u8) -> Result<Vec<u8>, image::ImageError> {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(std::io::Cursor::new(&mut jpeg), quality)
        .encode_image(image)?;
    Ok(jpeg)
}

#[cfg(test)]
mod tests;
