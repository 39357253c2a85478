//! CSV: a header, then one row per file.
//!
//! `file,status,label_1,probability_1,…,label_k,probability_k,error`, where `status` is `ok`
//! or `failed`; a failed row has empty label and probability cells and the error last. The
//! logits are in the JSONL output only. With a bundle that has `[open_world]`, two columns come
//! before `error`: `unknown` (`true` for a species the model does not know; the labels stay as
//! its guesses) and `open_world_score` (see the JSONL output).
//!
//! With `--detections`, one row per detection (classified, or not with its error) and one per
//! image that failed (empty detection cells): `file,detection,bbox_x,bbox_y,bbox_width,
//! bbox_height,conf,status,label_1,probability_1,…,error`, where `detection` is the index in the
//! image's `detections` and the box and `conf` are the detection file's.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, Context, Result};

use xrvlm_runtime::classifier::Prediction;
use xrvlm_runtime::resume;

use super::{complete_lines, line_writer, DetectionRecord, Layout, Record, RunInfo};

/// The columns a detection row has before `status`.
const DETECTION_COLUMNS: [&str; 6] = [
    "detection",
    "bbox_x",
    "bbox_y",
    "bbox_width",
    "bbox_height",
    "conf",
];

/// An open CSV output.
pub struct CsvSink {
    out: csv::Writer<Box<dyn Write>>,
    top_k: usize,
    open_world: bool,
}

/// The columns of the open-world verdict, with a bundle that has one.
const OPEN_WORLD_COLUMNS: [&str; 2] = ["unknown", "open_world_score"];

/// The header for `info.top_k` classes per row of `layout`.
pub fn header(info: &RunInfo, layout: &Layout) -> Vec<String> {
    let top_k = info.top_k;
    let mut columns = vec!["file".to_string()];
    if let Layout::Detections { .. } = layout {
        columns.extend(DETECTION_COLUMNS.map(str::to_string));
    }
    columns.push("status".to_string());
    for i in 1..=top_k {
        columns.push(format!("label_{i}"));
        columns.push(format!("probability_{i}"));
    }
    if info.open_world.is_some() {
        columns.extend(OPEN_WORLD_COLUMNS.map(str::to_string));
    }
    columns.push("error".to_string());
    columns
}

impl CsvSink {
    /// Opens `path` (standard output when `None`); with `resume`, appends and returns the
    /// files already recorded. The header is written unless the file already has one.
    pub fn open(
        path: Option<&Path>,
        resume: bool,
        info: &RunInfo,
        layout: &Layout,
    ) -> Result<(Self, HashSet<String>)> {
        let expected = header(info, layout);
        let (done, has_header) = match (path, resume) {
            (Some(path), true) => recorded_files(path, &expected)?,
            _ => (HashSet::new(), false),
        };
        let mut out = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(line_writer(path, resume)?);
        if !has_header {
            out.write_record(&expected)?;
        }
        out.flush().context("cannot write the output")?;
        Ok((
            Self {
                out,
                top_k: info.top_k,
                open_world: info.open_world.is_some(),
            },
            done,
        ))
    }

    /// Writes and flushes one row.
    pub fn write(&mut self, record: &Record) -> Result<()> {
        let mut row = vec![record.file.clone()];
        let outcome = match &record.outcome {
            Ok((prediction, _)) => Ok(prediction),
            Err(e) => Err(e.as_str()),
        };
        row.extend(self.outcome_cells(outcome));
        self.out.write_record(&row)?;
        self.out.flush().context("cannot write the output")
    }

    /// Writes the rows of one image of a detection file, in detection order, and flushes.
    pub fn write_detections(&mut self, record: &DetectionRecord) -> Result<()> {
        let mut rows: Vec<(usize, Vec<String>)> = Vec::new();
        if let Some(failure) = &record.failure {
            let mut row = vec![record.file.clone()];
            row.extend(std::iter::repeat_n(String::new(), DETECTION_COLUMNS.len()));
            row.extend(self.outcome_cells(Err(failure)));
            rows.push((0, row));
        }
        for c in &record.classified {
            let mut row = detection_cells(&record.file, c.index, c.bbox, c.conf);
            row.extend(self.outcome_cells(Ok(&c.prediction)));
            rows.push((c.index, row));
        }
        for s in &record.skipped {
            let mut row = detection_cells(&record.file, s.index, s.bbox, s.conf);
            row.extend(self.outcome_cells(Err(&s.reason)));
            rows.push((s.index, row));
        }
        rows.sort_by_key(|(index, _)| *index);
        for (_, row) in rows {
            self.out.write_record(&row)?;
        }
        self.out.flush().context("cannot write the output")
    }

    /// `status`, the label and probability cells, the open-world cells, and `error`.
    fn outcome_cells(&self, outcome: Result<&Prediction, &str>) -> Vec<String> {
        let mut cells = Vec::with_capacity(2 * self.top_k + 4);
        let open_world_cells = usize::from(self.open_world) * OPEN_WORLD_COLUMNS.len();
        match outcome {
            Ok(p) => {
                cells.push("ok".into());
                for i in 0..self.top_k {
                    match p.top.get(i) {
                        Some(c) => cells.extend([c.label.clone(), c.probability.to_string()]),
                        None => cells.extend([String::new(), String::new()]),
                    }
                }
                if self.open_world {
                    match p.open_world {
                        Some(v) => cells.extend([v.unknown.to_string(), v.score.to_string()]),
                        None => cells.extend([String::new(), String::new()]),
                    }
                }
                cells.push(String::new());
            }
            Err(error) => {
                cells.push("failed".into());
                cells.extend(std::iter::repeat_n(
                    String::new(),
                    2 * self.top_k + open_world_cells,
                ));
                cells.push(error.to_string());
            }
        }
        cells
    }

    /// Flushes.
    pub fn finish(mut self) -> Result<()> {
        self.out.flush().context("cannot write the output")
    }
}

/// `file` and the detection's cells.
fn detection_cells(file: &str, index: usize, bbox: [f64; 4], conf: f64) -> Vec<String> {
    let mut cells = vec![file.to_string(), index.to_string()];
    cells.extend(bbox.iter().map(f64::to_string));
    cells.push(conf.to_string());
    cells
}

/// The files an existing output records, and whether it has a header (an empty file has
/// none). A header for another top-k is an error: the rows would not line up.
fn recorded_files(path: &Path, expected: &[String]) -> Result<(HashSet<String>, bool)> {
    let text = complete_lines(path)?;
    resume::csv_files(&text, expected)
        .map_err(|e| anyhow!("{}: {e}; cannot resume it", path.display()))
}
