//! Part maps (issue 18, part 4): UnA's maps as the image model's second output, on the demo
//! bundle at fp32 and int8, and `xrvlm classify --explain` drawing them.

use crate::common::{self, demo_bundle, xrvlm};

use std::num::NonZeroUsize;
use std::path::PathBuf;

use common::bundle_writer::{write_bundle, Spec};
use xrvlm_runtime::bundle::Bundle;
use xrvlm_runtime::classifier::Classifier;
use xrvlm_runtime::engine::{EngineError, ModelShape, Plan, PlanOptions, Precision};

/// How far an f32 softmax over the demo's 49 tokens may sum from one: 49 roundings of values
/// below one and one division, far below 1e-5.
const SUM_TOLERANCE: f32 = 1e-5;

fn options(precision: Precision) -> PlanOptions {
    PlanOptions {
        precision,
        threads: NonZeroUsize::MIN,
    }
}

/// Four of the demo's held-out sample frames, preprocessed.
fn sample_inputs(classifier: &Classifier) -> Vec<Vec<f32>> {
    [
        "bartail_finch_0",
        "blank_0",
        "bluebar_vireo_1",
        "twobar_shrike_0",
    ]
    .iter()
    .map(|name| {
        let path = demo_bundle().join("samples").join(format!("{name}.png"));
        classifier.load_image(&path).unwrap()
    })
    .collect()
}

#[test]
fn demo_part_maps_each_sum_to_one_over_the_tokens_at_fp32_and_int8() {
    for precision in [Precision::Fp32, Precision::Int8] {
        let bundle = Bundle::open(&demo_bundle()).unwrap();
        let parts = bundle.dims().parts();
        let backbone = &bundle.manifest().backbone;
        let grid = (backbone.image_size / backbone.patch_size) as usize;
        let plan = Plan::load_explained(&bundle, options(precision)).unwrap();
        let classifier = Classifier::new(bundle, options(precision)).unwrap();
        for (i, input) in sample_inputs(&classifier).iter().enumerate() {
            let (_, maps) = plan.run_explained(input).unwrap();
            assert_eq!(maps.parts(), parts, "{precision}: one map per part");
            assert_eq!(maps.grid(), grid, "{precision}: one token per patch");
            for (part, map) in maps.maps().enumerate() {
                let sum: f32 = map.iter().sum();
                assert!(
                    (sum - 1.0).abs() <= SUM_TOLERANCE,
                    "{precision}, frame {i}, part {part}: sums to {sum}"
                );
                assert!(map.iter().all(|&v| v >= 0.0), "{precision}: {map:?}");
            }
        }
    }
}

#[test]
fn demo_parts_are_bit_identical_with_and_without_the_maps_output() {
    for precision in [Precision::Fp32, Precision::Int8] {
        let bundle = Bundle::open(&demo_bundle()).unwrap();
        let plain = Plan::load(&bundle, options(precision)).unwrap();
        let explained = Plan::load_explained(&bundle, options(precision)).unwrap();
        assert!(!plain.is_explained() && explained.is_explained());
        let classifier = Classifier::new(bundle, options(precision)).unwrap();
        for input in sample_inputs(&classifier) {
            let want = plain.run(&input).unwrap();
            let (got, _) = explained.run_explained(&input).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{precision}");
            assert_eq!(bits(&explained.run(&input).unwrap()), bits(&want));
        }
    }
}

#[test]
fn a_plain_plan_refuses_to_explain() {
    let bundle = Bundle::open(&demo_bundle()).unwrap();
    let plan = Plan::load(&bundle, options(Precision::Fp32)).unwrap();
    let input = vec![0.0; plan.input_len()];
    let err = plan.run_explained(&input).unwrap_err();
    assert!(matches!(err, EngineError::NotExplained), "{err}");
}

#[test]
fn a_bundle_whose_manifest_names_no_maps_cannot_explain() {
    let dir = tempfile::tempdir().unwrap();
    write_bundle(dir.path(), &Spec::small(), 3);
    let bundle = Bundle::open(dir.path()).unwrap();
    let err = Plan::load_explained(&bundle, options(Precision::Fp32)).unwrap_err();
    assert!(matches!(err, EngineError::NoPartMaps { .. }), "{err}");
    assert!(err.to_string().contains("part_maps"), "{err}");
}

#[test]
fn a_maps_tensor_that_is_missing_or_not_maps_is_refused_by_name() {
    let file = demo_bundle().join("visual.onnx");
    let onnx = std::fs::read(&file).unwrap();
    let shape = ModelShape {
        image_size: 96,
        parts: 4,
        embed: 128,
    };
    let err =
        Plan::from_onnx_explained(&file, &onnx, shape, options(Precision::Fp32), "una/nothing")
            .unwrap_err();
    assert!(matches!(err, EngineError::Load { .. }), "{err}");
    assert!(err.to_string().contains("\"una/nothing\""), "{err}");
    let explain = |shape: ModelShape, tensor: &str| {
        Plan::from_onnx_explained(&file, &onnx, shape, options(Precision::Fp32), tensor)
            .unwrap_err()
    };
    // Z = A·F exists, but is no softmax.
    let err = explain(shape, "una/MatMul_59");
    assert!(err.to_string().contains("no softmax"), "{err}");
    // The maps of a model of 4 parts read as if it had 3.
    let three = ModelShape { parts: 3, ..shape };
    match explain(three, "una/Softmax_55") {
        EngineError::PartMapsShape { rows, found, .. } => {
            assert_eq!(rows, 4);
            assert_eq!(found.map(|s| s.iter().product::<usize>()), Some(5 * 9));
        }
        other => panic!("{other}"),
    }
}

/// The demo samples `names`, copied into a fresh folder with one file that is not an image.
fn explain_inputs(names: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    for name in names {
        let file = format!("{name}.png");
        std::fs::copy(
            demo_bundle().join("samples").join(&file),
            images.join(&file),
        )
        .unwrap();
    }
    std::fs::write(images.join("broken.png"), b"not a png").unwrap();
    (dir, images)
}

#[test]
fn classify_explain_writes_one_png_per_image_and_records_a_broken_one() {
    let (dir, images) = explain_inputs(&["bartail_finch_0", "blank_1"]);
    let maps = dir.path().join("maps");
    let output = xrvlm()
        .args(["classify", "--quiet", "--precision", "int8", "--bundle"])
        .arg(demo_bundle())
        .arg(&images)
        .arg("--explain")
        .arg(&maps)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "one file failed: exit 2");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("broken.png") && l.contains("error")),
        "{stdout}"
    );
    let mut written: Vec<String> = std::fs::read_dir(&maps)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    assert_eq!(written, ["bartail_finch_0.png", "blank_1.png"]);
    for name in &written {
        let png = image::open(maps.join(name)).unwrap();
        let (width, height) = (png.width(), png.height());
        let expected = xrvlm_runtime::part_maps::Layout::new(4, 96).size();
        assert_eq!((width, height), expected, "{name}");
    }
}
