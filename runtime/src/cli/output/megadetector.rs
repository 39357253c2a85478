//! The MegaDetector batch-output format (<https://lila.science/megadetector-output-format>),
//! version 1.4 or later, so that Timelapse, AddaxAI and the MegaDetector postprocessing tools
//! read our results.
//!
//! The format attaches classifications to detections: each is a `classifications` list of
//! `[class id, probability]` pairs, best first, the ids those of `classification_categories`
//! (class names; `classification_category_descriptions` adds common and scientific names). Two
//! layouts ([`Layout`]):
//!
//! - Whole frames: each classified image carries one whole-frame detection (category `1`
//!   "animal", `conf` 1.0, `bbox` [0, 0, 1, 1]) with the top-k pairs; the same list also sits on
//!   the image itself for readers that want image-level results. A failed image has `failure`
//!   and `"detections": null`, as the format prescribes.
//! - A detector's boxes (`classify --detections md.json`): the detection file's own document is
//!   written back, every key kept (an unknown one too), `classifications` added to each animal
//!   detection that was classified and `info` extended with the classifier. An image that could
//!   not be classified gets a `failure` string and keeps its detections, as MegaDetector's own
//!   `run_md_and_speciesnet.py` does when a crop fails: the detector's boxes are still good,
//!   and dropping them would lose them. (The format's validator would rather see
//!   `"detections": null` next to a `failure`; keeping the boxes is the choice made here.)
//!
//! With a bundle that has `[open_world]`, `classification_categories` gets one more id after
//! the classes, `unknown` (a species this model does not know), and a prediction the rule
//! rejects lists it first, with the top class's probability (as the field log's unknown
//! frames carry it), before its top-k pairs, which stay as the guesses; `classifier_metadata`
//! names the score and threshold. Without it the categories are the classes alone.
//!
//! Keys are written in sorted order (serde_json's maps): a document's meaning does not depend on
//! its key order.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Map, Value};
use xrvlm_runtime::classifier::Prediction;
use xrvlm_runtime::crop::CropRule;
use xrvlm_runtime::resume;
use xrvlm_runtime::timestamp::UtcTime;

use super::{sibling, DetectionRecord, Layout, Record, RunInfo};

/// Records between two saves of the document: bounds the work a killed run loses.
pub const SAVE_EVERY: usize = 200;
/// The format version written (a detection file's is kept when later).
pub const FORMAT_VERSION: &str = "1.4";
/// The detection category of a whole-frame detection.
const WHOLE_FRAME_CATEGORY: &str = "1";
/// The classification category of a species the model does not know.
pub const UNKNOWN_CATEGORY: &str = "unknown";
/// Its description.
const UNKNOWN_DESCRIPTION: &str = "unknown species (not one of this model's classes)";

/// An open MegaDetector output; the document is kept in memory and saved atomically.
pub struct MegadetectorSink {
    path: PathBuf,
    info: RunInfo,
    /// Every top-level key but `images` and the classification ones this run fills in.
    template: Map<String, Value>,
    images: Vec<Value>,
    unsaved: usize,
}

impl MegadetectorSink {
    /// Starts a document of `layout` at `path`; with `resume`, keeps the images of the existing
    /// one and returns their files.
    pub fn open(
        path: &Path,
        resume: bool,
        info: &RunInfo,
        layout: Layout,
    ) -> Result<(Self, HashSet<String>)> {
        let images = if resume && path.exists() {
            existing_images(path, info)?
        } else {
            Vec::new()
        };
        let done = resume::image_files(&images);
        let sink = Self {
            path: path.to_path_buf(),
            info: info.clone(),
            template: template(layout, info),
            images,
            unsaved: 0,
        };
        sink.save()?;
        Ok((sink, done))
    }

    /// Adds one image classified whole; saves every [`SAVE_EVERY`] records.
    pub fn write(&mut self, record: &Record) -> Result<()> {
        let entry = image_entry(record, unknown_id(&self.info).as_deref());
        self.push(entry)
    }

    /// Adds one image of a detection file; saves every [`SAVE_EVERY`] records.
    pub fn write_detections(&mut self, record: &DetectionRecord) -> Result<()> {
        let entry = detection_entry(record, unknown_id(&self.info).as_deref());
        self.push(entry)
    }

    fn push(&mut self, entry: Value) -> Result<()> {
        self.images.push(entry);
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
        let document = document(&self.template, &self.info, &self.images);
        let text = serde_json::to_string_pretty(&document)?;
        let temp = sibling(&self.path, ".partial");
        std::fs::write(&temp, text + "\n")
            .with_context(|| format!("cannot write {}", temp.display()))?;
        std::fs::rename(&temp, &self.path)
            .with_context(|| format!("cannot move {} into place", temp.display()))
    }
}

