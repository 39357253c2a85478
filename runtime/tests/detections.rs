//! `xrvlm classify --detections md.json` end to end on the demo bundle: real camera-trap photos
//! (the Reconyx fixtures, one of them enlarged to 2048 × 1440) with hand-made detections (animal,
//! person, low confidence, a box at the edge, zero area, outside the image, a missing image, an
//! empty image, a detector's own failure). The MegaDetector output is read back by Rust and by
//! Python's `json` module (`fixtures/megadetector/check_batch_output.py`); the crops are checked
//! against the library's own crop rule and classifier; JSONL and CSV rows, `--resume`, and the
//! refusals of files that are not MegaDetector's format. And synthetic camera-trap scenes
//! (`xrvlm-synth`'s scene mode) whose ground-truth boxes are the detections.

use crate::common::{self, demo_bundle, fixture};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};
use xrvlm_runtime::bundle::Bundle;
use xrvlm_runtime::classifier::Classifier;
use xrvlm_runtime::crop::{CropRule, NormalizedBox};
use xrvlm_runtime::engine::{PlanOptions, Precision};
use xrvlm_runtime::image_io::load_rgb;

const TOP_K: usize = 3;

/// The Reconyx photos (`fixtures/reconyx/README.md`: CC-BY 4.0, INBO), 512 × 360.
const RECONYX: [&str; 3] = [
    "20210531082538-RCNX0031.JPG",
    "20210531082538-RCNX0032.JPG",
    "20210531082539-RCNX0033.JPG",
];

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// A folder `photos/` of camera-trap frames and a detection file for them.
struct Scene {
    dir: tempfile::TempDir,
    /// The detection file's document.
    detections: Value,
}

/// (image index, detection index) of every detection the scene's file has classified.
const CLASSIFIED: [(usize, usize); 4] = [(0, 0), (0, 3), (2, 1), (5, 0)];

impl Scene {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let photos = dir.path().join("photos");
        fs::create_dir_all(photos.join("more")).unwrap();
        for name in RECONYX {
            let short = name.split_once('-').unwrap().1;
            fs::copy(fixture("reconyx").join(name), photos.join(short)).unwrap();
        }
        fs::copy(photos.join("RCNX0032.JPG"), photos.join("more/copy.JPG")).unwrap();
        // A frame the size of the synthetic evaluation's largest (and the Reconyx originals).
        let small = load_rgb(&photos.join("RCNX0033.JPG")).unwrap();
        image::imageops::resize(&small, 2048, 1440, image::imageops::FilterType::Triangle)
            .save(photos.join("large.jpg"))
            .unwrap();
        let absolute = photos.join("RCNX0033.JPG").to_string_lossy().into_owned();
        let detections = json!({
            "info": {
                "format_version": "1.4",
                "detector": "md_v5a.0.0.pt",
                "detection_completion_time": "2024-05-01 10:00:00",
                "detector_metadata": {"typical_detection_threshold": 0.2},
            },
            "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
            "site_notes": {"deployment": "62c200a9", "kept": true},
            "images": [
                {"file": "photos/RCNX0031.JPG", "datetime": "2021:05:31 08:25:38", "detections": [
                    {"category": "1", "conf": 0.93, "bbox": [0.3, 0.35, 0.25, 0.3]},
                    {"category": "2", "conf": 0.81, "bbox": [0.05, 0.1, 0.1, 0.5], "note": "hiker"},
                    {"category": "1", "conf": 0.12, "bbox": [0.6, 0.6, 0.1, 0.1]},
                    // At the right and top edges: the crop moves inside the image.
                    {"category": "1", "conf": 0.55, "bbox": [0.85, 0.0, 0.15, 0.2]},
                ]},
                {"file": "photos/RCNX0032.JPG", "detections": []},
                {"file": absolute, "detections": [
                    {"category": "1", "conf": 0.7, "bbox": [0.4, 0.5, 0.0, 0.2]},
                    {"category": "1", "conf": 0.9, "bbox": [0.2, 0.4, 0.3, 0.3]},
                ]},
                {"file": "photos/missing.JPG", "detections": [
                    {"category": "1", "conf": 0.95, "bbox": [0.1, 0.1, 0.2, 0.2]},
                ]},
                {"file": "photos/more/copy.JPG", "detections": [
                    {"category": "1", "conf": 0.9, "bbox": [0.9, 0.1, 0.3, 0.3]},
                ]},
                {"file": "photos/large.jpg", "detections": [
                    {"category": "1", "conf": 0.88, "bbox": [0.45, 0.4, 0.1, 0.12]},
                ]},
                {"file": "photos/gone.JPG", "detections": null, "failure": "Failure image access"},
            ],
        });
        let scene = Self { dir, detections };
        scene.write_detections("md.json");
        scene
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write_detections(&self, rel: &str) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(
            path,
            serde_json::to_string_pretty(&self.detections).unwrap(),
        )
        .unwrap();
    }

    /// `xrvlm classify --detections DETECTIONS --bundle models/demo --output OUTPUT …`, two
    /// images per batch unless `extra` says otherwise.
    fn classify(&self, detections: &str, output: &str, extra: &[&str]) -> Output {
        let batch: &[&str] = match extra.contains(&"--batch-size") {
            true => &[],
            false => &["--batch-size", "2"],
        };
        common::xrvlm()
            .args(["classify", "--detections"])
            .arg(self.path(detections))
            .arg("--bundle")
            .arg(demo_bundle())
            .arg("--output")
            .arg(self.path(output))
            .args(["--top-k", "3", "--threads", "2"])
            .args(batch)
            .args(extra)
            .output()
            .expect("the xrvlm binary runs")
    }

    /// The scene classified into `out.json`, checked for its exit code and messages.
    fn classified(&self) -> Value {
        let out = self.classify("md.json", "out.json", &[]);
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(
            text.contains("RCNX0033.JPG: detection 0 not classified (the image's others were)"),
            "{text}"
        );
        assert!(text.contains("has no area"), "{text}");
        assert!(text.contains("2 of 7 images failed"), "{text}");
        assert!(
            text.contains("1 detections in images otherwise classified could not be"),
            "{text}"
        );
        read_json(&self.path("out.json"))
    }
}

