//! The three Camtrap DP tables, built from the log's records in order.
//!
//! - `deployments`: one row per deployment id met in `start` records (or the profile's).
//!   Start and end are the first and last capture times of its frames.
//! - `media`: one row per `frame` record. `filePath` is the saved JPEG relative to the output
//!   folder when the frame was saved, else the source's file name; `filePublic` is false.
//! - `observations`: one `event`-level observation per `event` record (`animal` with the
//!   class's scientific name, or `unknown` with the best guess in the comment), and one
//!   `media`-level `blank` observation per blank frame. Classification is `machine`.

use std::collections::{BTreeMap, HashSet};

use super::{ClassList, ExportOptions};
use crate::crop::NormalizedBox;
use crate::field::config::Deployment;
use crate::field::decision::{EventOutcome, Outcome};
use crate::field::detection_log::{Entry, EventRecord, FrameRecord, Record};

/// Columns of `deployments.csv`, in the schema's order.
pub const DEPLOYMENT_COLUMNS: [&str; 24] = [
    "deploymentID",
    "locationID",
    "locationName",
    "latitude",
    "longitude",
    "coordinateUncertainty",
    "deploymentStart",
    "deploymentEnd",
    "setupBy",
    "cameraID",
    "cameraModel",
    "cameraDelay",
    "cameraHeight",
    "cameraDepth",
    "cameraTilt",
    "cameraHeading",
    "detectionDistance",
    "timestampIssues",
    "baitUse",
    "featureType",
    "habitat",
    "deploymentGroups",
    "deploymentTags",
    "deploymentComments",
];

/// Columns of `media.csv`, in the schema's order.
pub const MEDIA_COLUMNS: [&str; 11] = [
    "mediaID",
    "deploymentID",
    "captureMethod",
    "timestamp",
    "filePath",
    "filePublic",
    "fileName",
    "fileMediatype",
    "exifData",
    "favorite",
    "mediaComments",
];

/// Columns of `observations.csv`, in the schema's order.
pub const OBSERVATION_COLUMNS: [&str; 28] = [
    "observationID",
    "deploymentID",
    "mediaID",
    "eventID",
    "eventStart",
    "eventEnd",
    "observationLevel",
    "observationType",
    "cameraSetupType",
    "scientificName",
    "count",
    "lifeStage",
    "sex",
    "behavior",
    "individualID",
    "individualPositionRadius",
    "individualPositionAngle",
    "individualSpeed",
    "bboxX",
    "bboxY",
    "bboxWidth",
    "bboxHeight",
    "classificationMethod",
    "classifiedBy",
    "classificationTimestamp",
    "classificationProbability",
    "observationTags",
    "observationComments",
];

/// A row: values by column name; columns not set are empty.
pub type Row = BTreeMap<&'static str, String>;

/// The tables and what the package metadata needs from them.
#[derive(Debug, Default)]
pub struct Tables {
    /// Deployments, in the order met.
    pub deployments: Vec<DeploymentSpan>,
    /// `media.csv` rows.
    pub media: Vec<Row>,
    /// `observations.csv` rows.
    pub observations: Vec<Row>,
    /// The classes (of the last start record, or the profile's bundle).
    pub classes: Option<ClassList>,
    /// Records skipped, and why.
    pub warnings: Vec<String>,
}

/// A deployment and the times it covers.
#[derive(Clone, Debug)]
pub struct DeploymentSpan {
    /// The deployment.
    pub deployment: Deployment,
    /// The first start record's time (UTC), for a deployment without frames.
    pub started_at: Option<String>,
    /// First and last capture time of its frames (one deployment has one offset, so its
    /// RFC 3339 times order as text).
    pub captured: Option<(String, String)>,
}

impl DeploymentSpan {
    /// `deploymentStart` and `deploymentEnd`: its frames' times, else its start, else `fallback`.
    pub fn range(&self, fallback: &str) -> (String, String) {
        match (&self.captured, &self.started_at) {
            (Some((first, last)), _) => (first.clone(), last.clone()),
            (None, Some(at)) => (at.clone(), at.clone()),
            (None, None) => (fallback.to_string(), fallback.to_string()),
        }
    }
}

/// What the builder knows while reading the log in order.
struct Builder<'a> {
    options: &'a ExportOptions,
    tables: Tables,
    current: Option<usize>,
    media_ids: HashSet<String>,
    /// Media id to the frame's `processed_at`, for an event's classification timestamp.
    processed: BTreeMap<String, String>,
    classified_by: String,
}

