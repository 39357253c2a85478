//! One entry point per parser of outside input, for the coverage-guided fuzzers
//! (`runtime/fuzz`, cargo fuzz) and for the test that replays their committed corpora.
//!
//! Each entry takes arbitrary bytes, as a corrupt SD card, a failing sensor or a hostile file
//! would give them, and must return without panicking, aborting or allocating without bound,
//! whatever they are. Where a parser promises more than "no crash", the entry asserts it: a
//! manifest that parses writes back to one that parses equal; opening a torn detection log
//! keeps every byte (whole lines in the log, the torn tail in its side file) and leaves a log
//! that takes the next record.
//!
//! What is fuzzed, by [`TARGETS`] name: `manifest` (the bundle's `manifest.toml`), `profile`
//! (a board profile), `prompts` (`prompts.safetensors`), `detection_log` (the log's recovery
//! after a torn write), `yuyv` and `mjpeg` (camera buffers), `exif` (the capture time),
//! `image_file` (an image file `classify` or the folder source reads), `megadetector` (the
//! batch-output file `classify --detections` reads) and `resume` (the output `classify --resume`
//! reads back: JSON lines, CSV or a MegaDetector document).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::bundle::manifest::Manifest;
use crate::bundle::prompts::parse_prompts;
use crate::detection_file;
use crate::field::config::Profile;
use crate::field::detection_log::{
    read_records, DetectionLog, FailureRecord, FailureStage, Record,
};
use crate::field::source::camera_settings::{Negotiated, PixelFormat};
use crate::field::source::decode::{exif_time, to_rgb};
use crate::image_io;
use crate::resume;
use crate::scoring::CrmDims;

/// A fuzz target: its name (the cargo fuzz target and the corpus folder) and its entry.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, in the order of the module's list.
pub const TARGETS: &[Target] = &[
    ("manifest", manifest),
    ("profile", profile),
    ("prompts", prompts),
    ("detection_log", detection_log),
    ("yuyv", yuyv),
    ("mjpeg", mjpeg),
    ("exif", exif),
    ("image_file", image_file),
    ("megadetector", megadetector),
    ("resume", resume),
];

/// The name errors give the input.
const ORIGIN: &str = "fuzz-input";

/// The CRM sizes `prompts` parses for (C, M, P, D, D', H): small, so that the fuzzer can
/// reach a file of the right shapes from its seeds.
pub const PROMPTS_DIMS: [usize; 6] = [3, 2, 2, 4, 3, 2];

/// A bundle manifest: parse, check, and a manifest that parses writes back to one that parses
/// equal but for `format_version`.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new(ORIGIN);
    let Ok(parsed) = Manifest::parse(text, path) else {
        return;
    };
    let _ = parsed.validate(path);
    let _ = parsed.crm_dims();
    let written = parsed.to_toml().expect("a parsed manifest serializes");
    let again = Manifest::parse(&written, path).expect("a written manifest parses");
    // `to_toml` writes the oldest format that holds the fields, whatever the input said.
    assert_eq!(again.format_version, parsed.required_format().0);
    let parsed = Manifest {
        format_version: again.format_version,
        ..parsed
    };
    assert_eq!(
        again, parsed,
        "manifest changed by a write and read:\n{written}"
    );
}

/// A board profile.
pub fn profile(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Profile::parse(text, Path::new(ORIGIN));
    }
}

/// `prompts.safetensors` for [`PROMPTS_DIMS`] at feature scale 1.
pub fn prompts(data: &[u8]) {
    let [c, m, p, d, crm, h] = PROMPTS_DIMS;
    let dims = CrmDims::new(c, m, p, d, crm, h).expect("PROMPTS_DIMS are non-zero");
    let _ = parse_prompts(data, Path::new(ORIGIN), dims, 1.0);
}

