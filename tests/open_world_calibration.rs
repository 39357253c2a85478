//! The export's open-world step on the committed demo bundle: calibrated on the demo's labelled
//! sample frames through the runtime, the threshold keeps the target share of the known-species
//! frames, the runtime's own rule then keeps at least the share the section records (exactly
//! it for a logit score; for part prototypes the section's figure is on prototypes made without
//! each frame), and installing the section in a copy of the bundle leaves every other file byte
//! for byte.

use std::fs;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use xrvlm_runtime::bundle::manifest::FileRole;
use xrvlm_runtime::open_world::{calibrate, ScoreKind, PROTOTYPES_FILE};
use xrvlm_runtime::prelude::*;
use xrvlm_train::data::image_folder::load_image_folder;
use xrvlm_train::data::Dataset;
use xrvlm_train::open_world::{calibrate_section, install, score_dataset, OpenWorldOptions};

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/demo")
}

fn classifier(dir: &Path) -> Classifier {
    let options = PlanOptions {
        precision: Precision::Fp32,
        threads: NonZeroUsize::MIN,
    };
    Classifier::new(Bundle::open(dir).unwrap(), options).unwrap()
}

/// The demo's samples (`<label>_<i>.png`) as an ImageFolder under `root`.
fn samples_as_image_folder(root: &Path) -> Dataset {
    for entry in fs::read_dir(demo().join("samples")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let (label, _) = name.rsplit_once('_').unwrap();
        fs::create_dir_all(root.join(label)).unwrap();
        fs::copy(&path, root.join(label).join(path.file_name().unwrap())).unwrap();
    }
    load_image_folder(root).unwrap()
}

/// Copies the bundle's files (not its samples) into `to`, without any `[open_world]`.
fn copy_bundle(to: &Path) -> Vec<(String, Vec<u8>)> {
    fs::create_dir_all(to.join("golden")).unwrap();
    let mut manifest = Manifest::load(&demo().join("manifest.toml")).unwrap();
    manifest.files.retain(|f| f.role != FileRole::OpenWorld);
    manifest.open_world = None;
    let files: Vec<(String, Vec<u8>)> = manifest
        .files
        .iter()
        .map(|f| (f.path.clone(), fs::read(demo().join(&f.path)).unwrap()))
        .collect();
    for (path, bytes) in &files {
        fs::write(to.join(path), bytes).unwrap();
    }
    fs::write(to.join("manifest.toml"), manifest.to_toml().unwrap()).unwrap();
    files
}

/// The share of `ds`'s known-species frames the bundle at `dir` does not answer unknown.
fn kept(dir: &Path, ds: &Dataset) -> f64 {
    let blank = ds.classes.iter().position(|c| c == "blank");
    let known: Vec<_> = score_dataset(&classifier(dir), ds)
        .unwrap()
        .into_iter()
        .filter(|s| Some(s.sample.label) != blank)
        .collect();
    let kept = known
        .iter()
        .filter(|s| !s.frame.prediction.is_unknown())
        .count();
    kept as f64 / known.len() as f64
}

#[test]
fn part_prototypes_are_calibrated_on_frames_they_did_not_see_and_installed_alone() {
    let dir = tempfile::tempdir().unwrap();
    let ds = samples_as_image_folder(&dir.path().join("samples"));
    let bundle = dir.path().join("bundle");
    let before = copy_bundle(&bundle);
    let options = OpenWorldOptions {
        target_recall: 0.8,
        ..OpenWorldOptions::default()
    };
    assert_eq!(options.score, ScoreKind::PartPrototype);
    let calibrated = calibrate_section(&classifier(&bundle), &ds, &options).unwrap();
    let section = &calibrated.section;
    assert_eq!(section.blank_label.as_deref(), Some("blank"));
    let prototypes = calibrated.prototypes.as_ref().expect("prototypes");
    assert_eq!(
        prototypes.classes(),
        ds.classes.len(),
        "one per class, blank too"
    );
    assert!(section.recall >= 0.8, "{section:?}");

    let manifest = install(&bundle, calibrated.clone()).unwrap();
    assert_eq!(manifest.open_world.as_ref(), Some(section));
    assert_eq!(manifest.open_world_file().unwrap().path, PROTOTYPES_FILE);
    for (path, bytes) in &before {
        assert_eq!(
            &fs::read(bundle.join(path)).unwrap(),
            bytes,
            "{path} changed"
        );
    }
    let opened = Bundle::open(&bundle).unwrap();
    let read = opened.prototypes().expect("the bundle's prototypes");
    assert_eq!(read.classes(), prototypes.classes());
    let largest_diff = read
        .as_slice()
        .iter()
        .zip(prototypes.as_slice())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(largest_diff < 1e-6, "{largest_diff}");
    // Scored against prototypes that include them, the calibration frames are kept at least
    // as often as the section's figure (made on prototypes without each frame).
    assert!(kept(&bundle, &ds) >= section.recall);
}

#[test]
fn a_logit_score_keeps_exactly_the_recorded_share_and_drops_stale_prototypes() {
    let dir = tempfile::tempdir().unwrap();
    let ds = samples_as_image_folder(&dir.path().join("samples"));
    let bundle = dir.path().join("bundle");
    copy_bundle(&bundle);
    let prototypes = OpenWorldOptions {
        target_recall: 0.8,
        ..OpenWorldOptions::default()
    };
    install(
        &bundle,
        calibrate_section(&classifier(&bundle), &ds, &prototypes).unwrap(),
    )
    .unwrap();
    let options = OpenWorldOptions {
        score: ScoreKind::MaxLogit,
        ..prototypes
    };
    let calibrated = calibrate_section(&classifier(&bundle), &ds, &options).unwrap();
    assert_eq!(calibrated.prototypes, None);
    let section = calibrated.section.clone();

    // The threshold is the runtime's calibration of the known frames' scores (a frame whose
    // top class is blank is never rejected, so it counts as +inf).
    let blank = ds.classes.iter().position(|c| c == "blank");
    let scores: Vec<f32> = score_dataset(&classifier(&bundle), &ds)
        .unwrap()
        .iter()
        .filter(|s| Some(s.sample.label) != blank)
        .map(|s| match s.frame.prediction.top[0].label.as_str() {
            "blank" => f32::INFINITY,
            _ => s.frame.candidates.get(ScoreKind::MaxLogit),
        })
        .collect();
    assert_eq!(
        calibrate(&scores, 0.8).unwrap().threshold,
        section.threshold
    );

    let manifest = install(&bundle, calibrated).unwrap();
    assert!(manifest.open_world_file().is_none());
    assert!(!bundle.join(PROTOTYPES_FILE).exists());
    assert_eq!(kept(&bundle, &ds), section.recall);
}
