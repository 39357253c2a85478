//! The tables of a board profile, as the run loop uses them. `firmware-config/README.md`
//! documents every key; the defaults here are the ones it lists.
//!
//! `[source]` and `[display]` are read through flat tables (`raw`) and checked into the enums
//! here, so that a key that does not apply to the chosen kind is an error, not silently ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::byte_size::ByteSize;
use crate::allowed::SpeciesList;
use crate::bundle::signing::{PublicKey, TrustPolicy};
use crate::engine::Precision;
use crate::taxonomy::RollUpTo;
use crate::timestamp::UtcOffset;

/// Probability a class must reach to be reported as that species unless `[decision.thresholds]`
/// says otherwise. 0.5 means the model puts more mass on this class than on all others together,
/// so at most one class can clear it.
pub const DEFAULT_THRESHOLD: f64 = 0.5;

/// Label of the bundle class that means "no animal" (the demo bundle's `blank`).
pub const DEFAULT_BLANK_LABEL: &str = "blank";

/// Seconds without an animal frame after which an event closes. Camera-trap practice groups a
/// burst of triggers within about a minute; 60 s keeps one passing animal one event.
pub const DEFAULT_EVENT_GAP_S: u32 = 60;

/// `[deployment]`: where the camera is and how its clock relates to UTC.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// Unique deployment id (Camtrap DP `deploymentID`).
    pub id: String,
    /// Human-readable location name.
    pub location_name: String,
    /// Identifier of the location, shared by deployments at the same spot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_id: Option<String>,
    /// WGS84 decimal degrees, -90 to 90.
    pub latitude: f64,
    /// WGS84 decimal degrees, -180 to 180.
    pub longitude: f64,
    /// Uncertainty of the coordinates in metres, at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinate_uncertainty_m: Option<u32>,
    /// The fixed offset of the camera's local time from UTC.
    pub utc_offset: UtcOffset,
    /// Camera make and model, e.g. `Raspberry Pi Camera Module 3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_model: Option<String>,
    /// Height of the camera above the ground in metres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_height_m: Option<f64>,
}

/// Where frames come from (`[source]`).
#[derive(Clone, Debug, PartialEq)]
pub enum SourceConfig {
    /// A V4L2 camera.
    V4l2(V4l2Config),
    /// Image files in a folder.
    Folder(FolderConfig),
    /// Generated frames, for development and tests.
    Synthetic(SyntheticConfig),
}

/// A V4L2 camera (`kind = "v4l2"`).
#[derive(Clone, Debug, PartialEq)]
pub struct V4l2Config {
    /// The device node, e.g. `/dev/video0`.
    pub device: PathBuf,
    /// The format the camera delivers.
    pub pixel_format: PixelFormat,
    /// Frame size requested from the driver.
    pub frame: FrameGeometry,
}

/// Frame size and rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameGeometry {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

/// Pixel formats read from V4L2 cameras.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    /// Packed YUV 4:2:2.
    Yuyv,
    /// Motion JPEG.
    Mjpeg,
}

/// A folder of images (`kind = "folder"`).
#[derive(Clone, Debug, PartialEq)]
pub struct FolderConfig {
    /// The folder.
    pub path: PathBuf,
    /// Keep watching for new files after the existing ones are done.
    pub watch: bool,
    /// Seconds between scans while watching.
    pub poll_interval_s: u32,
}

/// Generated frames (`kind = "synthetic"`).
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticConfig {
    /// Image seed (as `xrvlm-train synth --seed`): the same seed gives the same frames.
    pub seed: u64,
    /// World seed (as `--world`): which species exist.
    pub world: u64,
    /// How many of the world's species are drawn (as `--classes`); their names must be
    /// classes of the bundle.
    pub species: usize,
    /// Frame side in pixels (square frames, as the generator draws them).
    pub size: u32,
    /// Whole camera frames or detector crops (as `--framing`).
    pub framing: xrvlm_synth::Framing,
}

