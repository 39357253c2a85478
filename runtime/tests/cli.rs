//! The `xrvlm` binary end to end: classify over folders in every format, failures recorded
//! with exit code 2, `--resume`, `info` and `bench`, a damaged image model, and where f16 is
//! offered.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::bundle_writer::{random_image, write_bundle, Spec};
use serde_json::Value;

fn xrvlm(args: &[&str]) -> Output {
    common::xrvlm()
        .args(args)
        .output()
        .expect("the xrvlm binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A bundle and a folder `samples/` with three images (one in a subfolder), a truncated
/// JPEG and a text file.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        write_bundle(&dir.path().join("bundle"), &Spec::small(), 31);
        let samples = dir.path().join("samples");
        fs::create_dir_all(samples.join("sub")).unwrap();
        random_image(30, 20, 1).save(samples.join("a.png")).unwrap();
        random_image(20, 30, 2).save(samples.join("b.png")).unwrap();
        random_image(25, 25, 3)
            .save(samples.join("sub/c.png"))
            .unwrap();
        fs::write(
            samples.join("broken.jpg"),
            b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
        )
        .unwrap();
        fs::write(samples.join("notes.txt"), b"not an image").unwrap();
        Self { dir }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn s(&self, rel: &str) -> String {
        self.path(rel).to_string_lossy().into_owned()
    }
    fn classify(&self, format: &str, output: &str, extra: &[&str]) -> Output {
        let (bundle, samples, out) = (self.s("bundle"), self.s("samples"), self.s(output));
        let mut args = vec![
            "classify", &samples, "--bundle", &bundle, "--format", format,
        ];
        args.extend(["--output", &out, "--top-k", "3", "--threads", "1"]);
        args.extend(extra);
        xrvlm(&args)
    }
}

fn sample_files(f: &Fixture) -> Vec<String> {
    [
        "samples/a.png",
        "samples/b.png",
        "samples/broken.jpg",
        "samples/sub/c.png",
    ]
    .iter()
    .map(|r| f.s(r))
    .collect()
}

fn jsonl_records(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn classify_jsonl_records_every_image_and_the_corrupt_one_as_a_failure() {
    let f = Fixture::new();
    let out = f.classify("jsonl", "out.jsonl", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 of 4 files failed"),
        "{}",
        stderr(&out)
    );
    let records = jsonl_records(&f.path("out.jsonl"));
    let files: Vec<&str> = records
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, sample_files(&f));
    for r in &records {
        if r["file"].as_str().unwrap().ends_with("broken.jpg") {
            assert!(r["error"].as_str().unwrap().contains("broken.jpg"), "{r}");
            assert!(r.get("top").is_none());
        } else {
            let top = r["top"].as_array().unwrap();
            assert_eq!(top.len(), 3);
            assert_eq!(r["logits"].as_array().unwrap().len(), 5);
            let p: Vec<f64> = top
                .iter()
                .map(|c| c["probability"].as_f64().unwrap())
                .collect();
            assert!(p.windows(2).all(|w| w[0] >= w[1]), "{p:?}");
            assert!(["wren", "robin", "finch", "tit", "owl"]
                .contains(&top[0]["label"].as_str().unwrap()));
        }
    }
}

#[test]
fn pipelined_classify_writes_what_one_image_at_a_time_writes() {
    let f = Fixture::new();
    for i in 0..9 {
        random_image(20 + i, 24, u64::from(10 + i))
            .save(f.path(&format!("samples/sub/x{i}.png")))
            .unwrap();
    }
    // A path that is not there: an unusable input among the files, recorded in its place.
    let missing = f.s("samples/missing.png");
    let serial = f.classify(
        "jsonl",
        "serial.jsonl",
        &["--batch-size", "1", "--decode-threads", "1", &missing],
    );
    let piped = f.classify(
        "jsonl",
        "piped.jsonl",
        &["--batch-size", "3", "--decode-threads", "4", &missing],
    );
    assert_eq!(serial.status.code(), Some(2), "{}", stderr(&serial));
    assert_eq!(piped.status.code(), Some(2), "{}", stderr(&piped));
    let records = jsonl_records(&f.path("serial.jsonl"));
    assert_eq!(records.len(), 14, "{records:?}");
    assert_eq!(
        fs::read_to_string(f.path("piped.jsonl")).unwrap(),
        fs::read_to_string(f.path("serial.jsonl")).unwrap()
    );
}

#[test]
fn classify_csv_has_a_header_and_one_row_per_file() {
    let f = Fixture::new();
    let out = f.classify("csv", "out.csv", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let mut reader = csv::Reader::from_path(f.path("out.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "file",
            "status",
            "label_1",
            "probability_1",
            "label_2",
            "probability_2",
            "label_3",
            "probability_3",
            "error"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let files: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(files, sample_files(&f));
    for row in &rows {
        if row[0].ends_with("broken.jpg") {
            assert_eq!(&row[1], "failed");
            assert!(row[8].contains("broken.jpg"));
        } else {
            assert_eq!(&row[1], "ok");
            let p: f64 = row[3].parse().unwrap();
            assert!(p > 0.0 && p <= 1.0);
            assert!(row[8].is_empty());
        }
    }
}

#[test]
fn classify_megadetector_writes_a_valid_batch_output_document() {
    let f = Fixture::new();
    let out = f.classify("megadetector", "md.json", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&fs::read_to_string(f.path("md.json")).unwrap()).unwrap();
    assert_eq!(doc["info"]["format_version"], "1.4");
    assert_eq!(doc["detection_categories"]["1"], "animal");
    assert_eq!(doc["classification_categories"]["4"], "owl");
    let images = doc["images"].as_array().unwrap();
    assert_eq!(images.len(), 4);
    for im in images {
        if im["file"].as_str().unwrap().ends_with("broken.jpg") {
            assert!(im["failure"].is_string());
            assert!(im["detections"].is_null());
            continue;
        }
        let det = &im["detections"][0];
        assert_eq!(det["category"], "1");
        assert!(det["conf"].is_f64());
        assert_eq!(det["bbox"], serde_json::json!([0.0, 0.0, 1.0, 1.0]));
        let classes = det["classifications"].as_array().unwrap();
        assert_eq!(classes.len(), 3);
        let id = classes[0][0].as_str().unwrap();
        assert!(doc["classification_categories"][id].is_string(), "{id}");
        assert!(classes[0][1].as_f64().unwrap() > 0.0);
        assert_eq!(im["classifications"], det["classifications"]);
    }
}

#[test]
fn resume_classifies_only_new_files_in_every_format() {
    for (format, output) in [
        ("jsonl", "r.jsonl"),
        ("csv", "r.csv"),
        ("megadetector", "r.json"),
    ] {
        let f = Fixture::new();
        assert_eq!(f.classify(format, output, &[]).status.code(), Some(2));
        let before = fs::read_to_string(f.path(output)).unwrap();
        random_image(22, 22, 9)
            .save(f.path("samples/sub/d.png"))
            .unwrap();
        let out = f.classify(format, output, &["--resume"]);
        // Only d.png ran, and it succeeded: the earlier failure is not redone.
        assert_eq!(out.status.code(), Some(0), "{format}: {}", stderr(&out));
        let after = fs::read_to_string(f.path(output)).unwrap();
        let files: Vec<String> = match format {
            "jsonl" => {
                assert!(
                    after.starts_with(&before),
                    "{format}: earlier records changed"
                );
                jsonl_records(&f.path(output))
                    .iter()
                    .map(|r| r["file"].as_str().unwrap().to_string())
                    .collect()
            }
            "csv" => {
                assert!(after.starts_with(&before), "{format}: earlier rows changed");
                let mut reader = csv::Reader::from_path(f.path(output)).unwrap();
                reader
                    .records()
                    .map(|r| r.unwrap()[0].to_string())
                    .collect()
            }
            _ => {
                let doc: Value = serde_json::from_str(&after).unwrap();
                doc["images"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|im| im["file"].as_str().unwrap().to_string())
                    .collect()
            }
        };
        let mut expected = sample_files(&f);
        expected.push(f.s("samples/sub/d.png"));
        assert_eq!(files, expected, "{format}");
    }
}

#[test]
fn resume_cuts_a_partial_last_line_and_redoes_that_file() {
    let f = Fixture::new();
    assert_eq!(f.classify("jsonl", "p.jsonl", &[]).status.code(), Some(2));
    let full = fs::read_to_string(f.path("p.jsonl")).unwrap();
    let lines: Vec<&str> = full.lines().collect();
    // As if the run had been killed while writing the last record.
    let killed = format!("{}\n{}", lines[..3].join("\n"), &lines[3][..10]);
    fs::write(f.path("p.jsonl"), killed).unwrap();
    let out = f.classify("jsonl", "p.jsonl", &["--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = jsonl_records(&f.path("p.jsonl"));
    assert_eq!(records.len(), 4);
    assert_eq!(
        records[3]["file"].as_str().unwrap(),
        f.s("samples/sub/c.png")
    );
}

#[test]
fn resume_without_an_output_file_is_an_error() {
    let f = Fixture::new();
    let out = xrvlm(&[
        "classify",
        &f.s("samples/a.png"),
        "--bundle",
        &f.s("bundle"),
        "--resume",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--resume needs --output"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn classify_to_stdout_prints_jsonl_and_exits_zero_when_all_succeed() {
    let f = Fixture::new();
    let out = xrvlm(&[
        "classify",
        &f.s("samples/a.png"),
        "--bundle",
        &f.s("bundle"),
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["file"].as_str().unwrap(), f.s("samples/a.png"));
    assert_eq!(line["top"].as_array().unwrap().len(), 5);
}

#[test]
fn info_prints_the_manifest_and_fails_on_a_tampered_bundle() {
    let f = Fixture::new();
    let out = xrvlm(&["info", &f.s("bundle")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tiny 1"), "{text}");
    assert!(
        text.contains("classes     5: wren, robin, finch, tit, owl"),
        "{text}"
    );
    assert!(text.contains("verified"), "{text}");
    let prompts = f.path("bundle/prompts.safetensors");
    let mut bytes = fs::read(&prompts).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    fs::write(&prompts, bytes).unwrap();
    let out = xrvlm(&["info", &f.s("bundle")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("prompts.safetensors: sha256 mismatch"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bench_reports_every_stage_and_peak_memory() {
    let f = Fixture::new();
    let out = xrvlm(&[
        "bench",
        &f.s("bundle"),
        "--frames",
        "3",
        "--warmup",
        "1",
        "--threads",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for stage in [
        "load: verify",
        "decode",
        "preprocess",
        "image model",
        "scoring",
        "total",
        "peak memory",
    ] {
        assert!(text.contains(stage), "{stage} missing from:\n{text}");
    }
}

/// Flips one bit in the middle of `path`.
fn flip_middle_byte(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

/// Issue 16: the image model is hashed when it is read to run, not when the bundle is opened.
/// A flipped byte in the model that runs is still refused, `info` still vouches for every
/// file, and the other precision's model is not read at all.
#[test]
fn a_flipped_byte_in_the_image_model_that_runs_is_refused() {
    let f = Fixture::new();
    flip_middle_byte(&f.path("bundle/visual.int8.onnx"));
    let bench = |precision: &str| {
        xrvlm(&[
            "bench",
            &f.s("bundle"),
            "--precision",
            precision,
            "--frames",
            "1",
            "--warmup",
            "0",
        ])
    };
    let refusal = "visual.int8.onnx: sha256 mismatch";
    let out = bench("int8");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(refusal), "{}", stderr(&out));
    let out = xrvlm(&["info", &f.s("bundle")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(refusal), "{}", stderr(&out));
    let out = bench("fp32");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Issue 16: f16 is offered where the auxiliary vector reports fp16 arithmetic, which qemu
/// reports right for the CPU it emulates (tract's own test, `/proc/cpuinfo`, shows the host's).
/// In the aarch64 leg of CI the same binary runs f16 as a Cortex-A76 (ARMv8.2 with FEAT_FP16)
/// and refuses it as a Cortex-A53 (ARMv8.0). Run natively, the binary agrees with the library.
#[test]
fn f16_runs_on_a_cortex_a76_and_is_refused_on_a_cortex_a53() {
    let f = Fixture::new();
    let args = [
        "bench",
        &f.s("bundle"),
        "--precision",
        "f16",
        "--frames",
        "1",
        "--warmup",
        "0",
    ];
    let run = |command: Option<std::process::Command>| {
        let mut command = command.unwrap_or_else(common::xrvlm);
        command.args(args).output().expect("the xrvlm binary runs")
    };
    let refusal = "--precision f16 needs a CPU with fp16 arithmetic";
    let expect = |out: &Output, runs: bool| {
        let text = stderr(out);
        if runs {
            assert_eq!(out.status.code(), Some(0), "{text}");
            assert!(String::from_utf8_lossy(&out.stdout).contains("precision f16"));
        } else {
            assert_eq!(out.status.code(), Some(1), "{text}");
            assert!(text.contains(refusal), "{text}");
        }
    };
    match common::xrvlm_as_cpu("cortex-a76") {
        Some(a76) => {
            expect(&run(Some(a76)), true);
            expect(&run(common::xrvlm_as_cpu("cortex-a53")), false);
        }
        None => expect(
            &run(None),
            xrvlm_runtime::engine::Precision::F16.is_available(),
        ),
    }
}