/// What a document has around its images and classification categories: for whole frames,
/// the one detection category; for a detection file, all of its own keys. Either way `info`
/// gets this run's `classifier_metadata` (replacing an earlier classifier's).
fn template(layout: Layout, run: &RunInfo) -> Map<String, Value> {
    let top_k = run.top_k;
    let (mut document, mut metadata) = match layout {
        Layout::Frames => {
            let document = json!({
                "info": { "format_version": FORMAT_VERSION },
                "detection_categories": { WHOLE_FRAME_CATEGORY: "animal" },
            });
            let metadata = json!({ "whole_frame": true, "top_k": top_k });
            (into_object(document), metadata)
        }
        Layout::Detections {
            document,
            min_detection_conf,
        } => {
            let rule = CropRule::DETECTION;
            let metadata = json!({
                "whole_frame": false,
                "top_k": top_k,
                "min_detection_conf": min_detection_conf,
                "crop": {
                    "shape": "square around the box's centre, moved inside the image",
                    "expansion": rule.expansion,
                    "min_side": rule.min_side,
                },
            });
            (document, metadata)
        }
    };
    if let (Some(rule), Some(id)) = (&run.open_world, unknown_id(run)) {
        metadata["open_world"] = json!({
            "score": rule.kind.name(),
            "threshold": rule.threshold,
            "unknown_category": id,
        });
    }
    let mut info = document.remove("info").map(into_object).unwrap_or_default();
    info.insert(
        "format_version".into(),
        format_version(info.get("format_version")),
    );
    info.insert("classifier_metadata".into(), metadata);
    document.insert("info".into(), Value::Object(info));
    document
}

/// `value`'s map, or an empty one when it is not an object.
fn into_object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A document's `format_version` where it is a version at least [`FORMAT_VERSION`] (the first
/// with classification descriptions), else [`FORMAT_VERSION`].
fn format_version(found: Option<&Value>) -> Value {
    let least: f64 = FORMAT_VERSION.parse().expect("a version number");
    match found.and_then(Value::as_str) {
        Some(v) if v.trim().parse::<f64>().is_ok_and(|v| v >= least) => Value::String(v.into()),
        _ => Value::String(FORMAT_VERSION.into()),
    }
}

/// The whole document.
fn document(template: &Map<String, Value>, info: &RunInfo, images: &[Value]) -> Value {
    let ids = |values: &[String]| -> Value {
        Value::Object(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), Value::String(v.clone())))
                .collect(),
        )
    };
    let mut document = template.clone();
    if let Some(Value::Object(run)) = document.get_mut("info") {
        run.insert("classifier".into(), json!(info.classifier));
        run.insert("classification_completion_time".into(), json!(utc_now()));
    }
    let (labels, descriptions) = categories(info);
    document.insert("classification_categories".into(), ids(&labels));
    document.insert(
        "classification_category_descriptions".into(),
        ids(&descriptions),
    );
    document.insert("images".into(), Value::Array(images.to_vec()));
    Value::Object(document)
}

/// The classification categories' names and descriptions, in id order: the classes, then
/// [`UNKNOWN_CATEGORY`] when the bundle has an open-world rule.
fn categories(info: &RunInfo) -> (Vec<String>, Vec<String>) {
    let mut labels = info.labels.clone();
    let mut descriptions = info.descriptions.clone();
    if info.open_world.is_some() {
        labels.push(UNKNOWN_CATEGORY.into());
        descriptions.push(UNKNOWN_DESCRIPTION.into());
    }
    (labels, descriptions)
}

/// The id of [`UNKNOWN_CATEGORY`] (the one after the classes), with an open-world rule.
fn unknown_id(info: &RunInfo) -> Option<String> {
    info.open_world
        .as_ref()
        .map(|_| info.labels.len().to_string())
}

/// A prediction's `classifications`: `[class id, probability]` pairs, best first; a frame the
/// open-world rule rejects starts with `[unknown, top-1 probability]`.
fn classifications(prediction: &Prediction, unknown: Option<&str>) -> Value {
    let rejected = match (unknown, prediction.top.first()) {
        (Some(id), Some(best)) if prediction.is_unknown() => Some(json!([id, best.probability])),
        _ => None,
    };
    rejected
        .into_iter()
        .chain(
            prediction
                .top
                .iter()
                .map(|c| json!([c.index.to_string(), c.probability])),
        )
        .collect()
}

