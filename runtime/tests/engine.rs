//! The tract plans and the classifier on a generated bundle, against a hand-computed
//! reference of the same tiny model.

use crate::common;

use std::num::NonZeroUsize;
use std::path::PathBuf;

use common::bundle_writer::{random_image, reference_logits, write_bundle, Spec, Written};
use xrvlm_runtime::bundle::Bundle;
use xrvlm_runtime::classifier::Classifier;
use xrvlm_runtime::engine::{EngineError, Plan, PlanOptions, Precision};

/// fp32 tract vs the f64 hand computation of the same graph.
const FP32_PARTS_TOLERANCE: f32 = 1e-4;
/// The parity bound for logits (trainer fp32 vs tract fp32).
const LOGIT_PARITY: f32 = 1e-4;

fn options(precision: Precision, threads: usize) -> PlanOptions {
    PlanOptions {
        precision,
        threads: NonZeroUsize::new(threads).unwrap(),
    }
}

fn setup() -> (tempfile::TempDir, Written, Bundle) {
    let dir = tempfile::tempdir().unwrap();
    let written = write_bundle(dir.path(), &Spec::small(), 21);
    let bundle = Bundle::open(dir.path()).unwrap();
    (dir, written, bundle)
}

/// Three preprocessed random images, (3, 3, S, S).
fn batch(written: &Written) -> Vec<f32> {
    (0..3)
        .flat_map(|i| {
            written
                .preprocess
                .apply(&random_image(20 + i, 30 - i, 40 + u64::from(i)))
                .unwrap()
        })
        .collect()
}

#[test]
fn fp32_plan_matches_the_hand_computed_model() {
    let (_dir, written, bundle) = setup();
    let plan = Plan::load(&bundle, options(Precision::Fp32, 1)).unwrap();
    let images = batch(&written);
    let parts = plan.run(&images).unwrap();
    let per_image = plan.input_len();
    let expected: Vec<f32> = images
        .chunks(per_image)
        .flat_map(|image| written.model.parts(image))
        .collect();
    assert_eq!(parts.len(), expected.len());
    for (i, (got, want)) in parts.iter().zip(&expected).enumerate() {
        assert!(
            (got - want).abs() <= FP32_PARTS_TOLERANCE * want.abs().max(1.0),
            "part value {i}: tract {got}, reference {want}"
        );
    }
}

#[test]
fn fp32_plan_gives_identical_results_on_one_and_two_threads() {
    let (_dir, written, bundle) = setup();
    let images = batch(&written);
    let one = Plan::load(&bundle, options(Precision::Fp32, 1))
        .unwrap()
        .run(&images)
        .unwrap();
    let two = Plan::load(&bundle, options(Precision::Fp32, 2))
        .unwrap()
        .run(&images)
        .unwrap();
    assert_eq!(one, two);
}

#[test]
fn int8_plan_runs_the_quantized_model() {
    let (_dir, written, bundle) = setup();
    let plan = Plan::load(&bundle, options(Precision::Int8, 2)).unwrap();
    let parts = plan.run(&batch(&written)).unwrap();
    let spec = Spec::small();
    assert_eq!(parts.len(), 3 * spec.parts * spec.embed);
    assert!(parts.iter().all(|v| v.is_finite()));
}

#[test]
fn a_bundle_without_int8_model_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec {
        int8: false,
        ..Spec::small()
    };
    write_bundle(dir.path(), &spec, 5);
    let bundle = Bundle::open(dir.path()).unwrap();
    let err = Plan::load(&bundle, options(Precision::Int8, 1)).unwrap_err();
    assert!(matches!(err, EngineError::NotInBundle { .. }), "{err}");
    assert!(err.to_string().contains("no Int8 image model"), "{err}");
}