/// A detection log as a power cut may leave it: opening it keeps whole records in the log and
/// moves a torn last line, byte for byte, to its side file; the log then takes a record and
/// opens again with nothing to recover.
pub fn detection_log(data: &[u8]) {
    let dir = scratch_dir();
    let path = dir.join("detections.jsonl");
    clear(dir);
    fs::write(&path, data).expect("write the fuzzed log");
    let Ok((mut log, report)) = DetectionLog::open(&path) else {
        clear(dir);
        return;
    };
    let kept = fs::read(&path).expect("read the opened log");
    match &report.recovery {
        Some(recovery) => {
            let torn = fs::read(&recovery.side_file).expect("read the side file");
            assert_eq!(kept.len() as u64, recovery.truncated_to);
            assert_eq!([kept.as_slice(), torn.as_slice()].concat(), data);
        }
        None => assert_eq!(kept, data),
    }
    let (entries, problems) = read_records(&path).expect("read the opened log");
    assert_eq!(entries.len(), report.records);
    assert!(problems.iter().all(|p| p.offset < kept.len() as u64));
    log.append(probe_record()).expect("append after recovery");
    let (_, reopened) = DetectionLog::open(&path).expect("reopen");
    assert!(
        reopened.recovery.is_none(),
        "a recovered log needed recovery again"
    );
    assert_eq!(reopened.records, report.records + 1);
    clear(dir);
}

/// A YUYV camera buffer: the first three bytes give the negotiated width (even, 2–512),
/// height (1–256) and stride padding (0–255 bytes), the rest is the buffer.
pub fn yuyv(data: &[u8]) {
    let [w, h, pad, rest @ ..] = data else {
        return;
    };
    let width = 2 * (u32::from(*w) + 1);
    let format = Negotiated {
        format: PixelFormat::Yuyv,
        width,
        height: u32::from(*h) + 1,
        bytes_per_line: 2 * width + u32::from(*pad),
        fps: None,
    };
    if let Ok(rgb) = to_rgb(&format, rest) {
        assert_eq!(rgb.dimensions(), (format.width, format.height));
    }
}

/// An MJPEG camera buffer (a JPEG, its Huffman tables possibly left out).
pub fn mjpeg(data: &[u8]) {
    let format = Negotiated {
        format: PixelFormat::Mjpeg,
        width: 640,
        height: 480,
        bytes_per_line: 0,
        fps: None,
    };
    let _ = to_rgb(&format, data);
}

/// The EXIF capture time of an encoded image.
pub fn exif(data: &[u8]) {
    let _ = exif_time::exif_capture(data);
}

/// An image file, decoded as `classify` and the folder source decode it.
pub fn image_file(data: &[u8]) {
    let _ = image_io::decode_rgb(data, Path::new(ORIGIN));
}

/// A MegaDetector batch-output file.
pub fn megadetector(data: &[u8]) {
    if let Ok(root) = serde_json::from_slice(data) {
        let _ = detection_file::parse(root, Path::new("images"), 0.2);
    }
}

/// An output of `classify` read back for `--resume`: the first byte picks JSON lines, CSV or
/// a MegaDetector document, the rest is the file.
pub fn resume(data: &[u8]) {
    let [kind, rest @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let text = &text[..resume::complete_len(text)];
    let classes = ["blank".to_string(), "wren".to_string()];
    match kind % 3 {
        0 => {
            let _ = resume::jsonl_files(text);
        }
        1 => {
            let header = ["file", "status", "label_1", "probability_1", "error"].map(String::from);
            let _ = resume::csv_files(text, &header);
        }
        _ => {
            if let Ok(images) = resume::megadetector_images(text, &classes) {
                let _ = resume::image_files(&images);
            }
        }
    }
}

/// A folder of this process's own for the log target's files, made once.
fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("xrvlm-fuzz-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("create the fuzz scratch folder");
        dir
    })
}

/// Removes every file in `dir` (the last input's log and side files).
fn clear(dir: &Path) {
    for entry in fs::read_dir(dir)
        .expect("list the fuzz scratch folder")
        .flatten()
    {
        let _ = fs::remove_file(entry.path());
    }
}

/// The record the log target appends after recovery.
fn probe_record() -> Record {
    Record::Failure(FailureRecord {
        at: "2026-01-01T00:00:00Z".into(),
        stage: FailureStage::Source,
        media_id: None,
        file_name: None,
        error: "fuzz probe".into(),
    })
}
