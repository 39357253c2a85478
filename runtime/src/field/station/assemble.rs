//! A station from a board profile: the bundle and its classifier, the frame source, the status
//! display, and the detection log with what earlier runs left in it (a folder source does not
//! take the files an earlier run already logged; events are numbered on from the last one).

use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Duration;

use super::{Parts, Station, StationError, StationOptions};
use crate::bundle::Bundle;
use crate::classifier::Classifier;
use crate::engine::PlanOptions;
use crate::field::clock::SystemClock;
use crate::field::config::{
    DisplayConfig, FolderConfig, PixelFormat, Profile, SourceConfig, SyntheticConfig, V4l2Config,
};
use crate::field::detection_log::{
    read_records, DetectionLog, LogError, Record, DETECTION_LOG_FILE,
};
use crate::field::display::linux_fb::FramebufferDisplay;
use crate::field::display::oled::OledDisplay;
use crate::field::display::png::{PngDisplay, DEFAULT_SCALE};
use crate::field::display::StatusDisplay;
use crate::field::source::camera_settings::{self, CameraSettings};
use crate::field::source::folder::{FolderMode, FolderSource};
use crate::field::source::synthetic::{SyntheticSettings, SyntheticSource};
use crate::field::source::{v4l2, FrameSource};

/// Time between the bursts of a synthetic source: longer than any sensible event gap, so that
/// each burst is one event.
const SYNTHETIC_BURST_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// Opens everything `profile` names and starts a station (a start record is logged).
pub fn open_station(profile: &Profile, options: StationOptions) -> Result<Station, StationError> {
    // Refuse what this build cannot do before loading a model.
    if let SourceConfig::V4l2(_) = profile.source {
        v4l2::camera_support()?;
    }
    let classifier = open_classifier(profile)?;
    let output = &profile.output.folder;
    std::fs::create_dir_all(output).map_err(|source| StationError::Output {
        path: output.clone(),
        source,
    })?;
    let log = DetectionLog::open(&output.join(DETECTION_LOG_FILE))?;
    let labels: Vec<&str> = classifier.bundle().manifest().labels().collect();
    let (source, live) = open_source(&profile.source, log.0.path(), &labels)?;
    let display = open_display(&profile.display)?;
    let parts = Parts {
        classifier,
        source,
        live,
        display,
        log,
        writer: crate::field::frame_store::FileWriter,
        clock: Box::new(SystemClock::new()),
    };
    Station::new(profile, parts, options)
}

fn open_classifier(profile: &Profile) -> Result<Classifier, StationError> {
    let model = &profile.model;
    let bundle = Bundle::open_trusted(&model.bundle, &model.trust_policy())
        .map_err(|e| StationError::Setup(e.to_string()))?;
    let threads = model
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN));
    let options = PlanOptions {
        precision: model.precision,
        threads,
    };
    let mut classifier = Classifier::new(bundle, options).map_err(|e| {
        StationError::Setup(format!(
            "{}: cannot load the {} image model: {e}",
            model.bundle.display(),
            model.precision.as_str()
        ))
    })?;
    if let Some(list) = profile.decision.species_list() {
        classifier
            .restrict(&list, &profile.decision.blank_label)
            .map_err(|e| {
                StationError::Setup(format!(
                    "{}: [decision] species list: {e}",
                    profile.path().display()
                ))
            })?;
    }
    Ok(classifier)
}

/// The source a profile asks for, and whether its capture times follow the system clock.
fn open_source(
    config: &SourceConfig,
    log: &Path,
    labels: &[&str],
) -> Result<(Box<dyn FrameSource>, bool), StationError> {
    Ok(match config {
        SourceConfig::V4l2(c) => (Box::new(v4l2::open_camera(camera(c))?), true),
        SourceConfig::Folder(c) => (Box::new(folder(c, log)?), false),
        SourceConfig::Synthetic(c) => (Box::new(synthetic(c, labels)?), false),
    })
}