/// `[model]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The bundle directory.
    pub bundle: PathBuf,
    /// Arithmetic of the image model.
    #[serde(default = "default_precision", deserialize_with = "from_str")]
    pub precision: Precision,
    /// Threads for the image model; `None` for one per core.
    #[serde(default)]
    pub threads: Option<NonZeroUsize>,
    /// Classes kept per frame in the log.
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// Public keys (`ed25519:<hex>`, the text of an `xrvlm keygen` `.pub` file) whose
    /// signature on the bundle is accepted.
    #[serde(default)]
    pub trusted_keys: Vec<PublicKey>,
    /// Refuse a bundle that is not signed by one of `trusted_keys`, or that changed after it
    /// was signed.
    #[serde(default)]
    pub require_signature: bool,
}

impl ModelConfig {
    /// The signature policy the bundle is opened under.
    pub fn trust_policy(&self) -> TrustPolicy {
        if self.require_signature {
            TrustPolicy::require(self.trusted_keys.clone())
        } else {
            TrustPolicy::permissive()
        }
    }
}

fn default_precision() -> Precision {
    Precision::Int8
}
fn default_top_k() -> usize {
    5
}

/// `[motion]`: which frames are classified.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MotionConfig {
    /// Whether the gate runs; without it every frame is classified.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// What opens the gate.
    #[serde(default)]
    pub mode: MotionMode,
    /// Width frames are shrunk to before they are compared.
    #[serde(default = "default_downscale_width")]
    pub downscale_width: u32,
    /// Luma difference (0–255) at which a pixel counts as changed.
    #[serde(default = "default_pixel_threshold")]
    pub pixel_threshold: u8,
    /// Fraction of changed pixels (0–1) at which a frame counts as motion.
    #[serde(default = "default_changed_fraction")]
    pub changed_fraction: f64,
    /// Seconds between frames in `timelapse` mode.
    #[serde(default = "default_timelapse_interval_s")]
    pub timelapse_interval_s: u32,
}

impl Default for MotionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            mode: MotionMode::Motion,
            downscale_width: default_downscale_width(),
            pixel_threshold: default_pixel_threshold(),
            changed_fraction: default_changed_fraction(),
            timelapse_interval_s: default_timelapse_interval_s(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_downscale_width() -> u32 {
    160
}
fn default_pixel_threshold() -> u8 {
    25
}
fn default_changed_fraction() -> f64 {
    0.01
}
fn default_timelapse_interval_s() -> u32 {
    600
}

/// What opens the motion gate (Camtrap DP's `captureMethod`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MotionMode {
    /// Frames that differ enough from the previous ones (`activityDetection`).
    #[default]
    Motion,
    /// One frame every `timelapse_interval_s` (`timeLapse`).
    Timelapse,
}

/// `[decision]`: from a prediction to species, blank or unknown, and events.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionConfig {
    /// Probability the best class must reach, unless `thresholds` names the class.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Per-class thresholds by label, overriding `threshold`.
    #[serde(default)]
    pub thresholds: BTreeMap<String, f64>,
    /// Label of the bundle's "no animal" class.
    #[serde(default = "default_blank_label")]
    pub blank_label: String,
    /// A frame whose best class misses its threshold is `unknown` (true) or counted as blank
    /// (false: no event is opened for it), unless it rolls up.
    #[serde(default = "yes")]
    pub unknown_below_threshold: bool,
    /// The coarsest rank a frame no species answers may be answered at, when the summed
    /// probability of a taxon reaches its threshold (`species`: never; default `family`).
    #[serde(default)]
    pub roll_up_to: RollUpTo,
    /// Seconds without an animal frame after which an event closes.
    #[serde(default = "default_event_gap_s")]
    pub event_gap_s: u32,
    /// The only species that occur at the site (labels, scientific or common names): the
    /// others are never answered, their probability given to the rest (blank is always
    /// allowed). Empty: every class.
    #[serde(default)]
    pub allowed_species: Vec<String>,
    /// Species that do not occur at the site (instead of `allowed_species`).
    #[serde(default)]
    pub excluded_species: Vec<String>,
}

impl DecisionConfig {
    /// The site's species list, if the profile gives one.
    pub fn species_list(&self) -> Option<SpeciesList> {
        match (
            self.allowed_species.is_empty(),
            self.excluded_species.is_empty(),
        ) {
            (false, _) => Some(SpeciesList::Allow(self.allowed_species.clone())),
            (true, false) => Some(SpeciesList::Exclude(self.excluded_species.clone())),
            (true, true) => None,
        }
    }
}

