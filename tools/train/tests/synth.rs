//! `xrvlm-train synth` and `histogram-baseline` through the real binary: the synthetic world is
//! reproducible byte for byte, its species depend on the world seed only, its captions and
//! metadata are consistent with the files, and the colour-histogram baseline reports a fraction.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use xrvlm_train::synth::random::keyed_rng;
use xrvlm_train::synth::scene::{render_frame, Framing};
use xrvlm_train::synth::species::{derive_species, MIN_ATTRIBUTE_DIFFERENCES};

/// Small, fast arguments: 3 species × 4 images of 32 px, with blank and night frames.
const SMALL: &[&str] = &[
    "--classes",
    "3",
    "--per-class",
    "4",
    "--size",
    "32",
    "--night-fraction",
    "0.5",
    "--empty-fraction",
    "0.25",
];

fn synth(out: &Path, seed: u64, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xrvlm-train"))
        .arg("synth")
        .arg("--out")
        .arg(out)
        .args(["--seed", &seed.to_string()])
        .args(extra)
        .output()
        .expect("running xrvlm-train")
}

fn synth_ok(out: &Path, seed: u64, extra: &[&str]) {
    let o = synth(out, seed, extra);
    assert!(
        o.status.success(),
        "synth failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Every file under `root`, by relative path, with its bytes.
fn all_files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn same_arguments_twice_give_byte_identical_output() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    synth_ok(&a, 7, SMALL);
    synth_ok(&b, 7, SMALL);
    let (fa, fb) = (all_files(&a), all_files(&b));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (path, bytes) in &fa {
        assert!(&fb[path] == bytes, "{} differs", path.display());
    }
    let pngs = fa
        .keys()
        .filter(|p| p.extension().is_some_and(|e| e == "png"));
    assert_eq!(pngs.count(), 3 * 4 + 3, "12 bird frames and 3 blank frames");
}

#[test]
fn different_seeds_draw_different_images_of_the_same_species() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    synth_ok(&a, 1, SMALL);
    synth_ok(&b, 2, SMALL);
    let (fa, fb) = (all_files(&a), all_files(&b));
    assert_eq!(
        fa[Path::new("species.json")],
        fb[Path::new("species.json")],
        "the world, not the seed, defines the species"
    );
    let pngs: Vec<_> = fa
        .keys()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    let differing = pngs.iter().filter(|p| fa[**p] != fb[**p]).count();
    assert_eq!(differing, pngs.len(), "every image differs between seeds");
    assert_ne!(fa[Path::new("synth.json")], fb[Path::new("synth.json")]);
}

#[test]
fn different_worlds_have_different_species() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    synth_ok(&a, 1, &[SMALL, &["--world", "1"]].concat());
    synth_ok(&b, 1, &[SMALL, &["--world", "2"]].concat());
    let (sa, sb) = (
        read_json(&a.join("species.json")),
        read_json(&b.join("species.json")),
    );
    assert_ne!(sa["species"], sb["species"]);
    assert_eq!(sa["world"], 1);
    assert_eq!(sb["world"], 2);
}

#[test]
fn captions_parse_and_name_existing_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("d");
    synth_ok(&out, 3, &[SMALL, &["--name-fraction", "0.5"]].concat());
    let species = read_json(&out.join("species.json"));
    let names: Vec<&str> = species["species"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let text = fs::read_to_string(out.join("captions.jsonl")).unwrap();
    let pngs = all_files(&out)
        .keys()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .count();
    assert_eq!(text.lines().count(), pngs, "one caption per image");
    let (mut nights, mut blanks) = (0, 0);
    for line in text.lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        let image = r["image"].as_str().unwrap();
        let folder = image.split('/').next().unwrap();
        let caption = r["caption"].as_str().unwrap();
        let empty = r["empty"].as_bool().unwrap();
        let night = r["night"].as_bool().unwrap();
        assert!(out.join(image).is_file(), "{image} exists");
        assert_eq!(r["species"], folder);
        assert_eq!(empty, folder == "blank");
        assert!(empty || names.contains(&folder), "{folder} is a species");
        assert!(
            caption
                .chars()
                .all(|c| c.is_ascii_lowercase() || " ,.".contains(c)),
            "small vocabulary: {caption:?}"
        );
        assert!(caption.ends_with('.'));
        if empty {
            assert!(
                caption.contains("empty") || caption.contains("no bird"),
                "{caption}"
            );
        }
        let img = image::open(out.join(image)).unwrap().to_rgb8();
        let grey = img.pixels().all(|p| p[0] == p[1] && p[1] == p[2]);
        assert_eq!(grey, night, "{image}: night frames are infrared grey");
        if night {
            let mut words = caption.split(|c: char| !c.is_ascii_lowercase());
            assert!(
                !words.any(|w| ["red", "orange", "yellow", "blue", "brown"].contains(&w)),
                "a night caption names a colour: {caption}"
            );
        }
        nights += usize::from(night);
        blanks += usize::from(empty);
    }
    assert_eq!(blanks, 3);
    assert!(nights > 0 && nights < pngs);
}

