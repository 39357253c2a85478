//! Where `classify` writes its records, in three formats: JSON lines, CSV, and the
//! MegaDetector batch-output format.
//!
//! A run records either whole frames ([`Record`], one per image file) or the detections of a
//! MegaDetector file ([`DetectionRecord`], one per image of the file, written as one row per
//! classified detection in JSONL and CSV, and as the file's own document in the MegaDetector
//! format); [`Layout`] says which.
//!
//! JSONL and CSV are append-only and flushed after every record, so a run that is killed
//! leaves complete records (and at most one partial last line, which `--resume` cuts off).
//! The MegaDetector format is one JSON document, rewritten atomically (temp file + rename)
//! every [`megadetector::SAVE_EVERY`] records and at the end.
//!
//! `--resume` reads the existing output, skips every file already recorded (classified or
//! failed), and appends the rest. The rows of one image of a detection file go out in one
//! write, so a killed run leaves each image's rows whole; only a power cut inside that write
//! could leave an image with part of its rows, which `--resume` would then count as done.

mod csv_format;
mod jsonl;
pub mod megadetector;

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};
use xrvlm_runtime::classifier::Prediction;
use xrvlm_runtime::field::decision::Outcome;
use xrvlm_runtime::open_world::OpenWorldRule;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line (per file, or per detection with --detections): `file`
    /// (`detection`, `bbox`, `conf`), then `top` and `logits` (and `unknown` and
    /// `open_world_score` with a bundle that has `[open_world]`), or `error`.
    Jsonl,
    /// A header, then one row per file (per detection with --detections): file, (detection,
    /// bbox_x, bbox_y, bbox_width, bbox_height, conf,) status, label_i / probability_i,
    /// (unknown, open_world_score,) error.
    Csv,
    /// MegaDetector batch output (format 1.4 or the detection file's): `info`,
    /// `detection_categories`, `classification_categories`, `images`.
    Megadetector,
}

/// What a run records.
#[derive(Debug, Clone)]
pub enum Layout {
    /// One [`Record`] per image file, classified whole.
    Frames,
    /// One [`DetectionRecord`] per image of a MegaDetector detection file.
    Detections {
        /// The detection file's top-level keys but `images`, written back around the results.
        document: Map<String, Value>,
        /// Detections below this confidence were not classified.
        min_detection_conf: f64,
    },
}

/// What happened to one input.
#[derive(Debug, Clone)]
pub struct Record {
    /// The path as given or found, the key `--resume` matches on.
    pub file: String,
    /// The prediction and the decision on it (`--threshold`, `--roll-up-to`), or why the file
    /// failed.
    pub outcome: Result<(Prediction, Outcome), String>,
}

/// What happened to one image of a detection file.
#[derive(Debug, Clone)]
pub struct DetectionRecord {
    /// `file` as the detection file writes it, the key `--resume` matches on.
    pub file: String,
    /// The image's entry in the detection file.
    pub entry: Value,
    /// The detections classified, in index order.
    pub classified: Vec<ClassifiedDetection>,
    /// Detections to classify that could not be (the image's others were), in index order.
    pub skipped: Vec<SkippedDetection>,
    /// Why the image could not be classified at all: unreadable, or no detection usable.
    pub failure: Option<String>,
}

/// A classified detection.
#[derive(Debug, Clone)]
pub struct ClassifiedDetection {
    /// Index in the image's `detections`.
    pub index: usize,
    /// Its `bbox` as the detection file writes it.
    pub bbox: [f64; 4],
    /// Its detection confidence.
    pub conf: f64,
    /// What the classifier says about its crop.
    pub prediction: Prediction,
    /// The decision on it.
    pub answer: Outcome,
}

/// A detection that was to be classified and was not.
#[derive(Debug, Clone)]
pub struct SkippedDetection {
    /// Index in the image's `detections`.
    pub index: usize,
    /// Its `bbox` as the detection file writes it.
    pub bbox: [f64; 4],
    /// Its detection confidence.
    pub conf: f64,
    /// Why.
    pub reason: String,
}

