//! The records of the detection log, one JSON object per line, tagged by `"type"`:
//! `start`, `frame`, `event`, `health`, `failure` and `recovery`. Every line also carries
//! `seq`, the record's sequence number in the log (from 1, increasing by one per record).
//!
//! Times are RFC 3339 strings: `processed_at`, `at` and `started_at` in UTC (`…Z`); capture
//! times (`captured`, event `start`/`end`) in the deployment's local time with its offset
//! (`…+10:00`), the form Camtrap DP wants.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::bundle::manifest::ClassInfo;
use crate::classifier::ClassScore;
use crate::crop::NormalizedBox;
use crate::field::config::{Deployment, UtcOffset};
use crate::field::decision::{Event, EventOutcome, Outcome};

/// One line of the log: the record and its sequence number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Sequence number in the log, from 1.
    pub seq: u64,
    /// The record.
    #[serde(flatten)]
    pub record: Record,
}

/// A record of the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Record {
    /// The runtime started.
    Start(StartRecord),
    /// A frame was classified.
    Frame(FrameRecord),
    /// An event closed.
    Event(EventRecord),
    /// Periodic health figures.
    Health(HealthRecord),
    /// A frame (or a step on it) failed; the loop went on.
    Failure(FailureRecord),
    /// Opening the log found a torn last line and set it aside.
    Recovery(RecoveryReport),
}

/// `start`: who is recording what, where; the Camtrap DP export reads deployment and classes
/// from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartRecord {
    /// When the runtime started, UTC.
    pub started_at: String,
    /// `xrvlm` version.
    pub runtime_version: String,
    /// The board profile file.
    pub profile: String,
    /// The profile's `[deployment]`.
    pub deployment: Deployment,
    /// The model in use.
    pub model: ModelRecord,
}

/// The model a start record names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// Bundle model name.
    pub name: String,
    /// Bundle model version.
    pub version: String,
    /// Bundle directory.
    pub bundle: String,
    /// Precision the image model runs in.
    pub precision: String,
    /// The bundle's classes, in logit order.
    pub classes: Vec<ClassInfo>,
    /// The profile's `decision.blank_label`: the class that is not a taxon.
    pub blank_label: String,
}

/// `frame`: one classified frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameRecord {
    /// When classification finished, UTC.
    pub processed_at: String,
    /// When the frame was captured, local time with the deployment's offset.
    pub captured: String,
    /// Unique id of the frame in the log.
    pub media_id: String,
    /// The source that delivered it (`v4l2`, `folder`, `synthetic`).
    pub source: String,
    /// The file name (a folder source's file, or a name the camera source gives the frame).
    pub file_name: String,
    /// The decision.
    pub outcome: Outcome,
    /// The k best classes, best first.
    pub top: Vec<TopClass>,
    /// Decode to decision, in milliseconds.
    pub latency_ms: f64,
    /// The saved JPEG, relative to the output folder, if the frame was saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_frame: Option<String>,
    /// The region of the frame that was classified (the motion gate's changed region,
    /// `[x, y, width, height]` as fractions of the frame), absent when the whole frame was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<NormalizedBox>,
}

/// One of a frame's best classes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopClass {
    /// Class label.
    pub label: String,
    /// Softmax probability.
    pub probability: f32,
}

impl From<&ClassScore> for TopClass {
    fn from(score: &ClassScore) -> Self {
        Self {
            label: score.label.clone(),
            probability: score.probability,
        }
    }
}

/// `event`: a closed event (see [`crate::field::decision`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Event number, unique in the log.
    pub event_id: u64,
    /// Capture time of the first frame, local with offset.
    pub start: String,
    /// Capture time of the last frame, local with offset.
    pub end: String,
    /// The summary.
    pub outcome: EventOutcome,
    /// Frames in the event.
    pub frames: usize,
    /// Their media ids, in order.
    pub media_ids: Vec<String>,
    /// The frame with the highest probability of the event's label.
    pub best_media_id: String,
    /// That probability.
    pub best_probability: f32,
}

impl EventRecord {
    /// The record of `event`, times at `offset`.
    pub fn new(event: &Event, offset: UtcOffset) -> Self {
        Self {
            event_id: event.id,
            start: offset.rfc3339(event.start),
            end: offset.rfc3339(event.end),
            outcome: event.outcome.clone(),
            frames: event.media_ids.len(),
            media_ids: event.media_ids.clone(),
            best_media_id: event.best_media_id.clone(),
            best_probability: event.best_probability,
        }
    }
}

/// `health`: figures the loop reports every `health_interval_min`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthRecord {
    /// When, UTC.
    pub at: String,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Frames taken from the source since start (scored, skipped by the gate, or failed).
    pub frames: u64,
    /// Frames the model scored since start.
    #[serde(default)]
    pub inferences: u64,
    /// Frames the motion gate skipped since start.
    #[serde(default)]
    pub skipped_by_gate: u64,
    /// Frames the source lost (gaps in its sequence numbers) since start.
    #[serde(default)]
    pub dropped_frames: u64,
    /// Times the source went away since start.
    #[serde(default)]
    pub outages: u64,
    /// Events closed since start.
    pub events: u64,
    /// Failures since start.
    pub failures: u64,
    /// Bytes of saved frames on disk.
    pub saved_frame_bytes: u64,
    /// Mean classification latency since start, if any frame ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_latency_ms: Option<f64>,
    /// Free bytes on the output file system, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_free_bytes: Option<u64>,
    /// SoC temperature, where the board reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f32>,
}

/// `failure`: something failed on one frame; the loop went on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// When, UTC.
    pub at: String,
    /// The step that failed.
    pub stage: FailureStage,
    /// The frame's media id, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    /// The frame's file name, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// The error, with its causes.
    pub error: String,
}

/// Steps of the loop that can fail on one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureStage {
    /// Reading a frame from the source.
    Source,
    /// Decoding the frame into pixels.
    Decode,
    /// Preprocessing or the model.
    Classify,
    /// Saving the frame's JPEG.
    SaveFrame,
    /// Drawing the status display.
    Display,
}

/// `recovery`: a torn last line found on open, moved aside.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecoveryReport {
    /// Bytes moved out of the log.
    pub torn_bytes: u64,
    /// The file they were moved to.
    pub side_file: String,
    /// Length of the log after truncation (its last good newline).
    pub truncated_to: u64,
}

/// `t` as RFC 3339 UTC; the form of `processed_at`, `at` and `started_at`.
pub fn utc(t: SystemTime) -> String {
    crate::timestamp::rfc3339_utc(t)
}
