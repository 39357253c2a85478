//! The budget evicts oldest first, survives a restart, and a full disk is a typed error after
//! which room is made.

use std::fs;
use std::io;
use std::path::Path;

use super::*;

fn jpeg(size: usize, fill: u8) -> Vec<u8> {
    vec![fill; size]
}

/// Bytes under `dir`, recursively.
fn used(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.unwrap())
        .map(|e| {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                used(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

/// A disk of `capacity` bytes holding the output folder: writes that would overfill it fail
/// with `StorageFull`, as `ENOSPC` does; deleting files really frees space.
struct SmallDisk {
    output: std::path::PathBuf,
    capacity: u64,
}

impl FrameWriter for SmallDisk {
    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        if used(&self.output) + bytes.len() as u64 > self.capacity {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        FileWriter.write(path, bytes)
    }
}

#[test]
fn saving_past_the_budget_deletes_the_oldest_frames_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = FrameStore::open(dir.path(), 2500).unwrap();
    let a = store.save("2026-11-21", "cam-1", &jpeg(1000, 1)).unwrap();
    let b = store.save("2026-11-21", "cam-2", &jpeg(1000, 2)).unwrap();
    assert_eq!(a.relative, "frames/2026-11-21/0000000001_cam-1.jpg");
    assert!(b.evicted.is_empty());
    let c = store.save("2026-11-22", "cam-3", &jpeg(1000, 3)).unwrap();
    assert_eq!(c.evicted, std::slice::from_ref(&a.relative));
    assert!(!dir.path().join(&a.relative).exists());
    assert_eq!(
        fs::read(dir.path().join(&c.relative)).unwrap(),
        jpeg(1000, 3)
    );
    assert_eq!(store.total_bytes(), 2000);
    assert!(used(&dir.path().join(FRAMES_DIR)) <= 2500);
}

#[test]
fn total_never_exceeds_the_budget_over_many_saves() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = FrameStore::open(dir.path(), 5000).unwrap();
    for i in 0..40 {
        let size = 300 + (i * 137) % 900;
        store
            .save("2026-11-21", &format!("m{i}"), &jpeg(size, 0))
            .unwrap();
        assert!(store.total_bytes() <= 5000);
        assert_eq!(store.total_bytes(), used(&dir.path().join(FRAMES_DIR)));
    }
}

#[test]
fn reopening_recovers_the_order_and_the_log_is_never_evicted() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("detections.jsonl");
    fs::write(&log, vec![b'x'; 4000]).unwrap();
    fs::create_dir_all(dir.path().join("frames/2026-11-21")).unwrap();
    fs::write(
        dir.path().join("frames/2026-11-21/notes.txt"),
        b"not a frame",
    )
    .unwrap();
    {
        let mut store = FrameStore::open(dir.path(), 3000).unwrap();
        // Saved across a date change: the counter, not the day folder, is the order.
        store.save("2026-11-22", "first", &jpeg(1000, 1)).unwrap();
        store.save("2026-11-21", "second", &jpeg(1000, 2)).unwrap();
    }
    let mut store = FrameStore::open(dir.path(), 3000).unwrap();
    assert_eq!(store.total_bytes(), 2000);
    let c = store.save("2026-11-22", "third", &jpeg(1500, 3)).unwrap();
    assert_eq!(c.relative, "frames/2026-11-22/0000000003_third.jpg");
    assert_eq!(c.evicted, ["frames/2026-11-22/0000000001_first.jpg"]);
    assert_eq!(fs::read(&log).unwrap().len(), 4000);
    assert!(dir.path().join("frames/2026-11-21/notes.txt").exists());
}

#[test]
fn a_smaller_budget_takes_effect_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = FrameStore::open(dir.path(), 10_000).unwrap();
    for i in 0..5 {
        store
            .save("2026-11-21", &format!("m{i}"), &jpeg(1000, 0))
            .unwrap();
    }
    let store = FrameStore::open(dir.path(), 2000).unwrap();
    assert_eq!(store.total_bytes(), 2000);
    assert_eq!(
        store.frames().collect::<Vec<_>>(),
        [
            "frames/2026-11-21/0000000004_m3.jpg",
            "frames/2026-11-21/0000000005_m4.jpg"
        ]
    );
}

#[test]
fn a_frame_larger_than_the_budget_is_refused_without_evicting() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = FrameStore::open(dir.path(), 1000).unwrap();
    store.save("2026-11-21", "small", &jpeg(600, 0)).unwrap();
    let err = store
        .save("2026-11-21", "huge", &jpeg(1001, 0))
        .unwrap_err();
    assert!(matches!(
        err,
        FrameStoreError::TooLarge {
            bytes: 1001,
            budget: 1000
        }
    ));
    assert_eq!(store.total_bytes(), 600);
}

#[test]
fn a_full_disk_is_a_typed_error_then_the_oldest_frames_make_room() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("detections.jsonl");
    fs::write(&log, vec![b'x'; 500]).unwrap();
    let disk = SmallDisk {
        output: dir.path().to_path_buf(),
        capacity: 2600,
    };
    let mut store = FrameStore::open_with(dir.path(), 10_000, disk).unwrap();
    let a = store.save("2026-11-21", "a", &jpeg(1000, 1)).unwrap();
    store.save("2026-11-21", "b", &jpeg(1000, 2)).unwrap();
    let err = store.save("2026-11-21", "c", &jpeg(1000, 3)).unwrap_err();
    assert!(err.is_disk_full(), "{err}");
    let FrameStoreError::Write { path, evicted, .. } = &err else {
        panic!("expected a write error, got {err:?}")
    };
    assert_eq!(evicted, std::slice::from_ref(&a.relative));
    assert!(!path.exists(), "no partial frame is left");
    assert_eq!(
        fs::read(&log).unwrap(),
        vec![b'x'; 500],
        "the log is untouched"
    );
    let d = store.save("2026-11-21", "d", &jpeg(1000, 4)).unwrap();
    assert_eq!(d.relative, "frames/2026-11-21/0000000003_d.jpg");
    assert_eq!(store.total_bytes(), 2000);
}

#[test]
fn media_ids_become_one_safe_file_name() {
    assert_eq!(clean("../etc/passwd"), "_.._etc_passwd");
    assert_eq!(clean("cam 1/frame:2"), "cam_1_frame_2");
    assert_eq!(clean(""), "_");
}