#[test]
fn f16_runs_where_the_cpu_has_fp16_and_is_a_clear_error_elsewhere() {
    let (_dir, written, bundle) = setup();
    let images = batch(&written);
    match Plan::load(&bundle, options(Precision::F16, 1)) {
        Ok(plan) => {
            assert!(Precision::F16.is_available());
            let half = plan.run(&images).unwrap();
            let full = Plan::load(&bundle, options(Precision::Fp32, 1))
                .unwrap()
                .run(&images)
                .unwrap();
            for (h, f) in half.iter().zip(&full) {
                assert!(
                    (h - f).abs() <= 2e-2 * f.abs().max(1.0),
                    "f16 {h} vs fp32 {f}"
                );
            }
        }
        Err(err) => {
            assert!(!Precision::F16.is_available());
            assert!(matches!(err, EngineError::F16Unavailable), "{err}");
            assert!(err.to_string().contains("fp16 arithmetic"), "{err}");
        }
    }
}

#[test]
fn a_partial_image_is_an_input_shape_error() {
    let (_dir, _written, bundle) = setup();
    let plan = Plan::load(&bundle, options(Precision::Fp32, 1)).unwrap();
    let err = plan.run(&vec![0.0; plan.input_len() + 5]).unwrap_err();
    assert!(matches!(err, EngineError::InputShape { .. }), "{err}");
}

#[test]
fn classifier_reproduces_the_golden_logits() {
    let (_dir, _written, bundle) = setup();
    let golden = bundle.golden().to_vec();
    let paths: Vec<PathBuf> = golden.iter().map(|g| bundle.golden_image(g)).collect();
    let classifier = Classifier::new(bundle, options(Precision::Fp32, 2)).unwrap();
    let results = classifier.classify_files(&paths, 3).unwrap();
    for (entry, result) in golden.iter().zip(results) {
        let prediction = result.unwrap();
        assert_eq!(prediction.top.len(), 3);
        let max_diff = prediction
            .logits
            .iter()
            .zip(&entry.logits)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            max_diff <= LOGIT_PARITY,
            "{}: max |Δlogit| {max_diff}",
            entry.file
        );
    }
}

#[test]
fn one_corrupt_file_fails_alone_and_the_batch_goes_on() {
    let (dir, written, bundle) = setup();
    let good = dir.path().join("good.png");
    random_image(31, 17, 9).save(&good).unwrap();
    let corrupt = dir.path().join("corrupt.jpg");
    let jpeg = {
        let mut bytes = Vec::new();
        random_image(40, 40, 10)
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        bytes.truncate(bytes.len() / 2);
        bytes
    };
    std::fs::write(&corrupt, jpeg).unwrap();
    let golden = bundle.golden_image(&bundle.golden()[0]);
    let classifier = Classifier::new(bundle, options(Precision::Fp32, 1)).unwrap();
    let results = classifier
        .classify_files(&[good.clone(), corrupt, golden.clone()], 2)
        .unwrap();
    let err = results[1].as_ref().unwrap_err().to_string();
    assert!(err.contains("corrupt.jpg"), "{err}");
    for (i, path) in [(0, &good), (2, &golden)] {
        let prediction = results[i].as_ref().unwrap();
        let reference = reference_logits(&written, path);
        for (a, b) in prediction.logits.iter().zip(&reference) {
            assert!(
                (a - b).abs() <= LOGIT_PARITY,
                "{}: {a} vs {b}",
                path.display()
            );
        }
        let best = prediction.top[0].probability;
        assert!(best > 0.0 && best <= 1.0);
    }
}

/// The demo bundle's int8 model, as the pins below were recorded against. Re-exporting
/// `models/demo` changes this digest and the plan's output: re-record both pins then (run this
/// test, it prints the new values), and say so in the commit.
const DEMO_INT8_ONNX_SHA256: &str =
    "09ba4f03fb469345c31d34a4ca23c3ed9adea67b6b37f3a807be5a6712dfd4f4";