/// One entry of `images` for an image classified whole.
fn image_entry(record: &Record, unknown: Option<&str>) -> Value {
    match &record.outcome {
        Ok((p, _)) => {
            let classifications = classifications(p, unknown);
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

/// One entry of `images` for an image of a detection file: its entry with `classifications`
/// on the detections classified; where the image could not be classified, `failure` and
/// `"detections": null`, as the format prescribes (MegaDetector's `validate_batch_results`
/// rejects a failed image with detections; the detection file still has them).
fn detection_entry(record: &DetectionRecord, unknown: Option<&str>) -> Value {
    let mut entry = record.entry.clone();
    if let Some(Value::Array(detections)) = entry.get_mut("detections") {
        for c in &record.classified {
            if let Some(Value::Object(detection)) = detections.get_mut(c.index) {
                detection.insert(
                    "classifications".into(),
                    classifications(&c.prediction, unknown),
                );
            }
        }
    }
    if let (Some(failure), Value::Object(fields)) = (&record.failure, &mut entry) {
        fields.insert("failure".into(), json!(failure));
        fields.insert("detections".into(), Value::Null);
    }
    entry
}

/// The images of an existing document written for the same classes.
fn existing_images(path: &Path, info: &RunInfo) -> Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    resume::megadetector_images(&text, &categories(info).0)
        .map_err(|e| anyhow!("{}: {e}; cannot resume it", path.display()))
}

/// The current UTC time as `YYYY-MM-DD HH:MM:SS`, the format's timestamp form.
fn utc_now() -> String {
    UtcTime::from_system(SystemTime::now()).space_separated()
}

#[cfg(test)]
mod tests {
    use super::*;
    use xrvlm_runtime::classifier::ClassScore;
    use xrvlm_runtime::open_world::{OpenWorldRule, OpenWorldVerdict, ScoreKind};

    #[test]
    fn a_detection_files_version_is_kept_when_at_least_1_4() {
        let version = |v: Value| format_version(Some(&v));
        assert_eq!(version(json!("1.5")), "1.5");
        assert_eq!(version(json!("1.4")), "1.4");
        assert_eq!(version(json!("1.3")), "1.4");
        assert_eq!(version(json!(1.5)), "1.4");
        assert_eq!(version(json!("new")), "1.4");
        assert_eq!(format_version(None), "1.4");
    }

    fn run_info(open_world: bool) -> RunInfo {
        RunInfo {
            classifier: "xrvlm demo 1".into(),
            labels: vec!["blank".into(), "finch".into(), "wren".into()],
            descriptions: vec!["blank".into(), "finch".into(), "wren".into()],
            top_k: 2,
            open_world: open_world.then_some(OpenWorldRule {
                kind: ScoreKind::Energy,
                threshold: 2.5,
                blank: Some(0),
            }),
        }
    }

    fn prediction(unknown: Option<bool>) -> Prediction {
        let score = |index: usize, label: &str, probability: f32| ClassScore {
            index,
            label: label.into(),
            probability,
        };
        Prediction {
            top: vec![score(2, "wren", 0.8), score(1, "finch", 0.15)],
            logits: vec![0.0, 1.0, 2.0],
            open_world: unknown.map(|unknown| OpenWorldVerdict {
                score: 1.0,
                unknown,
            }),
            taxa: Vec::new(),
        }
    }

    #[test]
    fn a_rejected_prediction_lists_unknown_first_and_keeps_its_guesses() {
        let info = run_info(true);
        let id = unknown_id(&info).unwrap();
        assert_eq!(id, "3");
        let (labels, descriptions) = categories(&info);
        assert_eq!(labels, ["blank", "finch", "wren", "unknown"]);
        assert_eq!(descriptions[3], UNKNOWN_DESCRIPTION);
        let (wren, finch) = (f64::from(0.8f32), f64::from(0.15f32));
        let rejected = classifications(&prediction(Some(true)), Some(&id));
        assert_eq!(rejected, json!([["3", wren], ["2", wren], ["1", finch]]));
        let kept = classifications(&prediction(Some(false)), Some(&id));
        assert_eq!(kept, json!([["2", wren], ["1", finch]]));
        let metadata = &template(Layout::Frames, &info)["info"]["classifier_metadata"];
        assert_eq!(metadata["open_world"]["score"], "energy");
        assert_eq!(metadata["open_world"]["unknown_category"], "3");
    }

    #[test]
    fn without_an_open_world_rule_the_categories_are_the_classes() {
        let info = run_info(false);
        assert_eq!(unknown_id(&info), None);
        assert_eq!(categories(&info).0, ["blank", "finch", "wren"]);
        let metadata = &template(Layout::Frames, &info)["info"]["classifier_metadata"];
        assert_eq!(metadata.get("open_world"), None);
        let (wren, finch) = (f64::from(0.8f32), f64::from(0.15f32));
        assert_eq!(
            classifications(&prediction(None), None),
            json!([["2", wren], ["1", finch]])
        );
    }

    #[test]
    fn an_earlier_classifiers_metadata_is_replaced_and_other_info_kept() {
        let document = into_object(json!({
            "info": {
                "format_version": "1.5",
                "detector": "MDV5A",
                "classifier_metadata": {"typical_classification_threshold": 0.75},
            },
            "detection_categories": {"1": "animal"},
        }));
        let layout = Layout::Detections {
            document,
            min_detection_conf: 0.3,
        };
        let run = RunInfo {
            classifier: "xrvlm demo 1".into(),
            labels: vec!["a".into()],
            descriptions: vec!["a".into()],
            top_k: 5,
            open_world: None,
        };
        let info = template(layout, &run).remove("info").unwrap();
        assert_eq!(info["format_version"], "1.5");
        assert_eq!(info["detector"], "MDV5A");
        let metadata = &info["classifier_metadata"];
        assert_eq!(metadata.get("typical_classification_threshold"), None);
        assert_eq!(metadata["min_detection_conf"], 0.3);
        assert_eq!(
            metadata["crop"]["expansion"],
            xrvlm_runtime::crop::CropRule::DETECTION.expansion
        );
    }
}
