//! `xrvlm check` on the demo bundle: it passes at int8 and fp32 against the manifest, and
//! fails, naming the figure, when the int8 model was damaged (its weights scaled, the digest
//! refreshed so the bundle still opens) and when a labelled set's accuracy is below tolerance.

use crate::common::{self, demo_bundle};

use std::path::Path;
use std::process::Output;

use prost::Message;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::ModelProto;

fn check(args: &[&str], report: &Path) -> Output {
    common::xrvlm()
        .arg("check")
        .args(args)
        .arg("--report")
        .arg(report)
        .output()
        .unwrap()
}

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The demo's sample frames (`<label>_<n>.png`) as an ImageFolder tree.
fn labelled_samples(root: &Path) {
    for entry in std::fs::read_dir(demo_bundle().join("samples")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some((label, _)) = name.rsplit_once('_') else {
            continue;
        };
        std::fs::create_dir_all(root.join(label)).unwrap();
        std::fs::copy(&path, root.join(label).join(&name)).unwrap();
    }
}

#[test]
fn the_demo_bundle_passes_at_int8_and_fp32() {
    let dir = tempfile::tempdir().unwrap();
    for precision in ["int8", "fp32"] {
        let path = dir.path().join(format!("{precision}.json"));
        let bundle = demo_bundle();
        let out = check(
            &[
                "--bundle",
                bundle.to_str().unwrap(),
                "--precision",
                precision,
            ],
            &path,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{precision}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("PASS"), "{stdout}");
        let r = report(&path);
        assert_eq!(r["passed"], true);
        assert_eq!(r["golden"]["images"], 8);
        let diff = r["golden"]["max_abs_logit_diff"].as_f64().unwrap();
        if precision == "fp32" {
            assert!(diff < 1e-4, "fp32 golden parity {diff}");
        }
    }
}

#[test]
fn a_labelled_set_below_tolerance_fails_naming_the_figure() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("labelled");
    labelled_samples(&data);
    let path = dir.path().join("report.json");
    let bundle = demo_bundle();
    let args = [
        "--bundle",
        bundle.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ];
    // Within the manifest's reference (97 % top-1 on its evaluation set) less 10 points: passes
    // (the samples score 38 of 40).
    let mut lenient = args.to_vec();
    lenient.extend(["--max-top1-drop", "0.1"]);
    let out = check(&lenient, &path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let r = report(&path);
    assert_eq!(r["labelled"]["images"], 40);
    assert!(r["labelled"]["per_class"].as_array().unwrap().len() >= 10);
    // A floor the demo model does not reach on its samples: exit 3, the figure named with how
    // far below.
    let mut strict = args.to_vec();
    strict.extend(["--min-top1", "0.99"]);
    let out = check(&strict, &path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("FAIL labelled.top1"), "{stdout}");
    assert!(
        stdout.contains("points below the 99.00 % accepted"),
        "{stdout}"
    );
    let r = report(&path);
    assert_eq!(r["passed"], false);
    assert_eq!(r["regressions"][0]["figure"], "labelled.top1");
}

/// Scales every int8 weight of the int8 model by 1/2 (as a bad re-quantization would).
fn damage_int8_weights(bundle: &Path) {
    let path = bundle.join("visual.int8.onnx");
    let mut model = ModelProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let mut scaled = 0;
    for tensor in &mut graph.initializer {
        if tensor.data_type == DataType::Int8 as i32 && tensor.raw_data.len() > 64 {
            for byte in &mut tensor.raw_data {
                *byte = ((*byte as i8) / 2) as u8;
            }
            scaled += 1;
        }
    }
    assert!(scaled > 0, "no int8 weights found to damage");
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    common::bundle_writer::refresh_digest(bundle, "visual.int8.onnx");
}

#[test]
fn a_damaged_int8_model_fails_the_golden_parity() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("demo");
    copy_dir(&demo_bundle(), &bundle);
    damage_int8_weights(&bundle);
    let path = dir.path().join("report.json");
    let out = check(&["--bundle", bundle.to_str().unwrap()], &path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("FAIL golden.max_abs_logit_diff"),
        "{stdout}"
    );
    let r = report(&path);
    assert_eq!(r["regressions"][0]["figure"], "golden.max_abs_logit_diff");
    assert!(
        r["golden"]["max_abs_logit_diff"].as_f64().unwrap()
            > r["limits"]["max_golden_delta"].as_f64().unwrap()
    );
    // The fp32 model of the same bundle is untouched and still passes.
    let out = check(
        &["--bundle", bundle.to_str().unwrap(), "--precision", "fp32"],
        &path,
    );
    assert!(out.status.success());
}

#[test]
fn the_int8_plan_runs_integer_kernels_and_sdot_where_the_cpu_has_it() {
    use xrvlm_runtime::bundle::Bundle;
    use xrvlm_runtime::engine::{Plan, PlanOptions, Precision};
    let bundle = Bundle::open(&demo_bundle()).unwrap();
    let load = |precision| {
        let options = PlanOptions {
            precision,
            threads: 1.try_into().unwrap(),
        };
        Plan::load(&bundle, options).unwrap()
    };
    let kernels = load(Precision::Int8).int8_kernels();
    assert!(!kernels.is_empty(), "the int8 plan has no integer kernels");
    assert!(kernels.iter().all(|k| k.contains("i32")), "{kernels:?}");
    // On the boards' ARMv8.2 cores (Cortex-A76 of the Pi 5, A78AE of the Orin: SDOT, no SVE)
    // tract must pick its SDOT kernel, the 4x faster one the int8 export is designed for. (On
    // an SVE CPU it takes its SVE kernel instead.)
    #[cfg(target_arch = "aarch64")]
    if std::arch::is_aarch64_feature_detected!("dotprod")
        && !std::arch::is_aarch64_feature_detected!("sve")
    {
        assert!(kernels.iter().any(|k| k.contains("dot")), "{kernels:?}");
    }
    assert!(load(Precision::Fp32).int8_kernels().is_empty());
}
