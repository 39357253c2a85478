//! Power cuts: the real `xrvlm run` binary on the demo bundle, killed with SIGKILL at random
//! moments 50 times (20 under an emulator) over the same output folder (every fifth cut also leaves half a line, as a
//! power cut in the middle of a write would). After every cut, the log's complete lines all
//! parse (only an unterminated last line may be torn); after every restart the torn tail has been
//! set aside and reported, and every event the binary printed as logged is in the log. And
//! SIGTERM ends a run cleanly: exit 0, the open event closed, a last health record.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use common::rng::Rng;
use xrvlm_runtime::field::detection_log::{read_records, Entry, Record, DETECTION_LOG_FILE};

/// Cuts on the machine itself. Under an emulator (`XRVLM_TEST_RUNNER`, the aarch64 leg of
/// `tools/test-all.sh`) every start costs seconds, so fewer: 20 still cut during start-up five
/// times and tear four writes, and keep CI's run well inside its time limit.
fn cuts() -> usize {
    let emulated = std::env::var("XRVLM_TEST_RUNNER").is_ok_and(|r| !r.trim().is_empty());
    if emulated {
        20
    } else {
        50
    }
}

fn write_profile(dir: &Path) -> PathBuf {
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/demo");
    let text = format!(
        r#"
[deployment]
id = "power-cut"
location_name = "Bench"
latitude = 0.0
longitude = 0.0
utc_offset = "+00:00"

[source]
kind = "synthetic"
world = 1
seed = 4
species = 12

[model]
bundle = "{}"
precision = "int8"
threads = 1
top_k = 3

[motion]
enabled = false

[decision]
threshold = 0.3
event_gap_s = 60

[output]
folder = "out"
storage_budget = "2 MiB"

[log]
level = "info"
health_interval_min = 1
"#,
        bundle.display()
    );
    let path = dir.join("profile.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// What the running binary said so far.
struct Run {
    child: Child,
    /// Each stdout line as it comes; closed when the process is gone.
    lines: Receiver<String>,
}

/// How long a start may take: loading the model under qemu emulation is slow.
const START_TIMEOUT: Duration = Duration::from_secs(120);

impl Run {
    /// Starts `xrvlm run` with a thread forwarding its stdout lines.
    fn start(profile: &Path) -> Self {
        let mut child = common::xrvlm()
            .args(["run", "--config"])
            .arg(profile)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits for a line starting with `prefix`; the lines before it are returned too.
    fn wait_for(&self, prefix: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(START_TIMEOUT)
                .unwrap_or_else(|e| panic!("no line {prefix:?} ({e}); saw {seen:?}"));
            let found = line.starts_with(prefix);
            seen.push(line);
            if found {
                return seen;
            }
        }
    }

    /// Kills the process with SIGKILL and returns the ids of every event it printed as logged.
    fn kill(mut self, mut seen: Vec<String>) -> Vec<u64> {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        seen.extend(self.lines.iter());
        reported_events(&seen)
    }
}

/// Sends SIGTERM and checks the run exits 0.
fn stop_with_sigterm(run: &mut Run) {
    // SAFETY: kill(2) with a valid pid of our own child and a valid signal number.
    assert_eq!(
        unsafe { libc::kill(run.child.id() as i32, libc::SIGTERM) },
        0
    );
    let status = run.child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
}

/// Ids of the events printed as `event N logged: ...`.
fn reported_events(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|line| {
            let rest = line.strip_prefix("event ")?;
            let (id, tail) = rest.split_once(' ')?;
            tail.starts_with("logged").then(|| id.parse().unwrap())
        })
        .collect()
}

/// Checks the raw log after a cut: every newline-terminated line is a record with a sequence
/// number above the one before; returns whether an unterminated (torn) tail follows them.
fn check_after_cut(log: &Path, cut: usize) -> bool {
    let Ok(bytes) = std::fs::read(log) else {
        return false; // killed before the log was created
    };
    let text = String::from_utf8_lossy(&bytes);
    let torn = !text.is_empty() && !text.ends_with('\n');
    let complete = if torn {
        &text[..text.rfind('\n').map_or(0, |i| i + 1)]
    } else {
        &text[..]
    };
    let mut last_seq = 0;
    for (n, line) in complete.lines().enumerate() {
        let entry: Entry = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("cut {cut}: line {} does not parse ({e}): {line}", n + 1));
        assert!(
            entry.seq > last_seq,
            "cut {cut}: line {} out of order",
            n + 1
        );
        last_seq = entry.seq;
    }
    torn
}

