use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::*;

/// Small frames keep the tests fast; two sizes check that each record carries its own.
fn config() -> SceneConfig {
    SceneConfig {
        world: 1,
        seed: 5,
        classes: 4,
        count: 10,
        night_fraction: 0.3,
        empty_fraction: 0.2,
        sequences: 2,
        sequence_length: 3,
        sizes: vec![(192, 108), (160, 120)],
    }
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).expect("written");
    serde_json::from_str(&text).expect("valid JSON")
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string in {v}"))
}

fn u64_of(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is an integer in {v}"))
}

fn numbers(v: &Value) -> Vec<f64> {
    let list = v.as_array().unwrap_or_else(|| panic!("a list: {v}"));
    list.iter().map(|n| n.as_f64().expect("a number")).collect()
}

/// Every file under `dir`, relative path to bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("inside").to_string_lossy();
                files.insert(rel.replace('\\', "/"), fs::read(&path).expect("readable"));
            }
        }
    }
    files
}

#[test]
fn same_arguments_write_byte_identical_files() {
    let (a, b) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let mut small = config();
    small.count = 4;
    small.sequences = 1;
    let summary = generate_scenes(&small, a.path()).expect("generated");
    assert_eq!(
        generate_scenes(&small, b.path()).expect("generated"),
        summary
    );
    let (ta, tb) = (tree(a.path()), tree(b.path()));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    assert!(ta == tb, "every file is byte-identical");
    assert_eq!(summary.images, 4 + 3);
    for name in [
        "images/00003.jpg",
        "sequences/s000/f02.jpg",
        "md.json",
        "coco.json",
    ] {
        assert!(ta.contains_key(name), "{name} written: {:?}", ta.keys());
    }
    assert!(
        generate_scenes(&small, a.path()).is_err(),
        "a full folder is refused"
    );
}

#[test]
fn ground_truth_files_have_the_documented_keys_and_agree() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = config();
    let summary = generate_scenes(&cfg, dir.path()).expect("generated");
    assert_eq!(summary.images, 10 + 2 * 3);
    let md = read_json(&dir.path().join("md.json"));
    let coco = read_json(&dir.path().join("coco.json"));
    let md_boxes = check_megadetector(&md, dir.path());
    let coco_boxes = check_coco(&coco, &cfg);
    assert_eq!(md_boxes.len(), summary.boxes);
    assert_eq!(coco_boxes.len(), summary.boxes);
    for ((file, norm), (coco_file, px, size)) in md_boxes.iter().zip(&coco_boxes) {
        assert_eq!(file, coco_file);
        for k in 0..4 {
            let scale = if k % 2 == 0 { size.0 } else { size.1 };
            assert!((norm[k] * scale - px[k]).abs() < 0.01, "{norm:?} vs {px:?}");
        }
    }
    let lines = fs::read_to_string(dir.path().join("scenes.jsonl")).expect("written");
    let records: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(records.len(), summary.boxes);
    for r in &records {
        let w = r["width_fraction"].as_f64().expect("number");
        assert!(w > 0.0 && w <= 1.0);
        assert!(r["night"].is_boolean() && r["species"].is_string());
        assert!(numbers(&r["bbox"]).len() == 4 && r["image_width"].is_u64());
    }
    let provenance = read_json(&dir.path().join("synth-scenes.json"));
    assert_eq!(provenance["species"].as_array().map(Vec::len), Some(4));
}

/// Checks `md.json`; returns (file, normalised box) of every detection in order.
fn check_megadetector(md: &Value, dir: &Path) -> Vec<(String, Vec<f64>)> {
    assert_eq!(str_of(&md["info"], "format_version"), "1.4");
    assert_eq!(str_of(&md["info"], "detector"), "xrvlm-synth ground truth");
    assert!(md["info"]["detection_completion_time"].is_string());
    let categories = md["detection_categories"].as_object().expect("a map");
    assert_eq!(categories["1"], "animal");
    assert_eq!(
        (categories["2"].as_str(), categories["3"].as_str()),
        (Some("person"), Some("vehicle"))
    );
    let species = md["classification_categories"].as_object().expect("a map");
    let mut boxes = Vec::new();
    let (mut empty, mut sequence_frames) = (0, 0);
    for image in md["images"].as_array().expect("a list") {
        let file = str_of(image, "file");
        assert!(!file.contains('\\') && dir.join(file).is_file(), "{file}");
        sequence_frames += usize::from(file.starts_with("sequences/"));
        let detections = image["detections"]
            .as_array()
            .expect("a list, even when empty");
        empty += usize::from(detections.is_empty());
        for d in detections {
            assert_eq!(str_of(d, "category"), "1");
            assert_eq!(d["conf"].as_f64(), Some(1.0));
            let b = numbers(&d["bbox"]);
            assert!(
                b.len() == 4 && b.iter().all(|v| (0.0..=1.0).contains(v)),
                "{b:?}"
            );
            assert!(
                b[2] > 0.0 && b[3] > 0.0 && b[0] + b[2] <= 1.0 + 1e-9 && b[1] + b[3] <= 1.0 + 1e-9
            );
            let class = d["classifications"][0][0].as_str().expect("a species id");
            assert!(species.contains_key(class));
            boxes.push((file.to_owned(), b));
        }
    }
    assert_eq!(sequence_frames, 6);
    assert!(empty >= 2, "every sequence starts empty");
    boxes
}

