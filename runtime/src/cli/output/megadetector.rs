//! The MegaDetector batch-output format (<https://lila.science/megadetector-output-format>),
//! version 1.4, so that Timelapse, AddaxAI and the MegaDetector postprocessing tools read
//! our results.
//!
//! The format attaches classifications to detections. This runtime classifies whole frames
//! and has no detector, so each classified image carries one whole-frame detection (category
//! `1` "animal", `conf` 1.0, `bbox` [0, 0, 1, 1]) whose `classifications` are the top-k
//! `[class id, probability]` pairs; the same list also sits on the image itself for readers
//! that want image-level results. A failed image has `failure` and `"detections": null`, as
//! the format prescribes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use xrvlm_runtime::timestamp::UtcTime;

use super::{sibling, Record, RunInfo};

/// Records between two saves of the document: bounds the work a killed run loses.
pub const SAVE_EVERY: usize = 200;
/// The format version written.
pub const FORMAT_VERSION: &str = "1.4";
/// The detection category of a whole-frame detection.
const WHOLE_FRAME_CATEGORY: &str = "1";

/// An open MegaDetector output; the document is kept in memory and saved atomically.
pub struct MegadetectorSink {
    path: PathBuf,
    info: RunInfo,
    images: Vec<Value>,
    unsaved: usize,
}

impl MegadetectorSink {
    /// Starts a document at `path`; with `resume`, keeps the images of the existing one and
    /// returns their files.
    pub fn open(path: &Path, resume: bool, info: &RunInfo) -> Result<(Self, HashSet<String>)> {
        let images = if resume && path.exists() {
            existing_images(path, info)?
        } else {
            Vec::new()
        };
        let done = images
            .iter()
            .filter_map(|im| im.get("file").and_then(Value::as_str).map(str::to_string))
            .collect();
        let sink = Self {
            path: path.to_path_buf(),
            info: info.clone(),
            images,
            unsaved: 0,
        };
        sink.save()?;
        Ok((sink, done))
    }

    /// Adds one image; saves every [`SAVE_EVERY`] records.
    pub fn write(&mut self, record: &Record) -> Result<()> {
        self.images.push(image_entry(record));
        self.unsaved += 1;
        if self.unsaved >= SAVE_EVERY {
            self.save()?;
            self.unsaved = 0;
        }
        Ok(())
    }

    /// Saves the final document.
    pub fn finish(self) -> Result<()> {
        self.save()
    }

    fn save(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&document(&self.info, &self.images))?;
        let temp = sibling(&self.path, ".partial");
        std::fs::write(&temp, text + "\n")
            .with_context(|| format!("cannot write {}", temp.display()))?;
        std::fs::rename(&temp, &self.path)
            .with_context(|| format!("cannot move {} into place", temp.display()))
    }
}

/// The whole document.
fn document(info: &RunInfo, images: &[Value]) -> Value {
    let ids = |values: &[String]| -> Map<String, Value> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), Value::String(v.clone())))
            .collect()
    };
    json!({
        "info": {
            "format_version": FORMAT_VERSION,
            "classifier": info.classifier,
            "classification_completion_time": utc_now(),
            "classifier_metadata": { "whole_frame": true, "top_k": info.top_k },
        },
        "detection_categories": { WHOLE_FRAME_CATEGORY: "animal" },
        "classification_categories": ids(&info.labels),
        "classification_category_descriptions": ids(&info.descriptions),
        "images": images,
    })
}

/// One entry of `images`.
fn image_entry(record: &Record) -> Value {
    match &record.outcome {
        Ok(p) => {
            let classifications: Vec<Value> = p
                .top
                .iter()
                .map(|c| json!([c.index.to_string(), c.probability]))
                .collect();
            json!({
                "file": record.file,
                "detections": [{
                    "category": WHOLE_FRAME_CATEGORY,
                    "conf": 1.0,
                    "bbox": [0.0, 0.0, 1.0, 1.0],
                    "classifications": classifications,
                }],
                "classifications": classifications,
            })
        }
        Err(error) => json!({ "file": record.file, "failure": error, "detections": null }),
    }
}

/// The images of an existing document written for the same classes.
fn existing_images(path: &Path, info: &RunInfo) -> Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let doc: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a MegaDetector JSON document", path.display()))?;
    let written: Option<Vec<String>> = doc
        .get("classification_categories")
        .and_then(Value::as_object)
        .map(|cats| {
            (0..cats.len())
                .map(|i| {
                    cats.get(&i.to_string())
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                })
                .collect()
        });
    if written.as_ref() != Some(&info.labels) {
        bail!(
            "{}: its classification_categories differ from this bundle's classes; cannot resume it",
            path.display()
        );
    }
    match doc.get("images") {
        Some(Value::Array(images)) => Ok(images.clone()),
        _ => bail!("{}: has no images list; cannot resume it", path.display()),
    }
}

/// The current UTC time as `YYYY-MM-DD HH:MM:SS`, the format's timestamp form.
fn utc_now() -> String {
    UtcTime::from_system(SystemTime::now()).space_separated()
}
