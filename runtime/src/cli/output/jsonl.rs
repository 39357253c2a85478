//! JSON lines: one object per file.
//!
//! ```json
//! {"file":"a.jpg","top":[{"label":"wren","index":3,"probability":0.91}],"logits":[0.1, …]}
//! {"file":"b.jpg","error":"b.jpg is truncated or corrupt (Jpeg data): …"}
//! ```

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};

use super::{complete_lines, line_writer, Record};

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

    /// Flushes.
    pub fn finish(mut self) -> Result<()> {
        self.out.flush().context("cannot write the output")
    }
}

/// The JSON object of one record.
pub fn to_json(record: &Record) -> Value {
    match &record.outcome {
        Ok(p) => json!({
            "file": record.file,
            "top": p.top.iter().map(|c| json!({
                "label": c.label,
                "index": c.index,
                "probability": c.probability,
            })).collect::<Vec<_>>(),
            "logits": p.logits,
        }),
        Err(error) => json!({ "file": record.file, "error": error }),
    }
}

/// The `file` of every complete line of an existing output.
fn recorded_files(path: &Path) -> Result<HashSet<String>> {
    let text = complete_lines(path)?;
    let mut done = HashSet::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let file = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| v.get("file").and_then(Value::as_str).map(str::to_string))
            .ok_or_else(|| {
                anyhow!(
                    "{}:{}: not a record of `xrvlm classify --format jsonl`; cannot resume it",
                    path.display(),
                    i + 1
                )
            })?;
        done.insert(file);
    }
    Ok(done)
}