/// What a power cut in the middle of a write leaves (SIGKILL cannot: the kernel finishes a
/// write(2) it has begun): the first half of a record line, with no newline, after the last
/// complete line. Done only when the log ends with a complete line.
fn tear_a_write(log: &Path) {
    let Ok(text) = std::fs::read_to_string(log) else {
        return;
    };
    let Some(last) = text.lines().last().filter(|_| text.ends_with('\n')) else {
        return;
    };
    let half = &last[..last.len() / 2];
    let mut file = std::fs::OpenOptions::new().append(true).open(log).unwrap();
    std::io::Write::write_all(&mut file, half.as_bytes()).unwrap();
}

fn logged_events(log: &Path) -> Vec<u64> {
    let (entries, problems) = read_records(log).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    entries
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Event(event) => Some(event.event_id),
            _ => None,
        })
        .collect()
}

#[test]
fn sigkill_at_random_moments_never_loses_a_reported_event_or_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let profile = write_profile(dir.path());
    let log = dir.path().join("out").join(DETECTION_LOG_FILE);
    let mut rng = Rng::new(20261121);
    let mut reported = Vec::new();
    // A torn tail stays until a run gets as far as opening the log: count each one once.
    let (mut torn_tails, mut last_torn_len) = (0, None);
    let cuts = cuts();
    for cut in 0..cuts {
        let run = Run::start(&profile);
        // One cut in four during start-up (bundle check, model load, log recovery); the rest
        // after 0 to 2 events and up to 0.3 s more, whatever the machine's speed (under qemu a
        // frame takes a quarter of a second).
        let mut seen = Vec::new();
        if cut % 4 != 0 {
            seen = run.wait_for("xrvlm run:");
            for _ in 0..rng.next_u64() % 3 {
                seen.extend(run.wait_for("event "));
            }
        }
        std::thread::sleep(Duration::from_millis(rng.next_u64() % 300));
        reported.extend(run.kill(seen));
        if cut % 5 == 4 {
            tear_a_write(&log);
        }
        if check_after_cut(&log, cut) {
            let len = std::fs::metadata(&log).unwrap().len();
            if last_torn_len != Some(len) {
                torn_tails += 1;
            }
            last_torn_len = Some(len);
        } else {
            last_torn_len = None;
        }
    }
    // One last run, to its first event and then stopped cleanly: it recovers the last cut's
    // torn tail (if any) and closes the events the cuts left open.
    let mut run = Run::start(&profile);
    let mut seen = run.wait_for("event ");
    stop_with_sigterm(&mut run);
    seen.extend(run.lines.iter());
    reported.extend(reported_events(&seen));
    check_after_cut(&log, cuts);
    // No sighting lost to a cut: every animal frame of the log is in exactly one event.
    let (entries, _) = read_records(&log).unwrap();
    let mut in_events = std::collections::HashMap::new();
    for entry in &entries {
        if let Record::Event(e) = &entry.record {
            for id in &e.media_ids {
                *in_events.entry(id.clone()).or_insert(0) += 1;
            }
        }
    }
    for entry in &entries {
        if let Record::Frame(f) = &entry.record {
            if f.outcome.is_animal() {
                let events = in_events.get(&f.media_id).copied().unwrap_or(0);
                assert_eq!(events, 1, "frame {} is in {events} events", f.media_id);
            }
        }
    }

    let logged = logged_events(&log);
    for id in &reported {
        assert!(
            logged.contains(id),
            "event {id} was reported as logged but is not in the log"
        );
    }
    let mut unique = logged.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), logged.len(), "an event id was used twice");
    let (entries, _) = read_records(&log).unwrap();
    let recoveries = entries
        .iter()
        .filter(|e| matches!(e.record, Record::Recovery(_)))
        .count();
    // Each torn tail is set aside and reported by the next run that opens the log (a report
    // can itself be cut and set aside in turn, hence at most).
    assert!(
        recoveries <= torn_tails,
        "{recoveries} recoveries, {torn_tails} torn tails"
    );
    assert_eq!(
        recoveries > 0,
        torn_tails > 0,
        "torn tails {torn_tails}, recoveries {recoveries}"
    );
    assert!(
        reported.len() >= cuts / 2,
        "too few events to mean anything: {} reported",
        reported.len()
    );
    eprintln!(
        "{cuts} cuts: {} events reported and found, {torn_tails} torn tails recovered",
        reported.len()
    );
}

#[test]
fn sigterm_finishes_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let profile = write_profile(dir.path());
    let log = dir.path().join("out").join(DETECTION_LOG_FILE);
    let mut run = Run::start(&profile);
    let mut seen = run.wait_for("event ");
    stop_with_sigterm(&mut run);
    seen.extend(run.lines.iter());
    let reported = reported_events(&seen);
    let (entries, problems) = read_records(&log).unwrap();
    assert!(problems.is_empty());
    assert!(matches!(
        entries.last().map(|e| &e.record),
        Some(Record::Health(_))
    ));
    let logged = logged_events(&log);
    assert!(!logged.is_empty());
    assert_eq!(
        reported, logged,
        "every event printed, and printed only once logged"
    );
}