/// What every format needs to know about the run.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// Model name and version, e.g. `demo 1`.
    pub classifier: String,
    /// Class labels in logit order.
    pub labels: Vec<String>,
    /// A description per class (common and scientific name where known).
    pub descriptions: Vec<String>,
    /// Classes per record.
    pub top_k: usize,
    /// The bundle's open-world rule: with one, every prediction says whether it is `unknown`.
    pub open_world: Option<OpenWorldRule>,
}

/// An open output.
pub enum Sink {
    /// JSON lines.
    Jsonl(jsonl::JsonlSink),
    /// CSV.
    Csv(Box<csv_format::CsvSink>),
    /// MegaDetector JSON.
    Megadetector(megadetector::MegadetectorSink),
}

/// Opens the output for records of `layout`; with `resume`, also returns the files it already
/// records.
pub fn open(
    format: Format,
    path: Option<&Path>,
    resume: bool,
    info: &RunInfo,
    layout: Layout,
) -> Result<(Sink, HashSet<String>)> {
    if resume && path.is_none() {
        bail!("--resume needs --output FILE: there is nothing to resume on standard output");
    }
    match format {
        Format::Jsonl => {
            let (sink, done) = jsonl::JsonlSink::open(path, resume)?;
            Ok((Sink::Jsonl(sink), done))
        }
        Format::Csv => {
            let (sink, done) = csv_format::CsvSink::open(path, resume, info, &layout)?;
            Ok((Sink::Csv(Box::new(sink)), done))
        }
        Format::Megadetector => {
            let Some(path) = path else {
                bail!("--format megadetector needs --output FILE (it writes one JSON document)");
            };
            let (sink, done) = megadetector::MegadetectorSink::open(path, resume, info, layout)?;
            Ok((Sink::Megadetector(sink), done))
        }
    }
}

impl Sink {
    /// Records one file.
    pub fn write(&mut self, record: &Record) -> Result<()> {
        match self {
            Sink::Jsonl(s) => s.write(record),
            Sink::Csv(s) => s.write(record),
            Sink::Megadetector(s) => s.write(record),
        }
    }

    /// Records one image of a detection file.
    pub fn write_detections(&mut self, record: &DetectionRecord) -> Result<()> {
        match self {
            Sink::Jsonl(s) => s.write_detections(record),
            Sink::Csv(s) => s.write_detections(record),
            Sink::Megadetector(s) => s.write_detections(record),
        }
    }

    /// Writes whatever is pending and closes the output.
    pub fn finish(self) -> Result<()> {
        match self {
            Sink::Jsonl(s) => s.finish(),
            Sink::Csv(s) => s.finish(),
            Sink::Megadetector(s) => s.finish(),
        }
    }
}

/// Standard output or a file, for the line formats.
fn line_writer(path: Option<&Path>, append: bool) -> Result<Box<dyn Write>> {
    let Some(path) = path else {
        return Ok(Box::new(io::stdout().lock()));
    };
    let file = if append {
        OpenOptions::new().append(true).create(true).open(path)
    } else {
        File::create(path)
    };
    let file = file.with_context(|| format!("cannot open output {}", path.display()))?;
    Ok(Box::new(io::BufWriter::new(file)))
}

/// The complete lines of an existing line-format output. A partial last line (a run killed
/// mid-write) is cut off the file so appended records start on a fresh line. A missing file
/// reads as empty.
fn complete_lines(path: &Path) -> Result<String> {
    let mut text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        let keep = xrvlm_runtime::resume::complete_len(&text);
        text.truncate(keep);
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        file.set_len(keep as u64)
            .with_context(|| format!("cannot cut the partial last line of {}", path.display()))?;
    }
    Ok(text)
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}
