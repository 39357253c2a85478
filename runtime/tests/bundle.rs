//! `Bundle::open` accepts a valid bundle and refuses every kind of damage with an error that
//! names the file and the problem; damage inside an image model is refused when that model is
//! loaded to run (`Plan::load`) and by `Bundle::verify_image_models`.

use crate::common;

use std::fs;
use std::num::NonZeroUsize;
use std::path::Path;

use common::bundle_writer::{refresh_digest, safetensors_bytes, write_bundle, Spec};
use common::onnx_model::TinyModel;
use common::weights::random_weights;
use xrvlm_runtime::bundle::manifest::{FileRole, ModelPrecision};
use xrvlm_runtime::bundle::{Bundle, BundleError};
use xrvlm_runtime::engine::{EngineError, Plan, PlanOptions, Precision};

fn fresh(dir: &Path) {
    write_bundle(dir, &Spec::small(), 11);
}

fn open_error(dir: &Path) -> (BundleError, String) {
    let err = Bundle::open(dir).expect_err("the damaged bundle must be refused");
    let message = err.to_string();
    (err, message)
}

#[test]
fn a_valid_bundle_opens_with_its_sizes_weights_and_golden_entries() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_bundle(dir.path(), &Spec::small(), 11);
    let bundle = Bundle::open(dir.path()).unwrap();
    assert_eq!(bundle.dims(), &Spec::small().dims());
    assert_eq!(bundle.weights(), &written.weights);
    assert_eq!(bundle.golden().len(), 2);
    assert!(bundle.visual_path(ModelPrecision::Int8).is_some());
    assert_eq!(bundle.manifest().labels().next(), Some("wren"));
}

/// Flips one bit in the middle of `path` (inside the weights, for an image model) and returns
/// the original bytes.
fn flip_middle_byte(path: &Path) -> Vec<u8> {
    let original = fs::read(path).unwrap();
    let mut damaged = original.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x01;
    fs::write(path, &damaged).unwrap();
    original
}

fn listed(dir: &Path, image_models: bool) -> Vec<String> {
    Bundle::open(dir)
        .unwrap()
        .manifest()
        .files
        .iter()
        .filter(|f| (f.role == FileRole::Visual) == image_models)
        .map(|f| f.path.clone())
        .collect()
}

fn plan(bundle: &Bundle, precision: Precision) -> Result<Plan, EngineError> {
    let options = PlanOptions {
        precision,
        threads: NonZeroUsize::MIN,
    };
    Plan::load(bundle, options)
}

#[test]
fn one_flipped_byte_in_any_listed_file_but_an_image_model_is_a_digest_mismatch_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    fresh(dir.path());
    let files = listed(dir.path(), false);
    assert_eq!(files.len(), 4);
    for file in files {
        let path = dir.path().join(&file);
        let original = flip_middle_byte(&path);
        let (err, message) = open_error(dir.path());
        assert!(
            matches!(err, BundleError::DigestMismatch { .. }),
            "{file}: {message}"
        );
        assert!(message.contains(&file), "{message}");
        assert!(message.contains("sha256 mismatch"), "{message}");
        fs::write(&path, &original).unwrap();
    }
    Bundle::open(dir.path()).expect("restored bundle opens again");
}

/// Only the image model that runs is hashed, when it is read to be run: a flipped byte in it
/// refuses its plan (and `verify_image_models`, which `xrvlm info` runs), while the plan of
/// the other, undamaged-by-use model still loads.
#[test]
fn one_flipped_byte_in_an_image_model_refuses_the_plan_that_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    fresh(dir.path());
    assert_eq!(
        listed(dir.path(), true),
        ["visual.onnx", "visual.int8.onnx"]
    );
    for (file, runs_it, other) in [
        ("visual.onnx", Precision::Fp32, Precision::Int8),
        ("visual.int8.onnx", Precision::Int8, Precision::Fp32),
    ] {
        let path = dir.path().join(file);
        let original = flip_middle_byte(&path);
        let bundle = Bundle::open(dir.path()).expect("the image models' content is checked later");
        let err = plan(&bundle, runs_it).expect_err("the damaged model must not run");
        let message = err.to_string();
        assert!(
            matches!(err, EngineError::Bundle(BundleError::DigestMismatch { .. })),
            "{file}: {message}"
        );
        assert!(
            message.contains(&format!("{file}: sha256 mismatch")),
            "{message}"
        );
        let err = bundle.verify_image_models().unwrap_err();
        assert!(matches!(err, BundleError::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains(file), "{err}");
        plan(&bundle, other).expect("the other model is not read");
        fs::write(&path, &original).unwrap();
        plan(&bundle, runs_it).expect("the restored model runs");
    }
}

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    fresh(dir.path());
    fs::remove_file(dir.path().join("golden/owl_02.png")).unwrap();
    let (err, message) = open_error(dir.path());
    assert!(matches!(err, BundleError::MissingFile { .. }), "{message}");
    assert!(
        message.contains("golden/owl_02.png") && message.contains("missing"),
        "{message}"
    );
}

