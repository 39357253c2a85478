//! JSON lines: one object per file.
//!
//! ```json
//! {"file":"a.jpg","top":[{"label":"wren","index":3,"probability":0.91}],"logits":[0.1, …]}
//! {"file":"b.jpg","error":"b.jpg is truncated or corrupt (Jpeg data): …"}
//! ```
//!
//! With a bundle that has `[open_world]`, a classified record also has `unknown` (true: a
//! species the model does not know, whatever `top` says; `top` is kept as the guesses) and
//! `open_world_score` (the frame's score of the manifest's `open_world.score`; below
//! `open_world.threshold` it is unknown unless its top class is blank):
//!
//! ```json
//! {"file":"c.jpg","top":[…],"logits":[…],"unknown":true,"open_world_score":3.07}
//! ```
//!
//! With `--detections`, one object per classified detection (`detection` is its index in the
//! image's `detections`, `bbox` and `conf` as the detection file has them), one per detection
//! that could not be classified (with `error`), and one per image that failed:
//!
//! ```json
//! {"file":"cam1/a.jpg","detection":0,"bbox":[0.1,0.2,0.3,0.2],"conf":0.93,"top":[…],"logits":[…]}
//! {"file":"cam1/a.jpg","detection":2,"bbox":[0.5,0.5,0.0,0.1],"conf":0.4,"error":"box … has no area …"}
//! {"file":"cam1/b.jpg","error":"image file not found: /data/cam1/b.jpg"}
//! ```

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use xrvlm_runtime::resume;

use super::{complete_lines, line_writer, DetectionRecord, Record};

/// An open JSONL output.
pub struct JsonlSink {
    out: Box<dyn Write>,
}

impl JsonlSink {
    /// Opens `path` (standard output when `None`); with `resume`, appends and returns the
    /// files already recorded.
    pub fn open(path: Option<&Path>, resume: bool) -> Result<(Self, HashSet<String>)> {
        let done = match (path, resume) {
            (Some(path), true) => recorded_files(path)?,
            _ => HashSet::new(),
        };
        let out = line_writer(path, resume)?;
        Ok((Self { out }, done))
    }

    /// Writes and flushes one line.
    pub fn write(&mut self, record: &Record) -> Result<()> {
        let line = to_json(record);
        writeln!(self.out, "{line}")?;
        self.out.flush().context("cannot write the output")
    }

    /// Writes the rows of one image of a detection file in one write, and flushes.
    pub fn write_detections(&mut self, record: &DetectionRecord) -> Result<()> {
        let mut text = String::new();
        for row in detection_rows(record) {
            text.push_str(&row.to_string());
            text.push('\n');
        }
        self.out.write_all(text.as_bytes())?;
        self.out.flush().context("cannot write the output")
    }

    /// Flushes.
    pub fn finish(mut self) -> Result<()> {
        self.out.flush().context("cannot write the output")
    }
}

/// The JSON object of one record.
pub fn to_json(record: &Record) -> Value {
    match &record.outcome {
        Ok((p, answer)) => {
            let mut row = json!({
                "file": record.file,
                "top": p.top.iter().map(|c| json!({
                    "label": c.label,
                    "index": c.index,
                    "probability": c.probability,
                })).collect::<Vec<_>>(),
                "logits": p.logits,
            });
            if let Some(verdict) = p.open_world {
                row["unknown"] = json!(verdict.unknown);
                row["open_world_score"] = json!(verdict.score);
            }
            if !p.taxa.is_empty() {
                row["taxa"] = json!(p.taxa);
            }
            row["answer"] = json!(answer);
            row
        }
        Err(error) => json!({ "file": record.file, "error": error }),
    }
}

/// The rows of one image of a detection file: its detections in index order, or its failure.
pub fn detection_rows(record: &DetectionRecord) -> Vec<Value> {
    if let Some(failure) = &record.failure {
        return vec![json!({ "file": record.file, "error": failure })];
    }
    let classified = record.classified.iter().map(|c| {
        let mut row = to_json(&Record {
            file: record.file.clone(),
            outcome: Ok((c.prediction.clone(), c.answer.clone())),
        });
        row["detection"] = json!(c.index);
        row["bbox"] = json!(c.bbox);
        row["conf"] = json!(c.conf);
        (c.index, row)
    });
    let skipped = record.skipped.iter().map(|s| {
        let row = json!({
            "file": record.file,
            "detection": s.index,
            "bbox": s.bbox,
            "conf": s.conf,
            "error": s.reason,
        });
        (s.index, row)
    });
    let mut rows: Vec<(usize, Value)> = classified.chain(skipped).collect();
    rows.sort_by_key(|(index, _)| *index);
    rows.into_iter().map(|(_, row)| row).collect()
}

/// The `file` of every complete line of an existing output.
fn recorded_files(path: &Path) -> Result<HashSet<String>> {
    let text = complete_lines(path)?;
    resume::jsonl_files(&text).map_err(|e| anyhow!("{}:{e}; cannot resume it", path.display()))
}
