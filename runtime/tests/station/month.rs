//! A month of a camera trap in seconds of wall time: the station runs on a [`FakeClock`] through
//! 30 days and nights of bursts ([`trap`]), a camera that vanishes every few hours and is
//! reopened, a card under a small storage budget (old frames evicted) that is also full for a
//! day and a half, corrupt frames, and five SIGTERMs each followed by a new station on the same
//! output folder. The detection log is then held against the camera's own ledger: every frame
//! the camera delivered is in the log exactly once, in the run that took it, as a frame record
//! or (corrupt) a decode failure; events are made of those frames and never span a restart;
//! every outage and refused save is a failure record. The resident memory after a two-day
//! warm-up and at the end of the month are within 5 %, and the live heap is flat ([`memory`]).
//!
//! The figures are printed: `cargo test -p xrvlm-runtime --test station month -- --nocapture`.

#[path = "memory.rs"]
mod memory;
#[path = "trap.rs"]
mod trap;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use xrvlm_runtime::field::clock::{Clock, FakeClock};
use xrvlm_runtime::field::config::Profile;
use xrvlm_runtime::field::detection_log::{Entry, FailureStage, Record};
use xrvlm_runtime::field::frame_store::FRAMES_DIR;
use xrvlm_runtime::field::station::{StationOptions, StopReason, Summary};

use self::memory::Sample;
use self::trap::{Card, Ledger, Seen, Service, Trap};
use super::{
    alone, assert_events_match_frames, failures, frame_records, profile, records,
    saved_frame_bytes, station_on,
};

/// The storage budget: about twenty of the trap's 72-pixel JPEG frames.
const BUDGET: &str = "48 KiB";
const BUDGET_BYTES: u64 = 48 * 1024;
/// How long the station waits when the camera has nothing: a camera trap's frames come only
/// when something moves, so the loop polls every 15 s of fake time between bursts.
const POLL: Duration = Duration::from_secs(15);
/// Memory is compared from the first health record after this much of the month on: plan
/// caches, the frame store at its budget, every path of the loop taken at least once.
const WARM_UP: Duration = Duration::from_secs(2 * 24 * 3600);
#[test]
fn a_month_of_a_camera_trap_loses_and_duplicates_nothing_and_memory_stays_flat() {
    let _alone = alone();
    memory::pin_mmap_threshold();
    let wall = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let profile = profile(dir.path(), "kind = \"synthetic\"\nspecies = 12", BUDGET);
    let clock = FakeClock::new(trap::start());
    let trap = Trap::new(clock.clone(), profile.deployment.utc_offset);
    let (summaries, samples) = run_month(&profile, &clock, &trap);
    trap.borrow_mut().finish();
    let wall = wall.elapsed();

    let records = records(&profile);
    let trap = trap.borrow();
    let memory = (
        warmed_up(&samples),
        *samples.last().expect("health records"),
    );
    print_figures(&trap, &summaries, &records, &profile, memory, wall);

    check_runs(&summaries, &records, &trap);
    check_every_frame_once(&records, &trap);
    check_events(&records);
    check_outages(&summaries, &records, &trap.ledger);
    check_card(&records, &profile, &trap.ledger);
    memory::check(memory.0, memory.1);
}

/// Runs stations on the month until it ends, a new one on the same folder after each SIGTERM;
/// returns each run's summary and the memory at every health record.
fn run_month(
    profile: &Profile,
    clock: &FakeClock,
    trap: &trap::Shared,
) -> (Vec<Summary>, Vec<Sample>) {
    let options = StationOptions {
        idle_wait: POLL,
        ..StationOptions::from_profile(profile)
    };
    // Allocated up front, so that the samples themselves do not grow the heap.
    let mut samples = Vec::with_capacity(trap::DAYS as usize * 24 + 64);
    let mut summaries = Vec::with_capacity(8);
    loop {
        trap.borrow_mut().begin_run();
        let stop = Arc::new(AtomicBool::new(false));
        let source = Service::new(trap, clock.clone(), stop.clone());
        let mut station = station_on(
            profile,
            Box::new(source),
            Card::new(trap),
            options.clone(),
            true,
            Box::new(clock.clone()),
        );
        let summary = station
            .run(&stop, |entry: &Entry| {
                if matches!(entry.record, Record::Health(_)) {
                    samples.push(Sample::take(clock.monotonic()));
                }
            })
            .unwrap();
        drop(station);
        let reason = summary.reason;
        summaries.push(summary);
        match reason {
            StopReason::Stopped => clock.advance(trap.borrow().restart_after()),
            StopReason::SourceEnded => return (summaries, samples),
            StopReason::MaxFrames => unreachable!("no frame limit"),
        }
    }
}

fn warmed_up(samples: &[Sample]) -> Sample {
    *samples
        .iter()
        .find(|s| s.at >= WARM_UP)
        .expect("a health record after the warm-up")
}

