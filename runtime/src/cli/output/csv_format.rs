//! CSV: a header, then one row per file.
//!
//! `file,status,label_1,probability_1,…,label_k,probability_k,error`, where `status` is `ok`
//! or `failed`; a failed row has empty label and probability cells and the error last. The
//! logits are in the JSONL output only.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::{complete_lines, line_writer, Record, RunInfo};

/// An open CSV output.
pub struct CsvSink {
    out: csv::Writer<Box<dyn Write>>,
    top_k: usize,
}

/// The header for `top_k` classes per row.
pub fn header(top_k: usize) -> Vec<String> {
    let mut columns = vec!["file".to_string(), "status".to_string()];
    for i in 1..=top_k {
        columns.push(format!("label_{i}"));
        columns.push(format!("probability_{i}"));
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
    ) -> Result<(Self, HashSet<String>)> {
        let expected = header(info.top_k);
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
            },
            done,
        ))
    }

    /// Writes and flushes one row.
    pub fn write(&mut self, record: &Record) -> Result<()> {
        let mut row = vec![record.file.clone()];
        match &record.outcome {
            Ok(p) => {
                row.push("ok".into());
                for i in 0..self.top_k {
                    match p.top.get(i) {
                        Some(c) => row.extend([c.label.clone(), c.probability.to_string()]),
                        None => row.extend([String::new(), String::new()]),
                    }
                }
                row.push(String::new());
            }
            Err(error) => {
                row.push("failed".into());
                row.extend(std::iter::repeat_n(String::new(), 2 * self.top_k));
                row.push(error.clone());
            }
        }
        self.out.write_record(&row)?;
        self.out.flush().context("cannot write the output")
    }

    /// Flushes.
    pub fn finish(mut self) -> Result<()> {
        self.out.flush().context("cannot write the output")
    }
}

/// The files an existing output records, and whether it has a header (an empty file has
/// none). A header for another top-k is an error: the rows would not line up.
fn recorded_files(path: &Path, expected: &[String]) -> Result<(HashSet<String>, bool)> {
    let text = complete_lines(path)?;
    if text.trim().is_empty() {
        return Ok((HashSet::new(), false));
    }
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let found: Vec<String> = reader
        .headers()
        .with_context(|| format!("{}: cannot read the CSV header", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    if found != expected {
        bail!(
            "{}: its columns {found:?} differ from this run's {expected:?} (another --top-k?); \
             cannot resume it",
            path.display()
        );
    }
    let mut done = HashSet::new();
    for row in reader.records() {
        let row =
            row.with_context(|| format!("{}: not a CSV of `xrvlm classify`", path.display()))?;
        done.insert(row[0].to_string());
    }
    Ok((done, true))
}
