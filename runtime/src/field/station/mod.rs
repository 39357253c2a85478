//! The station: the unattended loop `xrvlm run` keeps going from boot until the battery dies.
//!
//! Each frame from the source passes the motion gate (or not), is classified, decided
//! (species, blank or unknown) and grouped into events; every scored frame and every closed
//! event is one fsynced line of the detection log, event frames are saved as JPEG under the
//! storage budget, and the status display is redrawn every few seconds. A frame that does not
//! decode or classify, a frame that cannot be saved (a full card), a camera that vanishes and a
//! display that fails are recorded as failures, and the loop goes on. Health figures are logged
//! every `log.health_interval_min`.
//!
//! The loop stops when the source ends, after `max_frames` frames, or when the stop flag is set
//! (SIGTERM/SIGINT), always between frames: the open event is closed and logged, a last health
//! record written and the display redrawn. Only an error of the log itself (it cannot be
//! written) or a source setting the hardware refuses ends it early.
//!
//! # Layout
//! - [`assemble`]: a station from a board profile: bundle, source, display, and what the log
//!   says about earlier runs.
//! - [`counters`]: the running figures health records report.
//! - [`disk_space`]: free space on the output file system.
//! - [`resume`]: the event a power cut left open, closed at the next start.
//! - [`thermal`]: the SoC temperature.

pub mod assemble;
pub mod counters;
pub mod disk_space;
pub mod resume;
pub mod thermal;

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use image::RgbImage;

use self::counters::Counters;
use super::clock::Clock;
use super::config::{ConfigError, Profile, SaveFrames, UtcOffset};
use super::decision::{DecidedFrame, Decider, Event, EventGrouper, Outcome};
use super::detection_log::{
    read_records, utc, DetectionLog, Entry, EventRecord, FailureRecord, FailureStage, FrameRecord,
    LogError, ModelRecord, OpenReport, Record, StartRecord, TopClass,
};
use super::display::{Sighting, Status, StatusDisplay};
use super::frame::{Capture, Frame};
use super::frame_store::{encode_jpeg, FileWriter, FrameStore, FrameStoreError, FrameWriter};
use super::motion::{Gate, MotionSettingsError};
use super::source::{FailedFrame, FrameSource, SourceError, SourceErrorKind, SourceEvent};
use super::subject::{mark, Subject};
use crate::classifier::{Classifier, Prediction};

/// How a station runs, beyond its profile.
#[derive(Debug, Clone, PartialEq)]
pub struct StationOptions {
    /// Stop after this many frames from the source (scored, skipped or failed).
    pub max_frames: Option<u64>,
    /// How long to wait before polling again when the source has nothing (or is gone).
    pub idle_wait: Duration,
    /// Time between health records.
    pub health_every: Duration,
    /// Time between redraws of the status display.
    pub display_every: Duration,
}

impl StationOptions {
    /// The options a profile asks for, with no frame limit.
    pub fn from_profile(profile: &Profile) -> Self {
        Self {
            max_frames: None,
            idle_wait: Duration::from_millis(50),
            health_every: Duration::from_secs(u64::from(profile.log.health_interval_min) * 60),
            display_every: Duration::from_secs(u64::from(profile.display.interval_s())),
        }
    }
}

/// Why the loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The source has no more frames (a folder read once).
    SourceEnded,
    /// `max_frames` frames were taken.
    MaxFrames,
    /// The stop flag was set (SIGTERM or SIGINT).
    Stopped,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Why it stopped.
    pub reason: StopReason,
    /// The figures at the end.
    pub counters: Counters,
}