/// The log cut into runs: each from its start record to the next one.
fn runs(records: &[Record]) -> Vec<&[Record]> {
    let starts: Vec<usize> = records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| matches!(r, Record::Start(_)).then_some(i))
        .collect();
    assert_eq!(
        starts.first(),
        Some(&0),
        "the log opens with a start record"
    );
    starts
        .iter()
        .enumerate()
        .map(|(n, &from)| &records[from..starts.get(n + 1).copied().unwrap_or(records.len())])
        .collect()
}

/// The frames a run logged as the camera would book them: scored frames with their capture
/// time, undecodable ones without.
fn logged_frames(run: &[Record]) -> Vec<Seen> {
    run.iter()
        .filter_map(|record| match record {
            Record::Frame(f) => Some(Seen {
                media: f.file_name.clone(),
                captured: Some(f.captured.clone()),
            }),
            Record::Failure(f) if f.stage == FailureStage::Decode => Some(Seen {
                media: f
                    .file_name
                    .clone()
                    .expect("a decode failure names its frame"),
                captured: None,
            }),
            _ => None,
        })
        .collect()
}

fn count(run: &[Record], want: fn(&Record) -> bool) -> u64 {
    run.iter().filter(|r| want(r)).count() as u64
}

/// Six runs (five SIGTERMs, then the month's end), each summed up by its last health record,
/// whose figures are those of the run's own records.
fn check_runs(summaries: &[Summary], records: &[Record], trap: &Trap) {
    let reasons: Vec<StopReason> = summaries.iter().map(|s| s.reason).collect();
    let mut expected = vec![StopReason::Stopped; 5];
    expected.push(StopReason::SourceEnded);
    assert_eq!(reasons, expected);
    let runs = runs(records);
    assert_eq!(runs.len(), summaries.len(), "one start record per run");
    for (n, (run, summary)) in runs.iter().zip(summaries).enumerate() {
        let c = &summary.counters;
        let Some(Record::Health(last)) = run.last() else {
            panic!("run {n} does not end with a health record");
        };
        assert_eq!(
            (last.frames, last.events, last.outages, last.failures),
            (c.frames, c.events, c.outages, c.failures),
            "run {n}"
        );
        assert_eq!(
            c.frames,
            trap.delivered_in(n).len() as u64,
            "run {n}: frames"
        );
        assert_eq!(
            c.dropped, 0,
            "run {n}: the camera numbers frames without gaps"
        );
        assert_eq!(
            c.events,
            count(run, |r| matches!(r, Record::Event(_))),
            "run {n}"
        );
        assert_eq!(
            c.failures,
            count(run, |r| matches!(r, Record::Failure(_))),
            "run {n}"
        );
        assert_eq!(
            count(run, |r| matches!(r, Record::Recovery(_))),
            0,
            "run {n}: a stopped station leaves no torn line"
        );
    }
}

/// Every frame the camera delivered is in the log once, in its run and order; no other frame
/// is; none was both delivered and missed.
fn check_every_frame_once(records: &[Record], trap: &Trap) {
    let runs = runs(records);
    assert_eq!(runs.len(), trap.ledger.runs);
    for (n, run) in runs.iter().enumerate() {
        let logged = logged_frames(run);
        let delivered = trap.delivered_in(n);
        if logged != delivered {
            let at = logged
                .iter()
                .zip(&delivered)
                .position(|(a, b)| a != b)
                .unwrap_or(logged.len().min(delivered.len()));
            panic!(
                "run {n}: {} frames in the log, {} delivered; first difference at {at}: \
                 log {:?}, camera {:?}",
                logged.len(),
                delivered.len(),
                logged.get(at),
                delivered.get(at)
            );
        }
    }
    let frames = frame_records(records);
    let captured: BTreeSet<&str> = frames.iter().map(|f| f.captured.as_str()).collect();
    assert_eq!(captured.len(), frames.len(), "a capture time logged twice");
    let media: BTreeSet<&str> = frames.iter().map(|f| f.media_id.as_str()).collect();
    assert_eq!(media.len(), frames.len(), "a media id used twice");
    assert_eq!(
        trap.delivered() as u64 + trap.ledger.missed,
        trap.shots() as u64
    );
}

/// Events are made of the log's frames, numbered 1, 2, … across restarts, span their frames'
/// capture times, and never reach across a restart (a stopped run closes its open event).
fn check_events(records: &[Record]) {
    assert_events_match_frames(records);
    let mut frames = BTreeMap::new();
    for (n, run) in runs(records).iter().enumerate() {
        for f in frame_records(run) {
            frames.insert(f.media_id.clone(), (n, f.captured.clone()));
        }
    }
    let mut ids = Vec::new();
    for (n, run) in runs(records).iter().enumerate() {
        for record in run.iter() {
            let Record::Event(e) = record else { continue };
            ids.push(e.event_id);
            let of = |id: &String| frames[id].clone();
            assert!(
                e.media_ids.iter().all(|id| of(id).0 == n),
                "event {} reaches into another run",
                e.event_id
            );
            let first = of(&e.media_ids[0]).1;
            let last = of(e.media_ids.last().expect("frames")).1;
            assert_eq!((&e.start, &e.end), (&first, &last), "event {}", e.event_id);
        }
    }
    let expected: Vec<u64> = (1..=ids.len() as u64).collect();
    assert_eq!(ids, expected, "event ids are 1, 2, … across the restarts");
}

