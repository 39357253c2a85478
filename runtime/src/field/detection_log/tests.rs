//! Records round-trip, sequence numbers continue across reopen, a torn last line is set aside,
//! and corruption before the last line is reported and kept.

use std::fs;
use std::io::Write;

use super::*;
use crate::field::decision::{EventOutcome, Outcome};

fn frame(media_id: &str) -> Record {
    Record::Frame(FrameRecord {
        processed_at: "2026-11-21T03:00:01Z".into(),
        captured: "2026-11-21T13:00:00+10:00".into(),
        media_id: media_id.into(),
        source: "folder".into(),
        file_name: format!("{media_id}.png"),
        outcome: Outcome::Species {
            label: "bartail_finch".into(),
            probability: 0.8,
        },
        top: vec![TopClass {
            label: "bartail_finch".into(),
            probability: 0.8,
        }],
        latency_ms: 41.5,
        saved_frame: Some("frames/2026-11-21/0000000001_m1.jpg".into()),
        bbox: Some(crate::crop::NormalizedBox::new(0.25, 0.5, 0.125, 0.25).unwrap()),
    })
}

fn event(id: u64) -> Record {
    Record::Event(EventRecord {
        event_id: id,
        start: "2026-11-21T13:00:00+10:00".into(),
        end: "2026-11-21T13:00:05+10:00".into(),
        outcome: EventOutcome::Species {
            label: "bartail_finch".into(),
        },
        frames: 1,
        media_ids: vec!["m1".into()],
        best_media_id: "m1".into(),
        best_probability: 0.8,
    })
}

fn failure() -> Record {
    Record::Failure(FailureRecord {
        at: "2026-11-21T03:00:02Z".into(),
        stage: FailureStage::Decode,
        media_id: None,
        file_name: Some("broken.jpg".into()),
        error: "broken.jpg: not a JPEG".into(),
    })
}

#[test]
fn records_are_whole_lines_with_increasing_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DETECTION_LOG_FILE);
    let (mut log, report) = DetectionLog::open(&path).unwrap();
    assert_eq!(report, OpenReport::default());
    assert_eq!(log.append(frame("m1")).unwrap(), 1);
    assert_eq!(log.append(event(4)).unwrap(), 2);
    assert_eq!(log.append(failure()).unwrap(), 3);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "frame");
    assert_eq!(first["seq"], 1);
    assert_eq!(first["outcome"]["kind"], "species");
    let (entries, problems) = read_records(&path).unwrap();
    assert!(problems.is_empty());
    let records: Vec<Record> = entries.into_iter().map(|e| e.record).collect();
    assert_eq!(records, [frame("m1"), event(4), failure()]);
}

#[test]
fn reopening_continues_the_sequence_and_reports_the_last_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DETECTION_LOG_FILE);
    {
        let (mut log, _) = DetectionLog::open(&path).unwrap();
        log.append(event(9)).unwrap();
        log.append(event(3)).unwrap();
    }
    let (mut log, report) = DetectionLog::open(&path).unwrap();
    assert_eq!((report.records, report.last_event_id), (2, Some(9)));
    assert_eq!(log.next_seq(), 3);
    assert_eq!(log.append(frame("m2")).unwrap(), 3);
}

fn torn_log(tail: &[u8]) -> (tempfile::TempDir, std::path::PathBuf, u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DETECTION_LOG_FILE);
    {
        let (mut log, _) = DetectionLog::open(&path).unwrap();
        log.append(frame("m1")).unwrap();
        log.append(frame("m2")).unwrap();
    }
    let good_len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(tail)
        .unwrap();
    (dir, path, good_len)
}

#[test]
fn a_line_cut_short_is_moved_aside_and_the_log_truncated() {
    let tail = br#"{"seq":3,"type":"frame","processed_at":"2026-11"#;
    let (_dir, path, good_len) = torn_log(tail);
    let (mut log, report) = DetectionLog::open(&path).unwrap();
    let recovery = report.recovery.clone().expect("a torn line was found");
    assert_eq!(recovery.torn_bytes, tail.len() as u64);
    assert_eq!(recovery.truncated_to, good_len);
    assert_eq!(recovery.side_file, format!("{}.torn-1", path.display()));
    assert_eq!(fs::read(&recovery.side_file).unwrap(), tail);
    assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
    assert!(report.corrupt_lines.is_empty());
    assert_eq!(report.records, 2);
    // The caller logs the report; the log reads whole again.
    assert_eq!(log.append(Record::Recovery(recovery)).unwrap(), 3);
    let (entries, problems) = read_records(&path).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(entries.len(), 3);
}

#[test]
fn a_complete_last_line_that_does_not_parse_is_torn_too() {
    let (_dir, path, good_len) = torn_log(b"{\"seq\":3,\"type\":\"fr\0\0\0\n");
    let (_, report) = DetectionLog::open(&path).unwrap();
    assert!(report.recovery.is_some());
    assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
}

#[test]
fn side_files_are_numbered_and_never_overwritten() {
    let (_dir, path, _) = torn_log(b"torn one");
    DetectionLog::open(&path).unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"torn two")
        .unwrap();
    let (_, report) = DetectionLog::open(&path).unwrap();
    let side = report.recovery.unwrap().side_file;
    assert!(side.ends_with(".torn-2"), "{side}");
    assert_eq!(
        fs::read(format!("{}.torn-1", path.display())).unwrap(),
        b"torn one"
    );
    assert_eq!(fs::read(side).unwrap(), b"torn two");
}

#[test]
fn corruption_before_the_last_line_is_reported_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DETECTION_LOG_FILE);
    {
        let (mut log, _) = DetectionLog::open(&path).unwrap();
        log.append(frame("m1")).unwrap();
    }
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"garbage from a bad sector\n")
        .unwrap();
    {
        let (mut log, report) = DetectionLog::open(&path).unwrap();
        assert!(report.recovery.is_some(), "a bad last line reads as torn");
        log.append(frame("m2")).unwrap();
    }
    // Now put the garbage back in the middle: corruption, not a torn tail.
    let text = fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(1, "garbage from a bad sector");
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    let size = fs::metadata(&path).unwrap().len();
    let (mut log, report) = DetectionLog::open(&path).unwrap();
    assert_eq!(report.recovery, None);
    assert_eq!(report.records, 2);
    assert_eq!(report.corrupt_lines.len(), 1);
    assert_eq!(report.corrupt_lines[0].line, 2);
    assert_eq!(fs::metadata(&path).unwrap().len(), size, "nothing dropped");
    log.append(frame("m3")).unwrap();
    let (entries, problems) = read_records(&path).unwrap();
    assert_eq!((entries.len(), problems.len()), (3, 1));
}

#[test]
fn read_records_reports_a_torn_tail_without_changing_the_file() {
    let (_dir, path, _) = torn_log(b"{\"seq\":");
    let size = fs::metadata(&path).unwrap().len();
    let (entries, problems) = read_records(&path).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].line, 3);
    assert_eq!(fs::metadata(&path).unwrap().len(), size);
}