/// Why a station could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum StationError {
    /// The detection log cannot be opened or written: nothing can be recorded, so stop.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The frame store's folder cannot be read, or old frames cannot be deleted.
    #[error(transparent)]
    FrameStore(#[from] FrameStoreError),
    /// The source refuses its settings, or needs a feature this build lacks.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The profile names classes the bundle lacks.
    #[error(transparent)]
    Classes(#[from] ConfigError),
    /// The motion gate's settings are unusable.
    #[error("motion gate: {0}")]
    Motion(#[from] MotionSettingsError),
    /// The output folder cannot be created.
    #[error("{}: cannot create the output folder: {source}", path.display())]
    Output {
        /// The folder.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Something at start-up that is not a station part (bundle, model, display): its message.
    #[error("{0}")]
    Setup(String),
}

/// What a station is made of; [`assemble`] builds it from a profile, tests inject their own.
pub struct Parts<W: FrameWriter = FileWriter> {
    /// The bundle's classifier.
    pub classifier: Classifier,
    /// Where frames come from.
    pub source: Box<dyn FrameSource>,
    /// Whether capture times follow the system clock (a camera), so that an event may close
    /// while the source is idle; a folder of old pictures closes events only by capture time.
    pub live: bool,
    /// The status display, if any.
    pub display: Option<Box<dyn StatusDisplay>>,
    /// The opened detection log and what opening it found.
    pub log: (DetectionLog, OpenReport),
    /// How saved frames are written.
    pub writer: W,
    /// Where the station reads the time and how it waits ([`super::clock::SystemClock`] on a
    /// device).
    pub clock: Box<dyn Clock>,
}

/// The field loop with everything it needs.
pub struct Station<W: FrameWriter = FileWriter> {
    classifier: Classifier,
    top_k: usize,
    source: Box<dyn FrameSource>,
    source_name: String,
    live: bool,
    gate: Gate,
    decider: Decider,
    events: EventGrouper,
    log: DetectionLog,
    store: FrameStore<W>,
    save: SaveFrames,
    jpeg_quality: u8,
    display: Option<Box<dyn StatusDisplay>>,
    site: UtcOffset,
    output: PathBuf,
    options: StationOptions,
    counters: Counters,
    last_sighting: Option<Sighting>,
    /// Whether the source is gone now (its outage has been recorded once); it is back when a
    /// frame arrives or the source says it is connected again.
    disconnected: bool,
    clock: Box<dyn Clock>,
}

impl<W: FrameWriter> Station<W> {
    /// A station for `profile` from `parts`: checks the profile's classes against the bundle,
    /// opens the frame store, and logs the recovery of a torn log line (if any) and a start
    /// record.
    pub fn new(
        profile: &Profile,
        parts: Parts<W>,
        options: StationOptions,
    ) -> Result<Self, StationError> {
        let manifest = parts.classifier.bundle().manifest();
        profile.check_classes(manifest.labels())?;
        let output = profile.output.folder.clone();
        std::fs::create_dir_all(&output).map_err(|source| StationError::Output {
            path: output.clone(),
            source,
        })?;
        let store = FrameStore::open_with(&output, profile.output.storage_budget.0, parts.writer)?;
        let (log, report) = parts.log;
        let first_event = report.last_event_id.map_or(1, |id| id + 1);
        let gap = Duration::from_secs(u64::from(profile.decision.event_gap_s));
        let mut station = Self {
            top_k: profile.model.top_k,
            source_name: parts.source.describe(),
            source: parts.source,
            live: parts.live,
            gate: Gate::for_profile(&profile.motion)?,
            decider: Decider::new(profile.decision.clone()),
            events: EventGrouper::new(gap, first_event),
            log,
            store,
            save: profile.output.save_frames,
            jpeg_quality: profile.output.jpeg_quality,
            display: parts.display,
            site: profile.deployment.utc_offset,
            output,
            options,
            counters: Counters::default(),
            last_sighting: None,
            disconnected: false,
            classifier: parts.classifier,
            clock: parts.clock,
        };
        if let Some(recovery) = report.recovery {
            station.log.append(Record::Recovery(recovery))?;
        }
        let start = station.start_record(profile);
        station.log.append(Record::Start(start))?;
        station.close_unfinished_events()?;
        Ok(station)
    }

    /// Logs the events a power cut left open (their frames are in the log, no event names
    /// them), numbered on from the last event.
    fn close_unfinished_events(&mut self) -> Result<(), LogError> {
        let (entries, _) = read_records(self.log.path())?;
        let mut ignore = |_: &Entry| {};
        for frame in resume::unfinished_frames(&entries) {
            if let Some(event) = self.events.push(&frame) {
                self.log_event(&event, &mut ignore)?;
            }
        }
        if let Some(event) = self.events.flush() {
            self.log_event(&event, &mut ignore)?;
        }
        Ok(())
    }

    /// The source, as logged.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// The detection log.
    pub fn log_path(&self) -> &std::path::Path {
        self.log.path()
    }

    /// Runs until the source ends, `max_frames` frames were taken, or `stop` is set; then closes
    /// the open event, logs health and redraws the display. `on_record` sees every record once
    /// it is on disk (the command line prints them).
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        mut on_record: impl FnMut(&Entry),
    ) -> Result<Summary, StationError> {
        let started = self.clock.monotonic();
        let polled = self.poll(stop, started, &mut on_record);
        // Whatever stopped the loop, what is known so far goes on disk.
        let finished = self.finish(started, &mut on_record);
        let reason = polled?;
        finished?;
        Ok(Summary {
            reason,
            counters: self.counters.clone(),
        })
    }

    fn poll(
        &mut self,
        stop: &AtomicBool,
        started: Duration,
        on_record: &mut impl FnMut(&Entry),
    ) -> Result<StopReason, StationError> {
        let mut next_health = started + self.options.health_every;
        let mut next_display = started;
        loop {
            if stop.load(Ordering::SeqCst) {
                return Ok(StopReason::Stopped);
            }
            if self
                .options
                .max_frames
                .is_some_and(|n| self.counters.frames >= n)
            {
                return Ok(StopReason::MaxFrames);
            }
            let now = self.clock.monotonic();
            if now >= next_health {
                self.log_health(started, on_record)?;
                next_health = now + self.options.health_every;
            }
            if now >= next_display {
                self.redraw(on_record)?;
                next_display = now + self.options.display_every;
            }
            match self.source.next_frame() {
                Ok(SourceEvent::Frame(frame)) => {
                    self.disconnected = false;
                    self.take(frame, on_record)?;
                }
                Ok(SourceEvent::Failed(failed)) => {
                    self.disconnected = false;
                    self.undecodable(failed, on_record)?;
                }
                Ok(SourceEvent::Idle) => {
                    // Back with nothing to send yet: its next loss is a new outage.
                    self.disconnected &= !self.source.is_connected();
                    self.idle(on_record)?;
                    self.clock.sleep(self.options.idle_wait);
                }
                Ok(SourceEvent::End) => return Ok(StopReason::SourceEnded),
                Err(e) if e.kind() == SourceErrorKind::Disconnected => {
                    self.gone(&e, on_record)?;
                    self.clock.sleep(self.options.idle_wait);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// One frame: gate, classify, decide, save, log, group.
    fn take(&mut self, frame: Frame, on_record: &mut impl FnMut(&Entry)) -> Result<(), LogError> {
        self.counters.take(frame.sequence);
        let capture_secs = frame.captured.unix_seconds(self.site);
        let Some(trigger) = self.gate.check(&frame.image, capture_secs) else {
            self.counters.skipped += 1;
            return Ok(());
        };
        let subject = Subject::of(trigger);
        let started = self.clock.monotonic();
        let prediction = match self.classify(&subject.image(&frame.image)) {
            Ok(p) => p,
            Err(error) => {
                return self.fail(FailureStage::Classify, Some(&frame.media), error, on_record)
            }
        };
        let latency = self.clock.monotonic() - started;
        self.counters.inference(latency);
        let outcome = self.decider.decide(&prediction);
        let captured = UNIX_EPOCH + Duration::from_secs(capture_secs.max(0) as u64);
        // An event this frame is too late for is logged before the frame.
        if let Some(event) = self.events.close_if_idle(captured) {
            self.log_event(&event, on_record)?;
        }
        // Unique for the log's life: no other record will have this sequence number.
        let media_id = format!("m{:08}", self.log.next_seq());
        let saved_frame = self.save_frame(&frame, subject, &media_id, &outcome, on_record)?;
        if let Outcome::Species { label, probability } = &outcome {
            self.last_sighting = Some(Sighting {
                species: label.clone(),
                confidence: *probability,
            });
        }
        let record = FrameRecord {
            processed_at: utc(self.clock.wall()),
            captured: frame.captured.rfc3339(self.site),
            media_id: media_id.clone(),
            source: self.source_name.clone(),
            file_name: frame.media,
            outcome: outcome.clone(),
            top: prediction.top.iter().map(TopClass::from).collect(),
            latency_ms: latency.as_secs_f64() * 1000.0,
            saved_frame: saved_frame.ok().flatten(),
            bbox: subject.region(),
        };
        self.append(Record::Frame(record), on_record)?;
        let decided = DecidedFrame {
            media_id,
            captured,
            outcome,
        };
        if let Some(event) = self.events.push(&decided) {
            self.log_event(&event, on_record)?;
        }
        Ok(())
    }

    fn classify(&self, image: &RgbImage) -> Result<Prediction, String> {
        self.classifier
            .classify(image, self.top_k)
            .map_err(|e| e.to_string())
    }

    /// Saves the frame as JPEG when the profile asks for it, the classified region outlined:
    /// `Ok(Some(path))` saved, `Ok(None)` not wanted, `Err(())` failed and recorded.
    fn save_frame(
        &mut self,
        frame: &Frame,
        subject: Subject,
        media_id: &str,
        outcome: &Outcome,
        on_record: &mut impl FnMut(&Entry),
    ) -> Result<Result<Option<String>, ()>, LogError> {
        let wanted = match self.save {
            SaveFrames::None => false,
            SaveFrames::All => true,
            SaveFrames::Events => outcome.is_animal(),
        };
        if !wanted {
            return Ok(Ok(None));
        }
        let day = match frame.captured {
            Capture::Camera { time, .. } => time.date(),
            Capture::System(t) => self.site.civil(t).date(),
        };
        let image = match subject.region() {
            Some(region) => Cow::Owned(mark(&frame.image, region)),
            None => Cow::Borrowed(&frame.image),
        };
        let saved = encode_jpeg(&image, self.jpeg_quality)
            .map_err(|e| format!("cannot encode the frame as JPEG: {e}"))
            .and_then(|jpeg| {
                self.store
                    .save(&day, media_id, &jpeg)
                    .map_err(|e| e.to_string())
            });
        match saved {
            Ok(saved) => Ok(Ok(Some(saved.relative))),
            Err(error) => {
                self.fail(
                    FailureStage::SaveFrame,
                    Some(&frame.media),
                    error,
                    on_record,
                )?;
                Ok(Err(()))
            }
        }
    }

    /// A frame that arrived but did not decode.
    fn undecodable(
        &mut self,
        failed: FailedFrame,
        on_record: &mut impl FnMut(&Entry),
    ) -> Result<(), LogError> {
        self.counters.take(failed.sequence);
        let error = failed.error.to_string();
        self.fail(FailureStage::Decode, Some(&failed.media), error, on_record)
    }

    /// The source has nothing now: a live source's open event may be over.
    fn idle(&mut self, on_record: &mut impl FnMut(&Entry)) -> Result<(), LogError> {
        if self.live {
            if let Some(event) = self.events.close_if_idle(self.clock.wall()) {
                self.log_event(&event, on_record)?;
            }
        }
        Ok(())
    }

    /// The source went away; the first error of an outage is recorded, the rest are the same.
    fn gone(
        &mut self,
        error: &SourceError,
        on_record: &mut impl FnMut(&Entry),
    ) -> Result<(), LogError> {
        if std::mem::replace(&mut self.disconnected, true) {
            return Ok(());
        }
        self.counters.outages += 1;
        self.fail(FailureStage::Source, None, error.to_string(), on_record)?;
        self.idle(on_record)
    }

    fn fail(
        &mut self,
        stage: FailureStage,
        file_name: Option<&str>,
        error: String,
        on_record: &mut impl FnMut(&Entry),
    ) -> Result<(), LogError> {
        self.counters.failures += 1;
        let record = FailureRecord {
            at: utc(self.clock.wall()),
            stage,
            media_id: None,
            file_name: file_name.map(str::to_string),
            error,
        };
        self.append(Record::Failure(record), on_record)
    }

    fn log_event(
        &mut self,
        event: &Event,
        on_record: &mut impl FnMut(&Entry),
    ) -> Result<(), LogError> {
        self.counters.events += 1;
        self.append(Record::Event(EventRecord::new(event, self.site)), on_record)
    }

    fn log_health(
        &mut self,
        started: Duration,
        on_record: &mut impl FnMut(&Entry),
    ) -> Result<(), LogError> {
        let health = self.counters.health(
            self.clock.wall(),
            self.clock.monotonic() - started,
            self.store.total_bytes(),
            disk_space::free_bytes(&self.output),
            thermal::soc_temperature(std::path::Path::new(thermal::THERMAL_ZONES)),
        );
        self.append(Record::Health(health), on_record)
    }

    /// Redraws the display; a display that fails is recorded, never fatal.
    fn redraw(&mut self, on_record: &mut impl FnMut(&Entry)) -> Result<(), LogError> {
        let Some(display) = self.display.as_mut() else {
            return Ok(());
        };
        let status = Status {
            last: self.last_sighting.clone(),
            now: self.site.civil(self.clock.wall()),
            frames: self.counters.frames,
            free_bytes: disk_space::free_bytes(&self.output),
        };
        match display.show(&status) {
            Ok(()) => Ok(()),
            Err(e) => self.fail(FailureStage::Display, None, e.to_string(), on_record),
        }
    }

    /// Closes the open event, logs health and redraws: the end of every run.
    fn finish(
        &mut self,
        started: Duration,
        on_record: &mut impl FnMut(&Entry),
    ) -> Result<(), LogError> {
        if let Some(event) = self.events.flush() {
            self.log_event(&event, on_record)?;
        }
        self.log_health(started, on_record)?;
        self.redraw(on_record)
    }

    fn append(
        &mut self,
        record: Record,
        on_record: &mut impl FnMut(&Entry),
    ) -> Result<(), LogError> {
        let entry_record = record.clone();
        let seq = self.log.append(record)?;
        on_record(&Entry {
            seq,
            record: entry_record,
        });
        Ok(())
    }

    fn start_record(&self, profile: &Profile) -> StartRecord {
        let manifest = self.classifier.bundle().manifest();
        StartRecord {
            started_at: utc(self.clock.wall()),
            runtime_version: env!("CARGO_PKG_VERSION").to_string(),
            profile: profile.path().display().to_string(),
            deployment: profile.deployment.clone(),
            model: ModelRecord {
                name: manifest.model.name.clone(),
                version: manifest.model.version.clone(),
                bundle: self.classifier.bundle().dir().display().to_string(),
                precision: self
                    .classifier
                    .plan()
                    .options()
                    .precision
                    .as_str()
                    .to_string(),
                classes: manifest.classes.clone(),
                blank_label: profile.decision.blank_label.clone(),
            },
        }
    }
}
