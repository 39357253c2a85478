//! The field loop end to end on the demo bundle: a camera that vanishes and returns (the loop
//! goes on and its memory stays flat), corrupt frames, a full card, a stop request, a restart
//! that resumes the log, real Reconyx photos read through the folder source with their EXIF
//! capture time, health records and idle event closing driven by a fake clock, and the motion
//! gate's region classified as a crop, logged and outlined; and a month of a camera trap
//! (`month`: day and night, bursts, outages, a full card, SIGTERMs and restarts) whose log
//! loses and duplicates nothing while its memory stays flat.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime};

use xrvlm_runtime::bundle::Bundle;
use xrvlm_runtime::classifier::Classifier;
use xrvlm_runtime::engine::{PlanOptions, Precision};
use xrvlm_runtime::field::clock::{Clock, FakeClock, SystemClock};
use xrvlm_runtime::field::config::{Profile, SaveFrames};
use xrvlm_runtime::field::detection_log::{
    read_records, utc, DetectionLog, Entry, FailureStage, Record, DETECTION_LOG_FILE,
};
use xrvlm_runtime::field::frame_store::{FileWriter, FrameWriter, FRAMES_DIR};
use xrvlm_runtime::field::source::faulty::Faulty;
use xrvlm_runtime::field::source::synthetic::{SyntheticSettings, SyntheticSource};
use xrvlm_runtime::field::source::{FrameSource, SourceError, SourceEvent};
use xrvlm_runtime::field::station::assemble::open_station;
use xrvlm_runtime::field::station::{Parts, Station, StationOptions, StopReason};

#[path = "station/month.rs"]
mod month;

/// Bytes allocated and not yet freed by this test binary, to see whether the loop leaks.
struct Counting;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter only observes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The tests of this binary share its process, and so its heap and resident memory: a test
/// that measures them holds this lock alone ([`alone`]), every other test holds it shared
/// ([`sharing`]), so that nothing else allocates while memory is measured.
static MEMORY: RwLock<()> = RwLock::new(());

/// Held by a test that does not measure memory.
fn sharing() -> RwLockReadGuard<'static, ()> {
    // A test that panicked holding the lock left nothing half-done behind it.
    MEMORY.read().unwrap_or_else(PoisonError::into_inner)
}

/// Held by a test that measures memory.
fn alone() -> RwLockWriteGuard<'static, ()> {
    MEMORY.write().unwrap_or_else(PoisonError::into_inner)
}

fn demo_bundle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/demo")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A profile in `dir` (output in `dir/out`) with `source` as its `[source]` table body.
fn profile(dir: &Path, source: &str, budget: &str) -> Profile {
    let text = format!(
        r#"
[deployment]
id = "test-site"
location_name = "Test site"
latitude = 50.699
longitude = 4.013
utc_offset = "+01:00"

[source]
{source}

[model]
bundle = "{bundle}"
precision = "fp32"
threads = 1
top_k = 3

[motion]
enabled = false

[decision]
threshold = 0.3
event_gap_s = 60

[output]
folder = "out"
save_frames = "events"
storage_budget = "{budget}"
"#,
        bundle = demo_bundle().display()
    );
    let path = dir.join("profile.toml");
    std::fs::write(&path, &text).unwrap();
    Profile::load(&path).unwrap()
}

/// Synthetic frames of the demo's world: bursts of 3, one burst per 15 minutes.
fn synthetic(frames: u64) -> SyntheticSource {
    SyntheticSource::new(SyntheticSettings {
        frames: Some(frames),
        burst_interval: Duration::from_secs(15 * 60),
        ..SyntheticSettings::new(1, 9, 12)
    })
    .unwrap()
}

fn options(max_frames: Option<u64>) -> StationOptions {
    StationOptions {
        max_frames,
        idle_wait: Duration::ZERO,
        health_every: Duration::from_secs(3600),
        display_every: Duration::from_secs(3600),
    }
}

