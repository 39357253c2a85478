//! Unknown species (issue 18): the demo bundle's `[open_world]` rule on real camera-trap photos
//! through `xrvlm classify`, a bundle without the section (as before it existed), and the rule
//! in the frame path and in classify's three output formats.

use crate::common;

use std::fs;
use std::num::NonZeroUsize;
use std::path::Path;
use std::process::Output;

use common::bundle_writer::{random_image, write_bundle, Spec};
use serde_json::Value;
use xrvlm_runtime::bundle::manifest::{Manifest, OpenWorld, MANIFEST_FILE};
use xrvlm_runtime::bundle::Bundle;
use xrvlm_runtime::classifier::Classifier;
use xrvlm_runtime::engine::{PlanOptions, Precision};
use xrvlm_runtime::open_world::ScoreKind;

fn classify(args: &[&str]) -> Output {
    let out = common::xrvlm()
        .arg("classify")
        .args(args)
        .output()
        .expect("the xrvlm binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn jsonl(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The three Reconyx photos of a muskrat and coypu study (`fixtures/reconyx/README.md`) are
/// nothing like the demo's synthetic birds: the demo bundle must answer each `unknown` or
/// `blank`, never a bird, at both precisions.
#[test]
fn demo_bundle_answers_real_reconyx_photos_unknown_or_blank_never_a_bird() {
    let demo = common::demo_bundle();
    let manifest = Manifest::load(&demo.join(MANIFEST_FILE)).unwrap();
    let section = manifest
        .open_world
        .expect("the demo bundle has an [open_world] section");
    let blank = section.blank_label.expect("the demo has a blank class");
    let dir = tempfile::tempdir().unwrap();
    for precision in ["int8", "fp32"] {
        let out = dir.path().join(format!("{precision}.jsonl"));
        classify(&[
            &common::fixture("reconyx").to_string_lossy(),
            "--bundle",
            &demo.to_string_lossy(),
            "--precision",
            precision,
            "--format",
            "jsonl",
            "-o",
            &out.to_string_lossy(),
            "--threads",
            "1",
        ]);
        let records = jsonl(&out);
        assert_eq!(records.len(), 3, "{records:?}");
        for r in &records {
            let top = r["top"][0]["label"].as_str().unwrap();
            let unknown = r["unknown"].as_bool().expect("an unknown flag");
            let score = r["open_world_score"].as_f64().unwrap();
            assert!(
                unknown || top == blank,
                "{precision}: {} answered {top} (score {score}, threshold {})",
                r["file"],
                section.threshold
            );
        }
    }
}

/// A small bundle and three images to classify.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        write_bundle(&dir.path().join("bundle"), &Spec::small(), 41);
        fs::create_dir(dir.path().join("images")).unwrap();
        for seed in 0..3 {
            let path = dir.path().join(format!("images/{seed}.png"));
            random_image(24, 20, seed).save(path).unwrap();
        }
        Self { dir }
    }

    fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).to_string_lossy().into_owned()
    }

    /// Gives the bundle an `[open_world]` section with `threshold` on `score`.
    fn set_open_world(&self, score: ScoreKind, threshold: f64, blank_label: Option<&str>) {
        let path = self.dir.path().join("bundle").join(MANIFEST_FILE);
        let mut manifest = Manifest::load(&path).unwrap();
        manifest.open_world = Some(OpenWorld {
            score,
            threshold,
            target_recall: 0.95,
            recall: 0.95,
            calibration_set: "tests".into(),
            calibration_images: 20,
            blank_label: blank_label.map(str::to_string),
        });
        fs::write(path, manifest.to_toml().unwrap()).unwrap();
    }

    fn classifier(&self) -> Classifier {
        let bundle = Bundle::open(Path::new(&self.path("bundle"))).unwrap();
        let options = PlanOptions {
            precision: Precision::Fp32,
            threads: NonZeroUsize::MIN,
        };
        Classifier::new(bundle, options).unwrap()
    }

    fn classify(&self, format: &str, output: &str) -> String {
        let out = self.path(output);
        classify(&[
            &self.path("images"),
            "--bundle",
            &self.path("bundle"),
            "--format",
            format,
            "-o",
            &out,
            "--top-k",
            "2",
            "--threads",
            "1",
        ]);
        out
    }

    fn pixels(&self) -> Vec<f32> {
        let classifier = self.classifier();
        (0..3)
            .flat_map(|i| {
                let path = self.dir.path().join(format!("images/{i}.png"));
                classifier.load_image(&path).unwrap()
            })
            .collect()
    }
}