/// Every time the station lost the camera is one outage, counted and recorded as a failure.
fn check_outages(summaries: &[Summary], records: &[Record], ledger: &Ledger) {
    let counted: u64 = summaries.iter().map(|s| s.counters.outages).sum();
    let recorded = failures(records, FailureStage::Source) as u64;
    assert_eq!(
        (counted, recorded),
        (ledger.losses, ledger.losses),
        "outages (counted, recorded) against the camera's losses"
    );
    assert_eq!(
        ledger.reconnects + ledger.lost_at_stop,
        ledger.losses,
        "every loss ends in a reconnect, or with its run"
    );
}

/// The card holds at most the budget, and exactly the newest saved frames; each animal frame
/// was saved or its refused save recorded.
fn check_card(records: &[Record], profile: &Profile, ledger: &Ledger) {
    let frames = frame_records(records);
    let saved: Vec<&str> = frames
        .iter()
        .filter_map(|f| f.saved_frame.as_deref())
        .collect();
    let animals = frames.iter().filter(|f| f.outcome.is_animal()).count();
    let refused = failures(records, FailureStage::SaveFrame);
    assert!(ledger.refused_writes > 0, "the card was never full");
    assert_eq!(refused as u64, ledger.refused_writes);
    assert_eq!(animals, saved.len() + refused);
    let output = &profile.output.folder;
    let on_card = files_under(&output.join(FRAMES_DIR), output);
    assert!(on_card.len() < saved.len(), "nothing was evicted");
    let newest: BTreeSet<String> = saved[saved.len() - on_card.len()..]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(on_card, newest, "the card holds the newest saved frames");
    assert!(saved_frame_bytes(output) <= BUDGET_BYTES);
}

/// Files under `dir`, as paths relative to `base` with `/`.
fn files_under(dir: &Path, base: &Path) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path, base));
        } else {
            let relative = path.strip_prefix(base).expect("under the base");
            files.insert(relative.to_string_lossy().replace('\\', "/"));
        }
    }
    files
}

fn print_figures(
    trap: &Trap,
    summaries: &[Summary],
    records: &[Record],
    profile: &Profile,
    (start, end): (Sample, Sample),
    wall: Duration,
) {
    let ledger = &trap.ledger;
    let sum = |f: fn(&Summary) -> u64| summaries.iter().map(f).sum::<u64>();
    let delivered = trap.delivered();
    let saved = frame_records(records)
        .iter()
        .filter(|f| f.saved_frame.is_some())
        .count();
    let output = &profile.output.folder;
    let on_card = files_under(&output.join(FRAMES_DIR), output).len();
    let health = count(records, |r| matches!(r, Record::Health(_)));
    let all_failures = count(records, |r| matches!(r, Record::Failure(_)));
    println!(
        "month: {} days of fake time in {:.1} s of wall time, {} runs ({} restarts after SIGTERM)",
        trap::DAYS,
        wall.as_secs_f64(),
        summaries.len(),
        summaries.len() - 1
    );
    println!(
        "  frames: {} triggers, {} photographed, {delivered} delivered ({} at night), {} missed \
         (camera away or service down); {} inferences, {} corrupt",
        trap.triggers(),
        trap.shots(),
        trap.delivered_at_night(),
        ledger.missed,
        sum(|s| s.counters.inferences),
        failures(records, FailureStage::Decode)
    );
    println!(
        "  events: {}; camera: {} vanishings, {} outages logged, {} reconnects",
        sum(|s| s.counters.events),
        trap.vanishings(),
        failures(records, FailureStage::Source),
        ledger.reconnects
    );
    println!(
        "  card: {saved} frames saved, {} evicted, {on_card} on the card ({} bytes, budget \
         {BUDGET_BYTES}), {} saves refused (card full)",
        saved - on_card,
        saved_frame_bytes(output),
        ledger.refused_writes
    );
    println!(
        "  log: {} records, {health} health, {all_failures} failures",
        records.len()
    );
    println!(
        "  memory from day {:.1} to the end: VmRSS {} → {} KiB ({:+.2} %), writable mappings \
         {} → {} KiB ({:+.2} %), checked: {}; live heap {} → {} bytes",
        start.day(),
        start.vm_rss,
        end.vm_rss,
        memory::change(start.vm_rss, end.vm_rss),
        start.writable,
        end.writable,
        memory::change(start.writable, end.writable),
        memory::resident_name(),
        start.live,
        end.live
    );
}