fn station<W: FrameWriter>(
    profile: &Profile,
    source: Box<dyn FrameSource>,
    writer: W,
    options: StationOptions,
) -> Station<W> {
    station_on(
        profile,
        source,
        writer,
        options,
        false,
        Box::new(SystemClock::new()),
    )
}

/// [`station`] with a live source (events close while it is idle) or not, on `clock`.
fn station_on<W: FrameWriter>(
    profile: &Profile,
    source: Box<dyn FrameSource>,
    writer: W,
    options: StationOptions,
    live: bool,
    clock: Box<dyn Clock>,
) -> Station<W> {
    let bundle = Bundle::open(&profile.model.bundle).unwrap();
    let plan = PlanOptions {
        precision: Precision::Fp32,
        threads: 1.try_into().unwrap(),
    };
    std::fs::create_dir_all(&profile.output.folder).unwrap();
    let parts = Parts {
        classifier: Classifier::new(bundle, plan).unwrap(),
        source,
        live,
        display: None,
        log: DetectionLog::open(&profile.output.folder.join(DETECTION_LOG_FILE)).unwrap(),
        writer,
        clock,
    };
    Station::new(profile, parts, options).unwrap()
}

fn records(profile: &Profile) -> Vec<Record> {
    let (entries, problems) =
        read_records(&profile.output.folder.join(DETECTION_LOG_FILE)).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    entries.into_iter().map(|e| e.record).collect()
}

fn failures(records: &[Record], stage: FailureStage) -> usize {
    records
        .iter()
        .filter(|r| matches!(r, Record::Failure(f) if f.stage == stage))
        .count()
}

fn frame_records(records: &[Record]) -> Vec<&xrvlm_runtime::field::detection_log::FrameRecord> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Frame(f) => Some(f),
            _ => None,
        })
        .collect()
}

/// Every event's frames are frame records of the log, and every animal frame is in one event.
fn assert_events_match_frames(records: &[Record]) {
    let frames = frame_records(records);
    let mut in_events = std::collections::BTreeSet::new();
    for record in records {
        if let Record::Event(e) = record {
            for id in &e.media_ids {
                assert!(frames.iter().any(|f| &f.media_id == id), "event {e:?}");
                assert!(in_events.insert(id.clone()), "{id} in two events");
            }
        }
    }
    for f in frames.iter().filter(|f| f.outcome.is_animal()) {
        assert!(
            in_events.contains(&f.media_id),
            "{} in no event",
            f.media_id
        );
    }
}

#[test]
fn a_vanishing_camera_and_corrupt_frames_are_recorded_and_the_loop_goes_on() {
    let _sharing = sharing();
    let dir = tempfile::tempdir().unwrap();
    let profile = profile(dir.path(), "kind = \"synthetic\"\nspecies = 12", "64 MiB");
    let source = Faulty::new(synthetic(30))
        .vanish(4, 6)
        .vanish(20, 2)
        .corrupt(7)
        .corrupt(21);
    let mut station = station(&profile, Box::new(source), FileWriter, options(None));
    let summary = station.run(&AtomicBool::new(false), |_| {}).unwrap();

    assert_eq!(summary.reason, StopReason::SourceEnded);
    let c = &summary.counters;
    assert_eq!((c.frames, c.inferences, c.outages), (30, 28, 2));
    assert_eq!((c.failures, c.dropped), (4, 0));
    let records = records(&profile);
    assert_eq!(failures(&records, FailureStage::Source), 2);
    assert_eq!(failures(&records, FailureStage::Decode), 2);
    assert_eq!(frame_records(&records).len(), 28);
    assert!(matches!(records.first(), Some(Record::Start(_))));
    assert!(matches!(records.last(), Some(Record::Health(h)) if h.frames == 30 && h.outages == 2));
    assert_events_match_frames(&records);
    assert!(c.events >= 5, "10 bursts, most of them animals: {c:?}");
}