#[test]
fn a_truncated_file_is_a_size_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    fresh(dir.path());
    let path = dir.path().join("visual.onnx");
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let (_, message) = open_error(dir.path());
    assert!(message.contains("visual.onnx: size mismatch"), "{message}");
}

#[test]
fn a_format_1_bundle_opens_and_a_newer_format_says_which_formats_this_runtime_reads() {
    let dir = tempfile::tempdir().unwrap();
    fresh(dir.path());
    let path = dir.path().join("manifest.toml");
    let text = fs::read_to_string(&path).unwrap();
    // A bundle without the format-2 fields is written as format 1 and opens as it did.
    assert!(text.starts_with("format_version = 1\n"), "{text}");
    Bundle::open(dir.path()).unwrap();
    fs::write(
        &path,
        text.replace("format_version = 1", "format_version = 3"),
    )
    .unwrap();
    let (_, message) = open_error(dir.path());
    assert!(message.contains("manifest.toml"), "{message}");
    assert!(message.contains("format_version 3 is newer"), "{message}");
    assert!(message.contains("reads format_version 1 to 2"), "{message}");
}

#[test]
fn an_image_model_of_the_wrong_width_is_refused_before_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    fresh(dir.path());
    let spec = Spec::small();
    let wrong = TinyModel::random(spec.image_size as usize, spec.parts, spec.embed + 1, 3);
    fs::write(dir.path().join("visual.onnx"), wrong.fp32_onnx(Some("N"))).unwrap();
    refresh_digest(dir.path(), "visual.onnx");
    let (err, message) = open_error(dir.path());
    assert!(
        matches!(err, BundleError::ModelSignature { .. }),
        "{message}"
    );
    assert!(message.contains("visual.onnx"), "{message}");
    assert!(
        message.contains("`parts` has shape (N,3,9), expected (N,3,8)"),
        "{message}"
    );
}

#[test]
fn an_image_model_with_a_fixed_batch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_bundle(dir.path(), &Spec::small(), 11);
    fs::write(
        dir.path().join("visual.onnx"),
        written.model.fp32_onnx(None),
    )
    .unwrap();
    refresh_digest(dir.path(), "visual.onnx");
    let (_, message) = open_error(dir.path());
    assert!(
        message.contains("`image` has shape (1,3,16,16)"),
        "{message}"
    );
    assert!(message.contains("batch axis symbolic"), "{message}");
}

#[test]
fn a_file_that_is_not_onnx_is_refused_as_such() {
    let dir = tempfile::tempdir().unwrap();
    fresh(dir.path());
    fs::write(
        dir.path().join("visual.int8.onnx"),
        b"\xff\xff\xff\xff not protobuf",
    )
    .unwrap();
    refresh_digest(dir.path(), "visual.int8.onnx");
    let (_, message) = open_error(dir.path());
    assert!(
        message.contains("visual.int8.onnx: not a valid ONNX model"),
        "{message}"
    );
}

#[test]
fn prompts_of_the_wrong_shape_name_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    fresh(dir.path());
    let mut spec = Spec::small();
    spec.hidden += 2;
    fs::write(
        dir.path().join("prompts.safetensors"),
        safetensors_bytes(&random_weights(spec.dims(), 5)),
    )
    .unwrap();
    refresh_digest(dir.path(), "prompts.safetensors");
    let (err, message) = open_error(dir.path());
    assert!(matches!(err, BundleError::Prompts(_)), "{message}");
    assert!(message.contains("prompts.safetensors"), "{message}");
    assert!(
        message.contains("crm.fc1.weight has shape [12, 30], expected [10, 30]"),
        "{message}"
    );
}

#[test]
fn golden_logits_of_the_wrong_count_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    fresh(dir.path());
    let path = dir.path().join("golden/golden.json");
    let mut golden: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    golden[1]["logits"].as_array_mut().unwrap().pop();
    fs::write(&path, serde_json::to_vec(&golden).unwrap()).unwrap();
    refresh_digest(dir.path(), "golden/golden.json");
    let (_, message) = open_error(dir.path());
    assert!(
        message.contains("golden/golden.json: entry 1 (owl_02.png)"),
        "{message}"
    );
    assert!(
        message.contains("4 logits, expected one per class (5)"),
        "{message}"
    );
}

#[test]
fn a_path_that_is_not_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, message) = open_error(&dir.path().join("nope"));
    assert!(message.contains("not a bundle directory"), "{message}");
}