/// Builds the tables from the log's entries.
pub fn build(entries: &[Entry], options: &ExportOptions) -> Tables {
    let mut b = Builder {
        options,
        tables: Tables {
            classes: options.classes.clone(),
            ..Tables::default()
        },
        current: None,
        media_ids: HashSet::new(),
        processed: BTreeMap::new(),
        classified_by: "xrvlm".into(),
    };
    if let Some(d) = &options.deployment {
        b.enter(d.clone(), None);
    }
    for entry in entries {
        match &entry.record {
            Record::Start(start) => {
                if options.classes.is_none() {
                    b.tables.classes = Some(ClassList {
                        classes: start.model.classes.clone(),
                        blank_label: start.model.blank_label.clone(),
                    });
                }
                b.classified_by = format!(
                    "xrvlm {} ({} {}, {})",
                    start.runtime_version,
                    start.model.name,
                    start.model.version,
                    start.model.precision
                );
                if options.deployment.is_none() {
                    b.enter(start.deployment.clone(), Some(&start.started_at));
                }
            }
            Record::Frame(frame) => b.frame(entry.seq, frame),
            Record::Event(event) => b.event(entry.seq, event),
            Record::Health(_) | Record::Failure(_) | Record::Recovery(_) => {}
        }
    }
    b.tables
}

impl Builder<'_> {
    /// Makes `deployment` current (a new row unless its id was seen).
    fn enter(&mut self, deployment: Deployment, started_at: Option<&str>) {
        let deployments = &mut self.tables.deployments;
        let found = deployments
            .iter()
            .position(|s| s.deployment.id == deployment.id);
        self.current = Some(found.unwrap_or_else(|| {
            deployments.push(DeploymentSpan {
                deployment,
                started_at: started_at.map(str::to_string),
                captured: None,
            });
            deployments.len() - 1
        }));
    }

    fn current_deployment(&mut self, seq: u64, what: &str) -> Option<usize> {
        if self.current.is_none() {
            self.tables.warnings.push(format!(
                "record {seq}: {what} before any start record, skipped (pass --profile to name its deployment)"
            ));
        }
        self.current
    }

    fn frame(&mut self, seq: u64, frame: &FrameRecord) {
        let Some(d) = self.current_deployment(seq, "frame") else {
            return;
        };
        if !self.media_ids.insert(frame.media_id.clone()) {
            self.tables.warnings.push(format!(
                "record {seq}: media id {:?} was already used, frame skipped",
                frame.media_id
            ));
            return;
        }
        self.widen(d, &frame.captured);
        self.processed
            .insert(frame.media_id.clone(), frame.processed_at.clone());
        let deployment_id = self.tables.deployments[d].deployment.id.clone();
        self.tables.media.push(media_row(&deployment_id, frame));
        let named = match &frame.outcome {
            Outcome::Species { label, probability } => {
                Some((self.scientific_name(label), *probability))
            }
            Outcome::Taxon {
                name, probability, ..
            } => Some((name.clone(), *probability)),
            Outcome::Blank { .. } | Outcome::Unknown { .. } => None,
        };
        if let (Some((scientific_name, probability)), Some(bbox)) = (named, frame.bbox) {
            self.boxed_animal(&deployment_id, frame, scientific_name, probability, bbox);
        }
        if let Outcome::Blank { probability } = frame.outcome {
            let mut row = Row::new();
            row.insert("observationID", format!("{}-blank", frame.media_id));
            row.insert("deploymentID", deployment_id);
            row.insert("mediaID", frame.media_id.clone());
            row.insert("eventStart", frame.captured.clone());
            row.insert("eventEnd", frame.captured.clone());
            row.insert("observationLevel", "media".into());
            row.insert("observationType", "blank".into());
            self.classification(&mut row, probability, &frame.processed_at);
            self.tables.observations.push(row);
        }
    }

    /// A media-level observation of the animal in a frame classified on a region: the
    /// region is the observation's bounding box (the standard's `bbox*` fields belong to
    /// media-level observations; the event-level one names the species for the event).
    /// `scientific_name` is the species' or, for a rolled-up frame, the taxon's.
    fn boxed_animal(
        &mut self,
        deployment_id: &str,
        frame: &FrameRecord,
        scientific_name: String,
        probability: f32,
        bbox: NormalizedBox,
    ) {
        let mut row = Row::new();
        row.insert("observationID", format!("{}-animal", frame.media_id));
        row.insert("deploymentID", deployment_id.to_string());
        row.insert("mediaID", frame.media_id.clone());
        row.insert("eventStart", frame.captured.clone());
        row.insert("eventEnd", frame.captured.clone());
        row.insert("observationLevel", "media".into());
        row.insert("observationType", "animal".into());
        row.insert("scientificName", scientific_name);
        let [x, y, width, height] = bbox.to_array();
        for (column, value) in [
            ("bboxX", x),
            ("bboxY", y),
            ("bboxWidth", width),
            ("bboxHeight", height),
        ] {
            row.insert(column, format!("{value:.4}"));
        }
        self.classification(&mut row, probability, &frame.processed_at);
        self.tables.observations.push(row);
    }

    /// Widens deployment `d`'s capture range to `captured`.
    fn widen(&mut self, d: usize, captured: &str) {
        let span = &mut self.tables.deployments[d].captured;
        let (first, last) =
            span.get_or_insert_with(|| (captured.to_string(), captured.to_string()));
        if captured < first.as_str() {
            *first = captured.to_string();
        }
        if captured > last.as_str() {
            *last = captured.to_string();
        }
    }

    fn event(&mut self, seq: u64, event: &EventRecord) {
        let Some(d) = self.current_deployment(seq, "event") else {
            return;
        };
        let mut row = Row::new();
        row.insert("observationID", format!("event-{}", event.event_id));
        row.insert(
            "deploymentID",
            self.tables.deployments[d].deployment.id.clone(),
        );
        row.insert("eventID", format!("event-{}", event.event_id));
        row.insert("eventStart", event.start.clone());
        row.insert("eventEnd", event.end.clone());
        row.insert("observationLevel", "event".into());
        let comment = format!(
            "{} frame(s): {}; best frame {}",
            event.frames,
            event.media_ids.join(" "),
            event.best_media_id
        );
        match &event.outcome {
            EventOutcome::Species { label } => {
                row.insert("observationType", "animal".into());
                row.insert("scientificName", self.scientific_name(label));
                row.insert("observationComments", comment);
            }
            EventOutcome::Taxon { rank, name } => {
                // The rank is the package's `taxonomic` entry for the name (`taxonRank`).
                row.insert("observationType", "animal".into());
                row.insert("scientificName", name.clone());
                row.insert(
                    "observationComments",
                    format!("no species sure, rolled up to {}; {comment}", rank.as_str()),
                );
            }
            EventOutcome::Unknown { best_guess } => {
                row.insert("observationType", "unknown".into());
                row.insert(
                    "observationComments",
                    format!(
                        "best guess {best_guess} ({:.3}); {comment}",
                        event.best_probability
                    ),
                );
            }
        }
        let processed = self
            .processed
            .get(&event.best_media_id)
            .cloned()
            .unwrap_or_default();
        self.classification(&mut row, event.best_probability, &processed);
        self.tables.observations.push(row);
    }

    fn classification(&self, row: &mut Row, probability: f32, processed_at: &str) {
        row.insert("classificationMethod", "machine".into());
        row.insert("classifiedBy", self.classified_by.clone());
        if !processed_at.is_empty() {
            row.insert("classificationTimestamp", processed_at.to_string());
        }
        row.insert(
            "classificationProbability",
            format!("{:.4}", probability.clamp(0.0, 1.0)),
        );
    }

    fn scientific_name(&self, label: &str) -> String {
        let classes = self
            .tables
            .classes
            .as_ref()
            .or(self.options.classes.as_ref());
        classes.map_or_else(|| label.to_string(), |c| c.scientific_name(label))
    }
}