/// The demo bundle's int8 parts on its golden images, pinned bit for bit per set of int8
/// kernels ([`Plan::int8_kernels`], joined by `+`): the SHA-256 of the parts' f32 bits
/// (little-endian, image after image, in the order of `golden.json`). The engine's refactors
/// must keep these; a change of the engine's arithmetic that is meant must re-record them.
const DEMO_INT8_PARTS_PINS: &[(&str, &str)] = &[
    // x86-64 with AVX-512 VNNI (our int8 kernel and passes; tract's VNNI kernel for the rest).
    (
        "avx512vnni_mmm_i32_8x8+xrvlm_avx512vnni_i32_8x48",
        "92f1613c8ce97af3925e9ba33d958d139f5d3266ebf972cbfeb069a784a5accd",
    ),
    // aarch64 with SDOT (qemu as a Cortex-A76, tools/test-all.sh): our SDOT kernel for the
    // linear layers (issue 16), tract's for the convolutions. The same bits as x86 (every int8
    // kernel involved is exact; the demo has no attention or LayerNorm our passes take).
    (
        "arm64simd_mmm_i32_8x8_dot+xrvlm_sdot_i32_4x16",
        "92f1613c8ce97af3925e9ba33d958d139f5d3266ebf972cbfeb069a784a5accd",
    ),
];

/// The demo bundle and its golden images, preprocessed, one after the other.
fn demo_golden_images() -> (Bundle, Vec<f32>) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/demo");
    let bundle = Bundle::open(&dir).unwrap();
    let preprocess = &bundle.manifest().preprocess;
    let images: Vec<f32> = bundle
        .golden()
        .iter()
        .flat_map(|entry| {
            let image = xrvlm_runtime::image_io::load_rgb(&bundle.golden_image(entry)).unwrap();
            preprocess.apply(&image).unwrap()
        })
        .collect();
    (bundle, images)
}

#[test]
fn a_batch_gives_every_image_the_bits_it_gets_alone() {
    let (bundle, images) = demo_golden_images();
    for precision in [Precision::Fp32, Precision::Int8] {
        let plan = Plan::load(&bundle, options(precision, 2)).unwrap();
        let batched = plan.run(&images).unwrap();
        let alone: Vec<f32> = images
            .chunks(plan.input_len())
            .flat_map(|image| plan.run(image).unwrap())
            .collect();
        assert!(images.len() / plan.input_len() >= 4, "a batch of several");
        let same = batched
            .iter()
            .zip(&alone)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same && batched.len() == alone.len(),
            "{precision}: a batch differs from its images run alone"
        );
    }
}

/// The demo bundle's int8 plan on its golden images: parts as bits, at `threads`, and the plan's
/// int8 kernels.
fn demo_int8_parts(threads: usize) -> (Vec<u8>, String) {
    let (bundle, images) = demo_golden_images();
    let plan = Plan::load(&bundle, options(Precision::Int8, threads)).unwrap();
    let parts = plan.run(&images).unwrap();
    let bytes = parts
        .iter()
        .flat_map(|v| v.to_bits().to_le_bytes())
        .collect();
    (bytes, plan.int8_kernels().join("+"))
}

#[test]
fn demo_int8_plan_output_is_pinned_bit_for_bit() {
    use xrvlm_runtime::bundle::integrity::{digest_file, Sha256Digest};
    let onnx =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/demo/visual.int8.onnx");
    let (onnx_digest, _) = digest_file(&onnx).unwrap();
    let (one, kernels) = demo_int8_parts(1);
    let (two, _) = demo_int8_parts(2);
    let digest = Sha256Digest::of_bytes(&one).to_string();
    eprintln!("demo int8: onnx {onnx_digest}, kernels {kernels}, parts {digest}");
    assert_eq!(
        onnx_digest.to_string(),
        DEMO_INT8_ONNX_SHA256,
        "models/demo/visual.int8.onnx was re-exported: re-record DEMO_INT8_ONNX_SHA256 and \
         DEMO_INT8_PARTS_PINS (this machine's kernels {kernels}: parts {digest})"
    );
    assert!(
        one == two,
        "the demo's int8 parts differ between 1 and 2 threads"
    );
    match DEMO_INT8_PARTS_PINS.iter().find(|(k, _)| *k == kernels) {
        Some((_, pinned)) => assert_eq!(
            &digest, pinned,
            "the int8 plan's output changed on kernels {kernels}"
        ),
        // Bits depend on the kernels; a machine whose set has no pin checks the rest only.
        None => eprintln!("no pin recorded for kernels {kernels}: bits not checked here"),
    }
}