/// The demo's class labels, in logit order.
fn demo_labels() -> Vec<String> {
    let bundle = Bundle::open(&demo_bundle()).unwrap();
    bundle.manifest().labels().map(str::to_string).collect()
}

/// `doc` without what a classification run adds: `classifications` on detections, and for
/// the images it names their `failure`, with the detections (null in a failed image, as the
/// format wants) taken back from `input`.
fn without_classifications(images: &Value, failed: &[usize], input: &Value) -> Value {
    let mut images = images.clone();
    for (i, image) in images.as_array_mut().unwrap().iter_mut().enumerate() {
        let fields = image.as_object_mut().unwrap();
        if failed.contains(&i) {
            assert!(
                fields.remove("failure").is_some(),
                "images[{i}] has no failure"
            );
            assert_eq!(fields["detections"], Value::Null, "images[{i}]");
            fields.insert("detections".into(), input[i]["detections"].clone());
        }
        if let Some(Value::Array(detections)) = fields.get_mut("detections") {
            for detection in detections {
                detection.as_object_mut().unwrap().remove("classifications");
            }
        }
    }
    images
}

#[test]
fn detections_get_classifications_and_the_document_keeps_every_key() {
    let scene = Scene::new();
    let doc = scene.classified();
    let input = &scene.detections;
    // The detection file's keys, kept; the run's, added.
    assert_eq!(doc["site_notes"], input["site_notes"]);
    assert_eq!(doc["detection_categories"], input["detection_categories"]);
    for key in ["detector", "detection_completion_time", "detector_metadata"] {
        assert_eq!(doc["info"][key], input["info"][key], "info.{key}");
    }
    assert_eq!(doc["info"]["format_version"], "1.4");
    assert_eq!(doc["info"]["classifier"], "xrvlm demo 1");
    assert!(doc["info"]["classification_completion_time"].is_string());
    assert_eq!(
        doc["info"]["classifier_metadata"]["min_detection_conf"],
        0.2
    );
    let labels = demo_labels();
    let categories = doc["classification_categories"].as_object().unwrap();
    // The classes, then `unknown`: the demo bundle has an open-world rule.
    assert_eq!(categories.len(), labels.len() + 1);
    for (i, label) in labels.iter().enumerate() {
        assert_eq!(categories[&i.to_string()], label.as_str());
    }
    assert_eq!(categories[&labels.len().to_string()], "unknown");
    assert_eq!(
        doc["classification_category_descriptions"]["0"],
        "bartail finch"
    );
    // The images: in order, untouched but for classifications and two failures.
    assert_eq!(
        without_classifications(&doc["images"], &[3, 4], &input["images"]),
        input["images"]
    );
    let images = doc["images"].as_array().unwrap();
    for (i, image) in images.iter().enumerate() {
        let Some(detections) = image["detections"].as_array() else {
            continue;
        };
        for (j, detection) in detections.iter().enumerate() {
            let expected = CLASSIFIED.contains(&(i, j));
            assert_eq!(
                detection.get("classifications").is_some(),
                expected,
                "images[{i}].detections[{j}]"
            );
            if expected {
                let pairs = detection["classifications"].as_array().unwrap();
                // The top k, after `unknown` for a crop the open-world rule rejects.
                let unknown = pairs[0][0] == labels.len().to_string().as_str();
                assert_eq!(pairs.len(), TOP_K + usize::from(unknown));
                let p: Vec<f64> = pairs.iter().map(|c| c[1].as_f64().unwrap()).collect();
                assert!(p.windows(2).all(|w| w[0] >= w[1]), "{p:?}");
                for pair in pairs {
                    assert!(categories.contains_key(pair[0].as_str().unwrap()));
                }
            }
        }
    }
    let missing = images[3]["failure"].as_str().unwrap();
    assert!(
        missing.contains("not found") && missing.contains("missing.JPG"),
        "{missing}"
    );
    let outside = images[4]["failure"].as_str().unwrap();
    assert!(
        outside.contains("no detection could be classified: detection 0: box")
            && outside.contains("outside the image"),
        "{outside}"
    );
    assert!(images[1].get("failure").is_none() && images[0].get("failure").is_none());
    assert_eq!(images[6]["failure"], "Failure image access");
}