#[test]
fn species_differ_pairwise_in_at_least_two_attributes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("d");
    synth_ok(
        &out,
        1,
        &["--classes", "12", "--per-class", "1", "--size", "32"],
    );
    let species = read_json(&out.join("species.json"));
    let list = species["species"].as_array().unwrap();
    assert_eq!(list.len(), 12);
    let classes = species["classes"].as_array().unwrap();
    for (i, a) in list.iter().enumerate() {
        assert_eq!(classes[a["label"].as_u64().unwrap() as usize], a["name"]);
        assert!(a["description"]
            .as_str()
            .unwrap()
            .starts_with("a bird with "));
        for b in &list[..i] {
            let (aa, ba) = (
                a["attributes"].as_object().unwrap(),
                b["attributes"].as_object().unwrap(),
            );
            let differing = aa.iter().filter(|(k, v)| ba[*k] != **v).count();
            assert!(differing >= 2, "{} vs {}", a["name"], b["name"]);
        }
    }
    let world = derive_species(1, 100);
    for (i, a) in world.iter().enumerate() {
        for b in &world[..i] {
            assert!(a.attributes.differences(&b.attributes) >= MIN_ATTRIBUTE_DIFFERENCES);
        }
    }
}

#[test]
fn histogram_baseline_reports_top1_between_zero_and_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = (tmp.path().join("train"), tmp.path().join("test"));
    synth_ok(&train, 1, SMALL);
    synth_ok(&test, 2, SMALL);
    let json = tmp.path().join("baseline.json");
    let o = Command::new(env!("CARGO_BIN_EXE_xrvlm-train"))
        .arg("histogram-baseline")
        .arg("--train")
        .arg(&train)
        .arg("--test")
        .arg(&test)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("top-1"));
    let report = read_json(&json);
    let top1 = report["top1"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&top1), "top-1 {top1}");
    assert_eq!(report["classes"], 4, "3 species and blank");
    assert_eq!(report["test_images"], 15);
}

#[test]
fn bad_parameters_and_non_empty_output_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("d");
    let o = synth(
        &out,
        1,
        &["--classes", "2", "--per-class", "1", "--size", "16"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--size 16"));
    let o = synth(
        &out,
        1,
        &[
            "--classes",
            "2",
            "--per-class",
            "1",
            "--night-fraction",
            "1.5",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("old.txt"), "x").unwrap();
    let o = synth(
        &out,
        1,
        &["--classes", "2", "--per-class", "1", "--size", "32"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not empty"));
}

#[test]
fn frames_render_at_the_smallest_and_largest_sizes() {
    let species = derive_species(1, 1);
    for size in [32u32, 512] {
        let mut rng = keyed_rng(0, 1, 2, u64::from(size));
        let frame = render_frame(
            &mut rng,
            Some(&species[0].attributes),
            size,
            false,
            Framing::Scene,
        );
        assert_eq!(frame.image.dimensions(), (size, size));
        assert!(frame.bird.is_some());
    }
}

/// Mean bird area (fraction of the frame) and the least fraction of a bird inside the frame, over
/// the same 60 draws in one framing.
fn framing_stats(framing: Framing) -> (f32, f32) {
    let species = derive_species(1, 3);
    let (mut area, mut least) = (0.0, 1.0f32);
    for i in 0..60u64 {
        let mut rng = keyed_rng(0, 7, 0, i);
        let attrs = &species[(i % 3) as usize].attributes;
        let frame = render_frame(&mut rng, Some(attrs), 96, i % 2 == 0, framing);
        let bird = frame.bird.expect("a bird frame");
        area += bird.area / 60.0;
        least = least.min(bird.in_frame);
    }
    (area, least)
}

#[test]
fn crop_framing_shows_a_larger_bird_never_at_the_edge() {
    let (scene_area, scene_least) = framing_stats(Framing::Scene);
    let (crop_area, crop_least) = framing_stats(Framing::Crop);
    assert!(
        scene_least < 0.8,
        "some whole-scene birds stand partly out of the frame ({scene_least})"
    );
    // A wing or tail tip may touch the crop's edge, as with a tight detector box.
    assert!(
        crop_least >= 0.95,
        "a detector crop holds the bird ({crop_least})"
    );
    assert!(
        crop_area > 1.8 * scene_area,
        "crop {crop_area:.3} vs scene {scene_area:.3} of the frame"
    );
}

#[test]
fn the_framing_is_a_flag_and_recorded_in_synth_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("crop");
    synth_ok(
        &out,
        4,
        &[
            "--classes",
            "2",
            "--per-class",
            "2",
            "--size",
            "32",
            "--framing",
            "crop",
        ],
    );
    let provenance = read_json(&out.join("synth.json"));
    assert_eq!(provenance["parameters"]["framing"], "crop");
    let bad = synth(
        &dir.path().join("bad"),
        4,
        &["--classes", "2", "--per-class", "1", "--framing", "zoom"],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected scene or crop"));
}