#[test]
fn a_bundle_without_open_world_rejects_nothing_and_writes_as_before() {
    let f = Fixture::new();
    let classifier = f.classifier();
    assert!(classifier.open_world().is_none());
    for p in classifier.classify_preprocessed(&f.pixels(), 2).unwrap() {
        assert_eq!(p.open_world, None);
        assert!(!p.is_unknown());
    }
    let records = jsonl(Path::new(&f.classify("jsonl", "out.jsonl")));
    assert!(
        records.iter().all(|r| r.get("unknown").is_none()),
        "{records:?}"
    );
    let mut reader = csv::Reader::from_path(f.classify("csv", "out.csv")).unwrap();
    let header: Vec<&str> = reader.headers().unwrap().iter().collect::<Vec<_>>();
    assert_eq!(
        header,
        [
            "file",
            "status",
            "label_1",
            "probability_1",
            "label_2",
            "probability_2",
            "error"
        ]
    );
    let doc: Value =
        serde_json::from_str(&fs::read_to_string(f.classify("megadetector", "md.json")).unwrap())
            .unwrap();
    assert_eq!(
        doc["classification_categories"].as_object().unwrap().len(),
        5
    );
}

#[test]
fn the_verdict_is_the_bundles_score_against_its_threshold() {
    let f = Fixture::new();
    f.set_open_world(ScoreKind::PartPrompt, 0.0, None);
    let classifier = f.classifier();
    let scored = classifier.classify_with_candidates(&f.pixels(), 2).unwrap();
    // Put the threshold between the images' part-prompt scores: the lower ones are unknown.
    let mut scores: Vec<f32> = scored
        .iter()
        .map(|f| f.candidates.get(ScoreKind::PartPrompt))
        .collect();
    scores.sort_by(f32::total_cmp);
    assert!(scores[0] < scores[2], "{scores:?}");
    let threshold = f64::from(scores[2]);
    f.set_open_world(ScoreKind::PartPrompt, threshold, None);
    let classifier = f.classifier();
    for frame in classifier.classify_with_candidates(&f.pixels(), 2).unwrap() {
        let verdict = frame.prediction.open_world.expect("a verdict");
        assert_eq!(verdict.score, frame.candidates.get(ScoreKind::PartPrompt));
        assert_eq!(verdict.unknown, f64::from(verdict.score) < threshold);
    }
}

#[test]
fn a_frame_past_the_threshold_is_unknown_in_every_format_with_its_guesses_kept() {
    let f = Fixture::new();
    // Every logit is far below 1e6: every frame is unknown. "owl" is the blank class, so a
    // frame whose top class is owl would stay owl.
    f.set_open_world(ScoreKind::MaxLogit, 1e6, Some("owl"));
    let classifier = f.classifier();
    let predictions = classifier.classify_preprocessed(&f.pixels(), 2).unwrap();
    let records = jsonl(Path::new(&f.classify("jsonl", "out.jsonl")));
    assert_eq!(records.len(), 3);
    for (r, p) in records.iter().zip(&predictions) {
        let top = r["top"].as_array().unwrap();
        assert_eq!(top.len(), 2, "the guesses are kept");
        let is_blank = top[0]["label"] == "owl";
        assert_eq!(r["unknown"], !is_blank, "{r}");
        assert_eq!(p.is_unknown(), !is_blank);
        assert!(r["open_world_score"].as_f64().unwrap() < 1e6);
    }
    let unknown_frames = records.iter().filter(|r| r["unknown"] == true).count();
    assert!(unknown_frames > 0, "{records:?}");

    let mut reader = csv::Reader::from_path(f.classify("csv", "out.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[6..], ["unknown", "open_world_score", "error"]);
    for (row, r) in reader.records().map(Result::unwrap).zip(&records) {
        assert_eq!(&row[6], r["unknown"].to_string());
    }

    let doc: Value =
        serde_json::from_str(&fs::read_to_string(f.classify("megadetector", "md.json")).unwrap())
            .unwrap();
    assert_eq!(doc["classification_categories"]["5"], "unknown");
    let metadata = &doc["info"]["classifier_metadata"]["open_world"];
    assert_eq!(metadata["score"], "max_logit");
    for (image, r) in doc["images"].as_array().unwrap().iter().zip(&records) {
        let classifications = image["classifications"].as_array().unwrap();
        let first = classifications[0][0].as_str().unwrap();
        if r["unknown"] == true {
            assert_eq!(first, "5");
            assert_eq!(classifications.len(), 3, "unknown, then the two guesses");
        } else {
            assert_eq!(classifications.len(), 2);
        }
    }
}