/// The crops the binary classified are the library's crop rule applied to the frames, the
/// 2048 × 1440 one included, classified by the one frame path.
#[test]
fn each_detection_is_classified_as_its_crop() {
    let scene = Scene::new();
    let doc = scene.classified();
    let bundle = Bundle::open(&demo_bundle()).unwrap();
    let options = PlanOptions {
        precision: Precision::Fp32,
        threads: std::num::NonZeroUsize::new(2).unwrap(),
    };
    let classifier = Classifier::new(bundle, options).unwrap();
    for (i, j) in CLASSIFIED {
        let image = &scene.detections["images"][i];
        let file = image["file"].as_str().unwrap();
        let frame = load_rgb(&scene.path(".").join(file)).unwrap();
        let b: Vec<f64> = image["detections"][j]["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let bbox = NormalizedBox::new(b[0], b[1], b[2], b[3]).unwrap();
        let expected = classifier
            .classify(&CropRule::DETECTION.cut(&frame, bbox), TOP_K)
            .unwrap();
        let written = doc["images"][i]["detections"][j]["classifications"]
            .as_array()
            .unwrap();
        // A crop the open-world rule rejects lists `unknown` (the id after the classes) first.
        let unknown_id = classifier.bundle().manifest().classes.len().to_string();
        let guesses = match expected.is_unknown() {
            true => {
                assert_eq!(
                    written[0][0],
                    unknown_id.as_str(),
                    "images[{i}] detection {j}"
                );
                &written[1..]
            }
            false => &written[..],
        };
        assert_eq!(guesses.len(), expected.top.len());
        for (pair, class) in guesses.iter().zip(&expected.top) {
            assert_eq!(
                pair[0],
                class.index.to_string(),
                "images[{i}] detection {j}"
            );
            let p = pair[1].as_f64().unwrap();
            assert!(
                (p - f64::from(class.probability)).abs() < 1e-4,
                "images[{i}] detection {j}: {p} vs {}",
                class.probability
            );
        }
    }
}

/// The output as Python tools read it: every key and type the format documents.
#[test]
fn python_reads_the_output_with_every_documented_key_and_type() {
    let scene = Scene::new();
    scene.classified();
    let script = fixture("megadetector/check_batch_output.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(scene.path("out.json"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "python3 could not be started ({e}): this test reads the MegaDetector output \
                 with Python's json module; install Python 3 (Debian: apt-get install python3)"
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", stderr(&out));
    assert_eq!(
        stdout.trim(),
        format!("ok: 7 images, {} classified detections", CLASSIFIED.len())
    );
}

/// Synthetic scenes with their ground truth as the detection file: every bird is classified,
/// the output keeps the generator's keys and Python reads it with every documented key.
#[test]
fn synthetic_scenes_ground_truth_boxes_are_classified_and_read_back_by_python() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("scenes");
    let config = xrvlm_synth::SceneConfig {
        world: 1,
        seed: 17,
        classes: 12,
        count: 6,
        night_fraction: 0.3,
        empty_fraction: 0.2,
        sequences: 0,
        sequence_length: 2,
        sizes: vec![(640, 360), (480, 480)],
    };
    xrvlm_synth::generate_scenes(&config, &data).unwrap();
    let truth = read_json(&data.join("md.json"));
    let boxes: usize = truth["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|im| im["detections"].as_array().unwrap().len())
        .sum();
    assert!(boxes >= 3, "the seed draws birds: {boxes}");
    let out = dir.path().join("classified.json");
    let run = common::xrvlm()
        .args(["classify", "--detections"])
        .arg(data.join("md.json"))
        .arg("--bundle")
        .arg(demo_bundle())
        .arg("--output")
        .arg(&out)
        .args(["--top-k", "2", "--threads", "2", "-q"])
        .output()
        .expect("the xrvlm binary runs");
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let doc = read_json(&out);
    let mut classified = 0;
    for (image, truth) in doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .zip(truth["images"].as_array().unwrap())
    {
        assert_eq!(image["file"], truth["file"]);
        let detections = image["detections"].as_array().unwrap();
        assert_eq!(
            detections.len(),
            truth["detections"].as_array().unwrap().len()
        );
        for (d, t) in detections
            .iter()
            .zip(truth["detections"].as_array().unwrap())
        {
            assert_eq!(d["bbox"], t["bbox"]);
            // The top 2, after `unknown` (id 13) for a crop the open-world rule rejects.
            let classifications = d["classifications"].as_array().unwrap();
            let unknown = classifications[0][0] == "13";
            assert_eq!(classifications.len(), 2 + usize::from(unknown));
            classified += 1;
        }
    }
    assert_eq!(classified, boxes);
    let script = fixture("megadetector/check_batch_output.py");
    let check = std::process::Command::new("python3")
        .arg(&script)
        .arg(&out)
        .output()
        .expect("python3 runs (see the Reconyx test)");
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{stdout}{}", stderr(&check));
    assert_eq!(
        stdout.trim(),
        format!("ok: 6 images, {boxes} classified detections")
    );
}

#[test]
fn pipelined_crops_write_what_one_image_at_a_time_writes() {
    // Images read, cut and preprocessed on four threads, three images per batch, against one
    // thread and one image at a time: the same rows, failures and skipped boxes in the same
    // order.
    let scene = Scene::new();
    let serial = scene.classify(
        "md.json",
        "serial.jsonl",
        &[
            "--format",
            "jsonl",
            "--batch-size",
            "1",
            "--decode-threads",
            "1",
        ],
    );
    let piped = scene.classify(
        "md.json",
        "piped.jsonl",
        &[
            "--format",
            "jsonl",
            "--batch-size",
            "3",
            "--decode-threads",
            "4",
        ],
    );
    assert_eq!(serial.status.code(), Some(2), "{}", stderr(&serial));
    assert_eq!(piped.status.code(), Some(2), "{}", stderr(&piped));
    assert_eq!(stderr(&piped), stderr(&serial));
    let rows = fs::read_to_string(scene.path("serial.jsonl")).unwrap();
    assert_eq!(rows.lines().count(), 7, "{rows}");
    assert_eq!(fs::read_to_string(scene.path("piped.jsonl")).unwrap(), rows);
}

#[test]
fn jsonl_and_csv_have_a_row_per_detection_with_what_scoring_needs() {
    let scene = Scene::new();
    // The detection file elsewhere than its images: --image-dir names their folder.
    scene.write_detections("detector/md.json");
    let image_dir = scene.path(".").to_string_lossy().into_owned();
    let out = scene.classify(
        "detector/md.json",
        "rows.jsonl",
        &["--format", "jsonl", "--image-dir", &image_dir],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let rows: Vec<Value> = fs::read_to_string(scene.path("rows.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let keys: Vec<(String, Option<u64>, bool)> = rows
        .iter()
        .map(|r| {
            (
                r["file"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string(),
                r["detection"].as_u64(),
                r.get("error").is_some(),
            )
        })
        .collect();
    let expected = [
        ("RCNX0031.JPG", Some(0), false),
        ("RCNX0031.JPG", Some(3), false),
        ("RCNX0033.JPG", Some(0), true),
        ("RCNX0033.JPG", Some(1), false),
        ("missing.JPG", None, true),
        ("copy.JPG", None, true),
        ("large.jpg", Some(0), false),
    ]
    .map(|(f, d, e)| (f.to_string(), d, e));
    assert_eq!(keys, expected);
    let labels = demo_labels();
    for row in rows.iter().filter(|r| r.get("error").is_none()) {
        let file = row["file"].as_str().unwrap();
        let image = scene.detections["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|im| im["file"] == file)
            .unwrap();
        let detection = &image["detections"][row["detection"].as_u64().unwrap() as usize];
        assert_eq!(row["bbox"], detection["bbox"]);
        assert_eq!(row["conf"], detection["conf"]);
        let top = row["top"].as_array().unwrap();
        assert_eq!(top.len(), TOP_K);
        assert!(labels.contains(&top[0]["label"].as_str().unwrap().to_string()));
        assert_eq!(row["logits"].as_array().unwrap().len(), labels.len());
    }

    let out = scene.classify(
        "detector/md.json",
        "rows.csv",
        &["--format", "csv", "--image-dir", &image_dir],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let mut reader = csv::Reader::from_path(scene.path("rows.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header[..9],
        [
            "file",
            "detection",
            "bbox_x",
            "bbox_y",
            "bbox_width",
            "bbox_height",
            "conf",
            "status",
            "label_1"
        ]
    );
    let csv_rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(csv_rows.len(), rows.len());
    for (csv_row, json_row) in csv_rows.iter().zip(&rows) {
        assert_eq!(&csv_row[0], json_row["file"].as_str().unwrap());
        match json_row.get("error") {
            Some(_) => assert_eq!(&csv_row[7], "failed"),
            None => {
                assert_eq!(&csv_row[1], json_row["detection"].to_string());
                assert_eq!(&csv_row[8], json_row["top"][0]["label"].as_str().unwrap());
            }
        }
    }
}

#[test]
fn resume_keeps_the_images_done_and_classifies_the_rest() {
    let scene = Scene::new();
    let full = scene.classified();
    // As if the run had been killed after saving three images; the first is marked to show
    // that it is kept, not classified again.
    let mut partial = full.clone();
    partial["images"].as_array_mut().unwrap().truncate(3);
    partial["images"][0]["kept_from_the_first_run"] = json!(true);
    fs::write(scene.path("out.json"), partial.to_string()).unwrap();
    let out = scene.classify("md.json", "out.json", &["--resume"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2 of 4 images failed"),
        "{}",
        stderr(&out)
    );
    let mut resumed = read_json(&scene.path("out.json"));
    assert_eq!(resumed["images"][0]["kept_from_the_first_run"], true);
    resumed["images"][0]
        .as_object_mut()
        .unwrap()
        .remove("kept_from_the_first_run");
    let mut expected = full;
    for doc in [&mut resumed, &mut expected] {
        doc["info"]
            .as_object_mut()
            .unwrap()
            .remove("classification_completion_time");
    }
    assert_eq!(resumed, expected);
}

#[test]
fn files_that_are_not_megadetector_output_are_refused_with_where_and_what() {
    let scene = Scene::new();
    let mut cases = Vec::new();
    let mut bad_box = scene.detections.clone();
    bad_box["images"][2]["detections"][1]["bbox"] = json!([0.2, 0.4]);
    cases.push((
        bad_box,
        "images[2].detections[1].bbox: expected 4 numbers [x, y, width, height] (fractions of \
         the image), found a list of 2 [0.2,0.4]",
    ));
    let mut no_images = scene.detections.clone();
    no_images.as_object_mut().unwrap().remove("images");
    cases.push((
        no_images,
        "images: expected a list of images, found nothing",
    ));
    let mut wrong_type = scene.detections.clone();
    wrong_type["images"][0]["detections"][0]["conf"] = json!("0.93");
    cases.push((
        wrong_type,
        "images[0].detections[0].conf: expected a confidence (a number), found a string \"0.93\"",
    ));
    for (doc, expected) in cases {
        fs::write(scene.path("bad.json"), doc.to_string()).unwrap();
        let out = scene.classify("bad.json", "out.json", &[]);
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("bad.json: "), "{text}");
        assert!(text.contains(expected), "{text}\n  lacks: {expected}");
        assert!(!scene.path("out.json").exists(), "an output was written");
    }
    fs::write(scene.path("broken.json"), "{\"images\": [").unwrap();
    let out = scene.classify("broken.json", "out.json", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("broken.json is not JSON"),
        "{}",
        stderr(&out)
    );
    // Writing over the detection file would lose it if the run were killed.
    let out = scene.classify("md.json", "md.json", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is the detection file itself"),
        "{}",
        stderr(&out)
    );
}