#[test]
fn memory_stays_flat_while_the_camera_keeps_vanishing_and_returning() {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    // A budget of a few frames: the frame store is at its steady state after the warm-up.
    let profile = profile(dir.path(), "kind = \"synthetic\"\nspecies = 12", "16 KiB");
    // 200 outages, one every 2 calls: frame, gone, frame, gone, ...
    let mut source = Faulty::new(synthetic(200));
    for outage in 0..200 {
        source = source.vanish(outage * 2 + 1, 1);
    }
    let mut station = station(&profile, Box::new(source), FileWriter, options(None));
    // Allocated up front, so that the samples themselves do not grow the heap.
    let mut live_at_outage = Vec::with_capacity(200);
    let summary = station
        .run(&AtomicBool::new(false), |entry: &Entry| {
            if matches!(&entry.record, Record::Failure(f) if f.stage == FailureStage::Source) {
                live_at_outage.push(LIVE_BYTES.load(Ordering::Relaxed));
            }
        })
        .unwrap();
    assert_eq!(summary.counters.outages, 200);
    assert_eq!(live_at_outage.len(), 200);
    // After a warm-up (plan caches, the first saved frames), live memory does not grow with
    // the number of outages: compare outage 50 with outage 200.
    let growth = live_at_outage[199] - live_at_outage[49];
    assert!(
        growth < 8 * 1024,
        "live heap grew by {growth} bytes over 150 outages; every 25th sample: {:?}",
        live_at_outage.iter().step_by(25).collect::<Vec<_>>()
    );
}

/// Writes frames through the file system, except every third one: the card is full then.
struct FullEveryThird {
    writes: u64,
}

impl FrameWriter for FullEveryThird {
    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.writes += 1;
        if self.writes.is_multiple_of(3) {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        FileWriter.write(path, bytes)
    }
}