fn camera(config: &V4l2Config) -> CameraSettings {
    CameraSettings {
        device: config.device.clone(),
        format: match config.pixel_format {
            PixelFormat::Yuyv => camera_settings::PixelFormat::Yuyv,
            PixelFormat::Mjpeg => camera_settings::PixelFormat::Mjpeg,
        },
        width: config.frame.width,
        height: config.frame.height,
        fps: config.frame.fps,
    }
}

/// A folder source that skips the files the log already has (scored or failed).
fn folder(config: &FolderConfig, log: &Path) -> Result<FolderSource<SystemClock>, LogError> {
    let mode = if config.watch {
        FolderMode::Watch {
            poll: Duration::from_secs(u64::from(config.poll_interval_s)),
        }
    } else {
        FolderMode::Once
    };
    let mut source = FolderSource::new(&config.path, mode, SystemClock::new());
    source.mark_taken(taken_media(log)?);
    Ok(source)
}

/// File names of the frames an earlier run logged, scored or failed to decode.
fn taken_media(log: &Path) -> Result<HashSet<String>, LogError> {
    let (entries, _) = read_records(log)?;
    Ok(entries
        .into_iter()
        .filter_map(|entry| match entry.record {
            Record::Frame(frame) => Some(frame.file_name),
            Record::Failure(failure) => failure.file_name,
            _ => None,
        })
        .collect())
}

/// The synthetic world's source; its species must all be classes of the bundle.
fn synthetic(config: &SyntheticConfig, labels: &[&str]) -> Result<SyntheticSource, StationError> {
    let settings = SyntheticSettings {
        size: config.size,
        framing: config.framing,
        burst_interval: SYNTHETIC_BURST_INTERVAL,
        ..SyntheticSettings::new(config.world, config.seed, config.species)
    };
    let source = SyntheticSource::new(settings)?;
    if let Some(missing) = source
        .species()
        .iter()
        .find(|s| !labels.contains(&s.name.as_str()))
    {
        return Err(StationError::Setup(format!(
            "source.species: species {:?} of synthetic world {} is not a class of the bundle \
             (was the bundle trained on this world, with at least {} species?)",
            missing.name, config.world, config.species
        )));
    }
    Ok(source)
}

fn open_display(config: &DisplayConfig) -> Result<Option<Box<dyn StatusDisplay>>, StationError> {
    let setup = |e: crate::field::display::DisplayError| StationError::Setup(e.to_string());
    Ok(match config {
        DisplayConfig::None => None,
        DisplayConfig::Png { path, .. } => Some(Box::new(PngDisplay::new(path, DEFAULT_SCALE))),
        DisplayConfig::Ssd1306 {
            device, address, ..
        } => Some(Box::new(
            OledDisplay::open(device, *address).map_err(setup)?,
        )),
        DisplayConfig::Framebuffer { device, .. } => {
            Some(Box::new(FramebufferDisplay::open(device).map_err(setup)?))
        }
    })
}

#[cfg(all(test, not(feature = "camera")))]
mod tests {
    use super::*;

    /// Without the `camera` feature a camera profile is refused before anything is loaded,
    /// saying which feature to build with.
    #[test]
    fn a_camera_profile_without_the_camera_feature_says_how_to_build() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"
[deployment]
id = "cam"
location_name = "Somewhere"
latitude = 0.0
longitude = 0.0
utc_offset = "+00:00"

[source]
kind = "v4l2"

[model]
bundle = "no-such-bundle"

[output]
folder = "out"
"#;
        let profile = Profile::parse(text, &dir.path().join("board.toml")).unwrap();
        let options = StationOptions::from_profile(&profile);
        let Err(error) = open_station(&profile, options) else {
            panic!("a camera profile opened without camera support");
        };
        let message = error.to_string();
        assert!(message.contains("--features camera"), "{message}");
    }
}
