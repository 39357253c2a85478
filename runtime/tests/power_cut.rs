//! Power cuts: the real `xrvlm run` binary on the demo bundle, killed with SIGKILL at random
//! moments 50 times over the same output folder (every fifth cut also leaves half a line, as a
//! power cut in the middle of a write would). After every cut, the log's complete lines all
//! parse (only an unterminated last line may be torn); after every restart the torn tail has been
//! set aside and reported, and every event the binary printed as logged is in the log. And
//! SIGTERM ends a run cleanly: exit 0, the open event closed, a last health record.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use common::rng::Rng;
use xrvlm_runtime::field::detection_log::{read_records, Entry, Record, DETECTION_LOG_FILE};

const CUTS: usize = 50;

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

/// Starts `xrvlm run` and a thread collecting the ids of the events it reports as logged.
fn start(profile: &Path) -> (Child, JoinHandle<Vec<u64>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xrvlm"))
        .args(["run", "--config"])
        .arg(profile)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| {
                let rest = line.strip_prefix("event ")?;
                let (id, tail) = rest.split_once(' ')?;
                tail.starts_with("logged").then(|| id.parse().unwrap())
            })
            .collect()
    });
    (child, reader)
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
    for cut in 0..CUTS {
        let (mut child, reader) = start(&profile);
        // From during start-up (bundle check, model load) to well into the loop.
        let delay_ms = 50 + rng.next_u64() % 1200;
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reported.extend(reader.join().unwrap());
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
    // One clean run to the first events: it must recover the last cut's torn tail, if any.
    let (mut child, reader) = start(&profile);
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    reported.extend(reader.join().unwrap());
    check_after_cut(&log, CUTS);

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
        reported.len() >= CUTS,
        "too few events to mean anything: {} reported",
        reported.len()
    );
    eprintln!(
        "{CUTS} cuts: {} events reported and found, {torn_tails} torn tails recovered",
        reported.len()
    );
}

#[test]
fn sigterm_finishes_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let profile = write_profile(dir.path());
    let log = dir.path().join("out").join(DETECTION_LOG_FILE);
    let (child, reader) = start(&profile);
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) with a valid pid of our own child and a valid signal number.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait_with_output().unwrap().status;
    assert!(status.success(), "exit status {status}");
    let reported = reader.join().unwrap();
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