fn saved_frame_bytes(output: &Path) -> u64 {
    fn walk(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| {
                        let meta = e.metadata().unwrap();
                        if meta.is_dir() {
                            walk(&e.path())
                        } else {
                            meta.len()
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&output.join(FRAMES_DIR))
}

#[test]
fn a_full_card_evicts_old_frames_and_the_log_goes_on() {
    let _sharing = sharing();
    let dir = tempfile::tempdir().unwrap();
    // About eight 72-pixel JPEG frames fit. Every frame is saved (not only those the model calls
    // an animal), so which writes the card refuses does not depend on the model: every third,
    // the last of them the 60th of 61.
    let mut profile = profile(dir.path(), "kind = \"synthetic\"\nspecies = 12", "24 KiB");
    profile.output.save_frames = SaveFrames::All;
    let mut station = station(
        &profile,
        Box::new(synthetic(61)),
        FullEveryThird { writes: 0 },
        options(None),
    );
    let summary = station.run(&AtomicBool::new(false), |_| {}).unwrap();
    let records = records(&profile);
    let frames = frame_records(&records);
    assert_eq!(frames.len(), 61, "every frame is logged, saved or not");
    let refused = failures(&records, FailureStage::SaveFrame);
    let saved = frames.iter().filter(|f| f.saved_frame.is_some()).count();
    assert!(
        refused >= 5 && saved >= 10,
        "refused {refused}, saved {saved}"
    );
    assert_eq!(summary.counters.failures as usize, refused);
    assert!(saved_frame_bytes(&profile.output.folder) <= 24 * 1024);
    // Frames saved after a refusal prove the loop went on saving.
    let last_refusal = records
        .iter()
        .rposition(|r| matches!(r, Record::Failure(_)))
        .unwrap();
    let saved_after = records[last_refusal..]
        .iter()
        .filter(|r| matches!(r, Record::Frame(f) if f.saved_frame.is_some()))
        .count();
    assert!(saved_after >= 1, "nothing saved after the last refusal");
    // The newest saved frame is on disk; the oldest was evicted.
    let newest = frames
        .iter()
        .rev()
        .find_map(|f| f.saved_frame.clone())
        .unwrap();
    let oldest = frames.iter().find_map(|f| f.saved_frame.clone()).unwrap();
    assert!(profile.output.folder.join(newest).exists());
    assert!(!profile.output.folder.join(oldest).exists());
}

#[test]
fn a_stop_request_finishes_the_frame_closes_the_event_and_logs_health() {
    let _sharing = sharing();
    let dir = tempfile::tempdir().unwrap();
    let profile = profile(dir.path(), "kind = \"synthetic\"\nspecies = 12", "64 MiB");
    let mut station = station(
        &profile,
        Box::new(synthetic(1000)),
        FileWriter,
        options(None),
    );
    let stop = AtomicBool::new(false);
    let mut frames_seen = 0;
    let summary = station
        .run(&stop, |entry: &Entry| {
            if matches!(entry.record, Record::Frame(_)) {
                frames_seen += 1;
                if frames_seen == 8 {
                    stop.store(true, Ordering::SeqCst);
                }
            }
        })
        .unwrap();
    assert_eq!(summary.reason, StopReason::Stopped);
    assert_eq!(summary.counters.frames, 8);
    let records = records(&profile);
    assert!(matches!(records.last(), Some(Record::Health(_))));
    assert_events_match_frames(&records);
}

#[test]
fn a_restart_resumes_the_folder_and_numbers_events_on() {
    let _sharing = sharing();
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("card");
    std::fs::create_dir(&images).unwrap();
    let source = synthetic(8);
    for sequence in 0..8 {
        let frame = source.render(sequence);
        frame
            .image
            .save(images.join(format!("IMG_{sequence:04}.png")))
            .unwrap();
    }
    let profile = profile(dir.path(), "kind = \"folder\"\npath = \"card\"", "64 MiB");
    let run = |max_frames| {
        let mut station = open_station(&profile, options(max_frames)).unwrap();
        station.run(&AtomicBool::new(false), |_| {}).unwrap()
    };
    assert_eq!(run(Some(5)).reason, StopReason::MaxFrames);
    let second = run(None);
    assert_eq!(second.reason, StopReason::SourceEnded);
    assert_eq!(
        second.counters.frames, 3,
        "only the files the first run did not take"
    );
    let records = records(&profile);
    let names: Vec<&str> = frame_records(&records)
        .iter()
        .map(|f| f.file_name.as_str())
        .collect();
    let expected: Vec<String> = (0..8).map(|i| format!("IMG_{i:04}.png")).collect();
    assert_eq!(names, expected);
    let starts = records
        .iter()
        .filter(|r| matches!(r, Record::Start(_)))
        .count();
    assert_eq!(starts, 2);
    let event_ids: Vec<u64> = records
        .iter()
        .filter_map(|r| match r {
            Record::Event(e) => Some(e.event_id),
            _ => None,
        })
        .collect();
    let expected_ids: Vec<u64> = (1..=event_ids.len() as u64).collect();
    assert_eq!(
        event_ids, expected_ids,
        "unique, numbered on across the restart"
    );
    let media: std::collections::BTreeSet<&str> = frame_records(&records)
        .iter()
        .map(|f| f.media_id.as_str())
        .collect();
    assert_eq!(media.len(), 8, "media ids are unique across runs");
}

#[test]
fn reconyx_photos_are_read_with_their_exif_time_at_the_profile_offset() {
    let _sharing = sharing();
    let dir = tempfile::tempdir().unwrap();
    let source = format!(
        "kind = \"folder\"\npath = \"{}\"",
        fixture("reconyx").display()
    );
    let profile = profile(dir.path(), &source, "64 MiB");
    let mut station = open_station(&profile, options(None)).unwrap();
    let summary = station.run(&AtomicBool::new(false), |_| {}).unwrap();
    assert_eq!(summary.counters.inferences, 3);
    let records = records(&profile);
    let captured: Vec<(&str, &str)> = frame_records(&records)
        .iter()
        .map(|f| (f.file_name.as_str(), f.captured.as_str()))
        .collect();
    // The times the Camtrap DP example package itself gives these photos (media.csv).
    assert_eq!(
        captured,
        [
            ("20210531082538-RCNX0031.JPG", "2021-04-11T20:43:09+01:00"),
            ("20210531082538-RCNX0032.JPG", "2021-04-11T20:43:10+01:00"),
            ("20210531082539-RCNX0033.JPG", "2021-04-11T20:43:10+01:00"),
        ]
    );
    for frame in frame_records(&records) {
        assert_eq!(frame.top.len(), 3);
        let total: f32 = frame.top.iter().map(|t| t.probability).sum();
        assert!(total > 0.0 && total <= 1.0 + 1e-5);
    }
    assert_events_match_frames(&records);
}

#[test]
fn an_event_left_open_by_a_power_cut_is_logged_at_the_next_start() {
    let _sharing = sharing();
    let dir = tempfile::tempdir().unwrap();
    let profile = profile(dir.path(), "kind = \"synthetic\"\nspecies = 12", "64 MiB");
    let mut first = station(&profile, Box::new(synthetic(9)), FileWriter, options(None));
    first.run(&AtomicBool::new(false), |_| {}).unwrap();
    drop(first);
    // The power went before the last event record (and the health record after it) was
    // written: cut the log back to the last frame record.
    let log = profile.output.folder.join(DETECTION_LOG_FILE);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let last_frame = lines
        .iter()
        .rposition(|l| l.contains("\"type\":\"frame\""))
        .unwrap();
    let lost_event = lines[last_frame + 1..]
        .iter()
        .find(|l| l.contains("\"type\":\"event\""))
        .map(|l| serde_json::from_str::<Entry>(l).unwrap());
    let Some(Entry {
        record: Record::Event(lost),
        ..
    }) = lost_event
    else {
        panic!("the last burst was not an animal event; pick another seed");
    };
    std::fs::write(&log, lines[..=last_frame].join("\n") + "\n").unwrap();

    let second = station(&profile, Box::new(synthetic(0)), FileWriter, options(None));
    drop(second);
    let records = records(&profile);
    let recovered: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::Event(e) if e.media_ids == lost.media_ids => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(
        recovered.len(),
        1,
        "the open event is logged once, at the start"
    );
    assert_eq!(recovered[0].event_id, lost.event_id);
    assert_eq!(
        (&recovered[0].start, &recovered[0].end),
        (&lost.start, &lost.end)
    );
    assert_events_match_frames(&records);
}

/// A camera that delivers `frames` and then has nothing `idles` times before it ends.
struct QuietAfter {
    frames: SyntheticSource,
    left: u64,
    idles: u64,
}

impl FrameSource for QuietAfter {
    fn next_frame(&mut self) -> Result<SourceEvent, SourceError> {
        if self.left > 0 {
            self.left -= 1;
            return self.frames.next_frame();
        }
        if self.idles > 0 {
            self.idles -= 1;
            return Ok(SourceEvent::Idle);
        }
        Ok(SourceEvent::End)
    }

    fn describe(&self) -> String {
        "a burst, then quiet".into()
    }
}

#[test]
fn health_records_and_idle_event_closing_follow_the_injected_clock() {
    let _sharing = sharing();
    let dir = tempfile::tempdir().unwrap();
    let profile = profile(dir.path(), "kind = \"synthetic\"\nspecies = 12", "64 MiB");
    // One burst of three detector crops (all animals, daylight), captured from `start`; the
    // camera is then quiet for 90 polls of 10 s of fake time: 15 minutes in no wall time.
    let settings = SyntheticSettings {
        frames: Some(3),
        framing: xrvlm_synth::Framing::Crop,
        empty_fraction: 0.0,
        night_fraction: 0.0,
        ..SyntheticSettings::new(1, 9, 12)
    };
    let start: SystemTime = settings.start;
    let source = QuietAfter {
        frames: SyntheticSource::new(settings).unwrap(),
        left: 3,
        idles: 90,
    };
    let clock = FakeClock::new(start);
    let options = StationOptions {
        max_frames: None,
        idle_wait: Duration::from_secs(10),
        health_every: Duration::from_secs(300),
        display_every: Duration::from_secs(3600),
    };
    let mut station = station_on(
        &profile,
        Box::new(source),
        FileWriter,
        options,
        true,
        Box::new(clock.clone()),
    );
    let summary = station.run(&AtomicBool::new(false), |_| {}).unwrap();
    assert_eq!(summary.reason, StopReason::SourceEnded);
    assert_eq!(clock.monotonic(), Duration::from_secs(900));
    let records = records(&profile);
    // Health every 5 fake minutes, and once more at the end.
    let health: Vec<(u64, String)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Health(h) => Some((h.uptime_s, h.at.clone())),
            _ => None,
        })
        .collect();
    let want: Vec<(u64, String)> = [300, 600, 900, 900]
        .into_iter()
        .map(|s| (s, utc(start + Duration::from_secs(s))))
        .collect();
    assert_eq!(health, want);
    // The burst's event closed while the camera was idle (its gap is 60 s), long before the
    // first health record, not only when the run ended.
    let position = |want: fn(&Record) -> bool| records.iter().position(want).unwrap();
    let event = position(|r| matches!(r, Record::Event(_)));
    let first_health = position(|r| matches!(r, Record::Health(_)));
    assert!(event < first_health, "{records:#?}");
    assert_eq!(
        records
            .iter()
            .filter(|r| matches!(r, Record::Event(_)))
            .count(),
        1
    );
    assert_events_match_frames(&records);
}