/// Checks `coco.json`; returns (file, pixel box, image size) of every box annotation in order.
fn check_coco(coco: &Value, cfg: &SceneConfig) -> Vec<(String, Vec<f64>, (f64, f64))> {
    assert!(coco["info"]["version"].is_string() && coco["info"]["description"].is_string());
    let names: BTreeMap<u64, &str> = coco["categories"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| (u64_of(c, "id"), str_of(c, "name")))
        .collect();
    let world = derive_species(cfg.world, cfg.classes);
    assert_eq!(names[&0], "empty");
    for s in &world {
        assert_eq!(
            names[&(s.index as u64 + 1)],
            s.name,
            "the ImageFolder class folder name"
        );
    }
    let mut images = BTreeMap::new();
    let mut sequences: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for image in coco["images"].as_array().expect("a list") {
        let (w, h) = (u64_of(image, "width"), u64_of(image, "height"));
        assert!(cfg.sizes.contains(&(w as u32, h as u32)), "{w}x{h}");
        let seq = str_of(image, "seq_id").to_owned();
        let (n, k) = (u64_of(image, "seq_num_frames"), u64_of(image, "frame_num"));
        assert!(k < n);
        assert!(image["location"].is_string() && image["datetime"].is_string());
        sequences.entry(seq).or_default().insert(k);
        let file = str_of(image, "file_name").to_owned();
        images.insert(
            str_of(image, "id").to_owned(),
            (file, (w as f64, h as f64), n),
        );
    }
    assert_eq!(images.len(), 16);
    assert_eq!(
        sequences.values().filter(|f| f.len() == 3).count(),
        2,
        "two bursts of three"
    );
    let mut annotated = BTreeSet::new();
    let mut boxes = Vec::new();
    for a in coco["annotations"].as_array().expect("a list") {
        assert!(a["id"].is_string());
        let image_id = str_of(a, "image_id");
        let (file, size, _) = &images[image_id];
        annotated.insert(image_id.to_owned());
        let category = u64_of(a, "category_id");
        assert!(names.contains_key(&category));
        match category {
            0 => assert!(a.get("bbox").is_none(), "an empty frame has no box"),
            _ => {
                let b = numbers(&a["bbox"]);
                assert!(
                    b[0] >= 0.0 && b[1] >= 0.0 && b[0] + b[2] <= size.0 && b[1] + b[3] <= size.1
                );
                boxes.push((file.clone(), b, *size));
            }
        }
    }
    assert_eq!(
        annotated.len(),
        images.len(),
        "every image has an annotation"
    );
    boxes
}

/// A change to a valid configuration.
type Change = fn(&mut SceneConfig);

#[test]
fn out_of_range_parameters_are_refused() {
    let cases: [(&str, Change); 9] = [
        ("classes", |c| c.classes = 0),
        ("count", |c| c.count = MAX_FRAMES + 1),
        ("count", |c| (c.count, c.sequences) = (0, 0)),
        ("sequences", |c| c.sequences = 1000),
        ("sequence-length", |c| c.sequence_length = 1),
        ("night-fraction", |c| c.night_fraction = 1.5),
        ("empty-fraction", |c| c.empty_fraction = -0.1),
        ("sizes", |c| c.sizes = vec![]),
        ("sizes", |c| c.sizes = vec![(1280, 720), (32, 720)]),
    ];
    assert!(config().validate().is_ok());
    for (name, change) in cases {
        let mut c = config();
        change(&mut c);
        match c.validate() {
            Err(SynthError::InvalidParameter { name: got, .. }) => assert_eq!(got, name),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn sizes_parse_from_the_command_line_form() {
    assert_eq!(parse_sizes("1280x720"), Some(vec![(1280, 720)]));
    assert_eq!(
        parse_sizes("1280x720, 2048X1440"),
        Some(vec![(1280, 720), (2048, 1440)])
    );
    assert_eq!(parse_sizes("1280"), None);
    assert_eq!(parse_sizes("1280x"), None);
    assert_eq!(parse_sizes(""), None);
}