impl Default for DecisionConfig {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            thresholds: BTreeMap::new(),
            blank_label: DEFAULT_BLANK_LABEL.to_string(),
            unknown_below_threshold: true,
            roll_up_to: RollUpTo::default(),
            event_gap_s: DEFAULT_EVENT_GAP_S,
            allowed_species: Vec::new(),
            excluded_species: Vec::new(),
        }
    }
}

fn default_threshold() -> f64 {
    DEFAULT_THRESHOLD
}
fn default_blank_label() -> String {
    DEFAULT_BLANK_LABEL.to_string()
}
fn default_event_gap_s() -> u32 {
    DEFAULT_EVENT_GAP_S
}

/// `[output]`: the detection log and saved frames.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Folder of the detection log and the saved frames.
    pub folder: PathBuf,
    /// Which frames are saved as JPEG.
    #[serde(default)]
    pub save_frames: SaveFrames,
    /// JPEG quality of saved frames, 1–100.
    #[serde(default = "default_jpeg_quality")]
    pub jpeg_quality: u8,
    /// Bytes saved frames may take; the oldest are deleted beyond it.
    #[serde(default = "default_storage_budget")]
    pub storage_budget: ByteSize,
}

fn default_jpeg_quality() -> u8 {
    85
}
fn default_storage_budget() -> ByteSize {
    ByteSize(1 << 30)
}

/// Which frames are saved: `false`, `true` (every classified frame) or `"events"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SaveFrames {
    /// None.
    None,
    /// Every classified frame.
    All,
    /// Frames that belong to an event (species or unknown).
    #[default]
    Events,
}

impl<'de> Deserialize<'de> for SaveFrames {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SaveFramesVisitor)
    }
}

struct SaveFramesVisitor;

impl Visitor<'_> for SaveFramesVisitor {
    type Value = SaveFrames;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("true, false or \"events\"")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<SaveFrames, E> {
        Ok(if v { SaveFrames::All } else { SaveFrames::None })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<SaveFrames, E> {
        match v {
            "events" => Ok(SaveFrames::Events),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
}

/// The status display (`[display]`).
#[derive(Clone, Debug, PartialEq)]
pub enum DisplayConfig {
    /// No display.
    None,
    /// A PNG file rewritten every `interval_s`.
    Png {
        /// The file.
        path: PathBuf,
        /// Seconds between redraws.
        interval_s: u32,
    },
    /// An SSD1306 128×64 OLED on I²C.
    Ssd1306 {
        /// The I²C bus device, e.g. `/dev/i2c-1`.
        device: PathBuf,
        /// The 7-bit I²C address.
        address: u8,
        /// Seconds between redraws.
        interval_s: u32,
    },
    /// A Linux framebuffer.
    Framebuffer {
        /// The framebuffer device, e.g. `/dev/fb0`.
        device: PathBuf,
        /// Seconds between redraws.
        interval_s: u32,
    },
}

impl DisplayConfig {
    /// Seconds between redraws (5 for no display: nothing is drawn then anyway).
    pub fn interval_s(&self) -> u32 {
        match self {
            DisplayConfig::None => 5,
            DisplayConfig::Png { interval_s, .. }
            | DisplayConfig::Ssd1306 { interval_s, .. }
            | DisplayConfig::Framebuffer { interval_s, .. } => *interval_s,
        }
    }
}

/// `[log]`: what the runtime reports besides detections.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Least severe messages printed to stderr.
    #[serde(default)]
    pub level: LogLevel,
    /// Minutes between health records in the detection log.
    #[serde(default = "default_health_interval_min")]
    pub health_interval_min: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: LogLevel::Info,
            health_interval_min: default_health_interval_min(),
        }
    }
}

fn default_health_interval_min() -> u32 {
    60
}

/// Severity of stderr messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// Also start, events and health.
    #[default]
    Info,
    /// Also every frame.
    Debug,
}

/// Deserializes any `FromStr` type from a TOML string, keeping the value's span for errors.
fn from_str<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(de::Error::custom)
}