#[test]
fn the_motion_region_is_classified_logged_with_its_box_and_outlined_on_the_saved_frame() {
    let _sharing = sharing();
    let dir = tempfile::tempdir().unwrap();
    let card = dir.path().join("card");
    std::fs::create_dir(&card).unwrap();
    let scene = image::RgbImage::from_fn(640, 360, |x, y| {
        image::Rgb([(60 + y / 4) as u8, (90 + x / 16) as u8, 50])
    });
    scene.save(card.join("IMG_0000.png")).unwrap();
    // A 110-px synthetic frame of the demo's world steps into the scene at (400, 180).
    let animal = synthetic(1).render(0).image;
    let mut with_animal = scene.clone();
    image::imageops::replace(&mut with_animal, &animal, 400, 180);
    with_animal.save(card.join("IMG_0001.png")).unwrap();
    let mut profile = profile(dir.path(), "kind = \"folder\"\npath = \"card\"", "64 MiB");
    profile.motion.enabled = true;
    profile.output.save_frames = SaveFrames::All;
    let mut station = open_station(&profile, options(None)).unwrap();
    assert_eq!(
        station
            .run(&AtomicBool::new(false), |_| {})
            .unwrap()
            .counters
            .inferences,
        2
    );
    let records = records(&profile);
    let frames = frame_records(&records);
    // The first frame has nothing to compare with: whole. The second: the changed region,
    // inside the animal's 110 × 110 pixels padded by one small pixel (10 frame pixels) each
    // side, and most of them (parts of its backdrop match the scene's colours).
    assert_eq!(frames[0].bbox, None);
    let region = frames[1].bbox.expect("a region").to_array();
    let [x, y, w, h] = [
        region[0] * 640.0,
        region[1] * 360.0,
        region[2] * 640.0,
        region[3] * 360.0,
    ];
    let inside = x >= 389.5 && y >= 169.5 && x + w <= 520.5 && y + h <= 300.5;
    assert!(inside && w >= 60.0 && h >= 60.0, "{:?}", [x, y, w, h]);
    let saved = profile
        .output
        .folder
        .join(frames[1].saved_frame.as_ref().unwrap());
    let saved = image::open(saved).unwrap().to_rgb8();
    // The outline's top edge, in the JPEG: yellow where the scene is green-grey.
    let [r, g, b] = saved.get_pixel((x + w / 2.0) as u32, y as u32 + 1).0;
    assert!(r > 200 && g > 150 && b < 110, "{:?}", [r, g, b]);
    let [r, _, _] = saved.get_pixel(100, 100).0;
    assert!(r < 120, "the scene away from the box is as it was");
}