fn media_row(deployment_id: &str, frame: &FrameRecord) -> Row {
    let file_path = frame
        .saved_frame
        .clone()
        .unwrap_or_else(|| package_relative(&frame.file_name));
    let mut row = Row::new();
    row.insert("mediaID", frame.media_id.clone());
    row.insert("deploymentID", deployment_id.to_string());
    row.insert("timestamp", frame.captured.clone());
    row.insert("fileMediatype", media_type(&file_path).into());
    row.insert("filePath", file_path);
    row.insert("filePublic", "false".into());
    row.insert("fileName", frame.file_name.clone());
    if frame.saved_frame.is_none() {
        row.insert("mediaComments", "frame not saved on the device".into());
    }
    row
}

/// A file name as a relative path the schema accepts: not starting with `.`, `/` or `~`,
/// no `..`; only the last component of anything else.
fn package_relative(file_name: &str) -> String {
    let last = file_name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned = last.replace("..", "_");
    match cleaned.chars().next() {
        None => "unnamed".into(),
        Some('.' | '~') => format!("_{cleaned}"),
        Some(_) => cleaned,
    }
}

/// The media type of an image file by its extension.
fn media_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match extension.as_deref() {
        Some("png") => "image/png",
        Some("bmp") => "image/bmp",
        Some("webp") => "image/webp",
        Some("tif" | "tiff") => "image/tiff",
        // Saved frames and camera stills.
        _ => "image/jpeg",
    }
}

/// The row's values in `columns` order.
pub fn ordered(row: &Row, columns: &[&str]) -> Vec<String> {
    debug_assert!(
        row.keys().all(|k| columns.contains(k)),
        "unknown column in {row:?}"
    );
    columns
        .iter()
        .map(|c| row.get(c).cloned().unwrap_or_default())
        .collect()
}

/// A deployment as a `deployments.csv` row.
pub fn deployment_row(d: &Deployment, start: &str, end: &str) -> Row {
    let mut row = Row::new();
    row.insert("deploymentID", d.id.clone());
    if let Some(id) = &d.location_id {
        row.insert("locationID", id.clone());
    }
    row.insert("locationName", d.location_name.clone());
    row.insert("latitude", d.latitude.to_string());
    row.insert("longitude", d.longitude.to_string());
    if let Some(u) = d.coordinate_uncertainty_m {
        row.insert("coordinateUncertainty", u.to_string());
    }
    row.insert("deploymentStart", start.to_string());
    row.insert("deploymentEnd", end.to_string());
    if let Some(m) = &d.camera_model {
        row.insert("cameraModel", m.clone());
    }
    if let Some(h) = d.camera_height_m {
        row.insert("cameraHeight", h.to_string());
    }
    row
}
