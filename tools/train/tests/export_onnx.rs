//! The exported image graphs against the training crate, on the tiny CLIP fixtures with an
//! XR-VLM head whose UnA batch norms have non-trivial affine parameters and running
//! statistics:
//! - `visual.onnx` loaded by tract from the file (optimized, runnable) gives the `parts` of
//!   candle's `Model::parts` in eval mode, for a batch of 1 and of 3 from one plan;
//! - `visual.int8.onnx` loads in tract, its optimized plan runs int8 matrix products (tract's
//!   `OptMatMul` with an i32-accumulating kernel) for every layer the report calls int8, and its
//!   `parts` stay close to fp32 on images it was not calibrated on;
//! - a layer whose error is too large stays float, and bad inputs are typed errors that say
//!   what is wrong.

use crate::common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use tract_onnx::prelude::{Framework, InferenceModelExt, IntoRunnable, IntoTValue, TypedModel};
use xrvlm_runtime::engine::int8_products;
use xrvlm_train::clip::Clip;
use xrvlm_train::export::calibrate::ActivationRange;
use xrvlm_train::export::int8::{cosine, Int8Options};
use xrvlm_train::export::linear::LinearForm;
use xrvlm_train::export::{visual, write_fp32, write_int8, ExportError, LinearId};
use xrvlm_train::model::{HeadConfig, HeadKind, Model};

/// fp32 graph vs candle, max |Δ| over every `parts` value (the parity bound).
const FP32_TOLERANCE: f32 = 1e-4;
/// int8 vs candle fp32: smallest per-image cosine of the flattened `parts`, on images outside
/// the calibration set. Measured 0.99978 (quick_gelu) and 0.99768 (gelu) on these tiny towers
/// (width 32: per-tensor activation steps are coarse); a wrong scale or layout gives far less.
const INT8_MIN_COSINE: f64 = 0.995;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `n` generated images of size `size`, normalised with CLIP's mean and std, `(n, 3, s, s)`,
/// starting at variant `first`.
fn images(n: usize, first: usize, size: u32) -> Tensor {
    const MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
    const STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];
    let s = size as usize;
    let mut data = Vec::with_capacity(n * 3 * s * s);
    for i in first..first + n {
        let img = common::class_image(i % 3, i, size);
        for c in 0..3 {
            for p in img.pixels() {
                data.push((p.0[c] as f32 / 255.0 - MEAN[c]) / STD[c]);
            }
        }
    }
    Tensor::from_vec(data, (n, 3, s, s), &Device::Cpu).unwrap()
}

/// A tiny XR-VLM on `fixture` whose UnA batch norms are far from the identity: random affine
/// parameters, and running statistics moved by training-mode passes.
fn model(fixture_name: &str) -> Model {
    model_on(&fixture(fixture_name), 32)
}

/// [`model`] on the CLIP in `dir`, whose input side is `size`.
fn model_on(dir: &Path, size: u32) -> Model {
    let clip = Clip::load(dir, &Device::Cpu).unwrap();
    let classes = common::CLASSES.iter().map(|c| c.to_string()).collect();
    let cfg = HeadConfig {
        kind: HeadKind::Xrvlm,
        parts: 3,
        prompts: 2,
        context_len: 4,
        hidden: 16,
        seed: 7,
        ..HeadConfig::default()
    };
    let model = Model::new(clip, classes, cfg, &Device::Cpu, DType::F32).unwrap();
    for (name, mean, std) in [
        ("una.bn_x.weight", 1.0f32, 0.3f32),
        ("una.bn_x.bias", 0.0, 0.2),
        ("una.bn_maps.weight", 1.0, 0.3),
        ("una.bn_maps.bias", 0.05, 0.02),
    ] {
        let var = model.params.get(name).unwrap();
        var.set(&spread(mean, std, var.dims())).unwrap();
    }
    for k in 0..3 {
        let streams = model.streams(&images(4, 40 + 4 * k, size)).unwrap();
        model.parts(&streams, true).unwrap();
    }
    let rm = model.buffers.get("una.bn_x.running_mean").unwrap();
    let moved = rm
        .abs()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(moved > 0.0, "training passes left the running mean at 0");
    model
}

/// Deterministic values around `mean` with roughly the spread `std` (candle's CPU `randn`
/// cannot be seeded, and the test must see the same model every run).
fn spread(mean: f32, std: f32, dims: &[usize]) -> Tensor {
    let n: usize = dims.iter().product();
    let values = (0..n)
        .map(|i| mean + std * 1.7 * (i as f32 * 2.399_963).sin())
        .collect();
    Tensor::from_vec(values, dims, &Device::Cpu).unwrap()
}

fn candle_parts(model: &Model, x: &Tensor) -> Tensor {
    let streams = model.streams(x).unwrap();
    model.parts(&streams, false).unwrap().unwrap()
}

fn optimized(path: &Path) -> TypedModel {
    tract_onnx::onnx()
        .model_for_path(path)
        .unwrap()
        .into_optimized()
        .unwrap()
}

fn run(plan: &TypedModel, x: &Tensor) -> (Vec<usize>, Vec<f32>) {
    let runnable = plan.clone().into_runnable().unwrap();
    let data = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let input = tract_onnx::prelude::Tensor::from_shape(x.dims(), &data).unwrap();
    let out = runnable.run(vec![input.into_tvalue()].into()).unwrap();
    let view = out[0].to_plain_array_view::<f32>().unwrap();
    (view.shape().to_vec(), view.iter().copied().collect())
}

/// The smallest per-image cosine between `plan`'s `parts` and candle's fp32 ones, over five
/// images outside every calibration set, of side `size`.
fn min_image_cosine(model: &Model, plan: &TypedModel, size: u32) -> f64 {
    image_cosines(model, plan, size)
        .into_iter()
        .fold(f64::INFINITY, f64::min)
}

/// The per-image cosines of [`min_image_cosine`].
fn image_cosines(model: &Model, plan: &TypedModel, size: u32) -> Vec<f64> {
    let x = images(5, 0, size);
    let want = candle_parts(model, &x)
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let (_, got) = run(plan, &x);
    let per_image = want.len() / 5;
    want.chunks(per_image)
        .zip(got.chunks(per_image))
        .map(|(a, b)| cosine(a, b))
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn fp32_graph_in_tract_matches_candle_parts_for_batches_of_1_and_3() {
    for name in ["clip-tiny-quick-gelu", "clip-tiny-gelu"] {
        let model = model(name);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("visual.onnx");
        let written = write_fp32(&model, &path).unwrap();
        assert_eq!(written.bytes, std::fs::metadata(&path).unwrap().len());
        let plan = optimized(&path);
        for (n, first) in [(1, 0), (3, 5)] {
            let x = images(n, first, 32);
            let want = candle_parts(&model, &x);
            let (dims, got) = run(&plan, &x);
            assert_eq!(dims, want.dims(), "{name}: output shape");
            assert_eq!(dims, [n, 3, 24]);
            let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let diff = max_abs_diff(&got, &want);
            eprintln!("{name}: batch {n}: fp32 graph vs candle max |diff| {diff:.3e}");
            assert!(diff < FP32_TOLERANCE, "{name} batch {n}: max |diff| {diff}");
        }
    }
}

#[test]
fn int8_graph_runs_int8_matmuls_in_tract_and_stays_close_to_fp32() {
    for name in ["clip-tiny-quick-gelu", "clip-tiny-gelu"] {
        let model = model(name);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("visual.int8.onnx");
        let calibration = images(12, 100, 32);
        let report =
            write_int8(&model, &calibration, &path, &Int8Options::default(), None).unwrap();
        eprintln!("{name}:\n{report}");
        // 1 patch + 4 blocks × 4 + 1 projection.
        assert_eq!(report.layers.len(), 18);
        assert!(report.int8_layers() >= 16, "{report}");
        let plan = optimized(&path);
        let int8 = int8_products(&plan);
        eprintln!("{name}: tract int8 matmuls: {int8:?}");
        // tract may split one product along its outputs (the stacked q, k, v become three);
        // its node names keep the ONNX node's name before the last '.'.
        let mut sources: Vec<&str> = int8
            .iter()
            .map(|(node, _)| node.rsplit_once('.').map_or(node.as_str(), |(s, _)| s))
            .collect();
        sources.sort_unstable();
        sources.dedup();
        assert_eq!(sources.len(), report.int8_layers(), "{int8:?}");
        assert!(
            sources.iter().all(|s| s.contains("MatMulInteger")),
            "{sources:?}"
        );
        let min = min_image_cosine(&model, &plan, 32);
        eprintln!("{name}: int8 vs candle fp32, held-out images: min cosine {min:.6}");
        assert!(min >= INT8_MIN_COSINE, "{name}: min cosine {min}");
    }
}

#[test]
fn int8_graph_is_qoperator_form_without_dequantize_pairs() {
    let model = model("clip-tiny-quick-gelu");
    let (proto, report) = xrvlm_train::export::int8::int8_graph(
        &model,
        &images(4, 0, 32),
        &Int8Options::default(),
        None,
    )
    .unwrap();
    let ops: Vec<&str> = proto
        .graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .map(|n| n.op_type.as_str())
        .collect();
    let count = |op: &str| ops.iter().filter(|&&o| o == op).count();
    assert_eq!(count("MatMulInteger"), report.int8_layers());
    assert_eq!(count("QuantizeLinear"), report.int8_layers());
    assert_eq!(count("DequantizeLinear"), 0);
    // Attention scores and UnA's maps/pooling stay float: 2 per block + 2 in UnA.
    assert_eq!(count("MatMul"), 2 * 4 + 2 + report.float_layers().len());
}

#[test]
fn layers_that_fail_the_cosine_gate_or_are_kept_float_stay_float() {
    let model = model("clip-tiny-quick-gelu");
    let calibration = images(4, 0, 32);
    let keep = Int8Options {
        keep_float: vec![LinearId::Projection, LinearId::Fc2(1)],
        range: ActivationRange::Percentile(99.99),
        ..Int8Options::default()
    };
    let (_, report) =
        xrvlm_train::export::int8::int8_graph(&model, &calibration, &keep, None).unwrap();
    assert_eq!(
        report.float_layers(),
        vec![LinearId::Fc2(1), LinearId::Projection]
    );
    let impossible = Int8Options {
        min_layer_cosine: 1.0,
        ..Int8Options::default()
    };
    let (proto, report) =
        xrvlm_train::export::int8::int8_graph(&model, &calibration, &impossible, None).unwrap();
    assert_eq!(report.int8_layers(), 0, "{report}");
    assert!(report.layers.iter().all(|l| l.form == LinearForm::Float
        && l.kept_float
            .as_deref()
            .is_some_and(|w| w.contains("cosine"))));
    let n = proto
        .graph
        .unwrap()
        .node
        .iter()
        .filter(|n| n.op_type == "MatMulInteger")
        .count();
    assert_eq!(n, 0);
    // All float, the "int8" graph is the fp32 graph: parts agree to f32 rounding.
    assert!(
        report.parts_max_abs_diff < 1e-6,
        "{}",
        report.parts_max_abs_diff
    );
}

#[test]
fn bad_inputs_are_typed_errors_that_say_what_is_wrong() {
    let model = model("clip-tiny-quick-gelu");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("visual.int8.onnx");
    let wrong = images(2, 0, 24);
    match write_int8(&model, &wrong, &path, &Int8Options::default(), None) {
        Err(e @ ExportError::Calibration(_)) => {
            let msg = e.to_string();
            assert!(
                msg.contains("[2, 3, 24, 24]") && msg.contains("32"),
                "{msg}"
            );
        }
        other => panic!("expected a calibration error, got {other:?}"),
    }
    let nan = (images(1, 0, 32) * f64::NAN).unwrap();
    let err = write_int8(&model, &nan, &path, &Int8Options::default(), None).unwrap_err();
    assert!(
        matches!(err, ExportError::Calibration(_)) && err.to_string().contains("NaN"),
        "{err}"
    );
    let zero_batch = Int8Options {
        batch_size: 0,
        ..Int8Options::default()
    };
    let err = write_int8(&model, &images(1, 0, 32), &path, &zero_batch, None).unwrap_err();
    assert!(
        matches!(
            err,
            ExportError::Option {
                name: "batch_size",
                ..
            }
        ),
        "{err}"
    );
    let missing = dir.path().join("no/such/dir/visual.onnx");
    match write_fp32(&model, &missing) {
        Err(e @ ExportError::Io { .. }) => assert!(e.to_string().contains("no/such/dir"), "{e}"),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert!(!path.exists(), "a failed export left a file behind");
    let clip = Clip::load(&fixture("clip-tiny-quick-gelu"), &Device::Cpu).unwrap();
    let classes = common::CLASSES.iter().map(|c| c.to_string()).collect();
    let cfg = HeadConfig {
        kind: HeadKind::Coop,
        context_len: 4,
        ..HeadConfig::default()
    };
    let coop = Model::new(clip, classes, cfg, &Device::Cpu, DType::F32).unwrap();
    let err = visual::fp32_graph(&coop).unwrap_err();
    assert!(matches!(err, ExportError::NoParts(HeadKind::Coop)), "{err}");
    assert!(err.to_string().contains("no UnA parts"), "{err}");
}

/// The bundle's scorer of `model`'s head, read back through the runtime's parser.
fn scorer(model: &Model) -> xrvlm_runtime::scoring::FoldedCrm {
    use xrvlm_train::export::bundle::prompts::{read_scorer, write_prompts};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prompts.safetensors");
    write_prompts(model, &path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o644,
            "prompts file readable by the runtime's user"
        );
    }
    read_scorer(model, &path).unwrap()
}

#[test]
fn agreement_check_scores_both_graphs_and_only_falls_back_when_short_of_the_target() {
    let model = model("clip-tiny-quick-gelu");
    let crm = scorer(&model);
    let calibration = images(9, 50, 32);
    // No target: the check measures and changes nothing.
    let lax = Int8Options {
        min_agreement: 0.0,
        ..Int8Options::default()
    };
    let (_, report) =
        xrvlm_train::export::int8::int8_graph(&model, &calibration, &lax, Some(&crm)).unwrap();
    let fb = report.fallback.clone().expect("the check ran");
    assert_eq!(fb.images, 9);
    assert!(fb.floated.is_empty());
    assert!(
        fb.before.mean_sq_error > 0.0,
        "int8 logits differ from fp32"
    );
    assert_eq!(report.int8_layers(), 18, "{report}");
    // The strictest target is always met, by as few float layers as the search finds.
    let strict = Int8Options {
        min_agreement: 1.0,
        ..Int8Options::default()
    };
    let (proto, report) =
        xrvlm_train::export::int8::int8_graph(&model, &calibration, &strict, Some(&crm)).unwrap();
    let fb = report.fallback.clone().unwrap();
    assert_eq!(fb.after.top1, 1.0, "{report}");
    assert_eq!(report.int8_layers() + fb.floated.len(), 18, "{report}");
    let floated = report
        .layers
        .iter()
        .filter(|l| {
            l.kept_float
                .as_deref()
                .is_some_and(|w| w.contains("agreement"))
        })
        .count();
    assert_eq!(floated, fb.floated.len());
    let n = proto
        .graph
        .unwrap()
        .node
        .iter()
        .filter(|n| n.op_type == "MatMulInteger")
        .count();
    assert_eq!(n, report.int8_layers());
}

/// A tiny ModifiedResNet CLIP in open_clip's layout, written to `dir`: random batch-norm
/// affines and running statistics (so the folding is tested), the tiny fixture's tokenizer.
fn resnet_clip(dir: &Path) {
    use candle_core::Var;
    use xrvlm_train::clip::open_clip::{text_to_openai, OpenClipConfig, CONFIG_FILE, MODEL_FILE};
    use xrvlm_train::clip::resnet::ResNetConfig;
    use xrvlm_train::clip::{Activation, ClipConfig, ImageConfig, TextConfig};
    use xrvlm_train::pretrain::init::init_params;
    use xrvlm_train::pretrain::resnet_init::init_tower;
    let vision = ResNetConfig {
        image_size: 64,
        layers: [1, 2, 1, 1],
        width: 8,
        heads: 4,
        embed_dim: 24,
    };
    let text = TextConfig {
        vocab_size: 716,
        hidden_size: 32,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        max_position_embeddings: 77,
        hidden_act: Activation::QuickGelu,
        layer_norm_eps: 1e-5,
        eos_token_id: 715,
        pad_token_id: 715,
    };
    let tower = init_tower(&vision, 4, &Device::Cpu).unwrap();
    for (i, (name, var)) in tower.params.named().into_iter().enumerate() {
        let is_bn = name.contains(".bn") || name.contains("downsample.2");
        if is_bn && var.rank() == 1 {
            let mean = if name.ends_with("weight") { 1.0 } else { 0.0 };
            var.set(
                &spread(mean, 0.2, var.dims())
                    .affine(1.0, 0.01 * i as f64)
                    .unwrap(),
            )
            .unwrap();
        }
    }
    for (name, var) in tower.buffers.named() {
        let value = if name.ends_with("running_var") {
            spread(1.0, 0.3, var.dims()).abs().unwrap()
        } else {
            spread(0.0, 0.5, var.dims())
        };
        Var::from_tensor(var.as_tensor())
            .unwrap()
            .set(&value)
            .unwrap();
    }
    let clip = ClipConfig {
        text: text.clone(),
        vision: ImageConfig::ResNet(vision.clone()),
        projection_dim: vision.embed_dim,
    };
    let text_params = init_params(&clip, 5, &Device::Cpu).unwrap();
    let mut tensors = text_to_openai(
        text_params
            .named()
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().clone()))
            .collect(),
    )
    .unwrap();
    tensors.extend(tower.named_tensors());
    std::fs::create_dir_all(dir).unwrap();
    candle_core::safetensors::save(
        &tensors
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>(),
        dir.join(MODEL_FILE),
    )
    .unwrap();
    let config = OpenClipConfig {
        vision,
        text: Some(text),
        mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
        std: [0.268_629_54, 0.261_302_6, 0.275_777_1],
    };
    std::fs::write(dir.join(CONFIG_FILE), config.to_json().to_string()).unwrap();
    std::fs::copy(
        fixture("clip-tiny-quick-gelu").join("tokenizer.json"),
        dir.join("tokenizer.json"),
    )
    .unwrap();
}

#[test]
fn resnet_graphs_match_candle_fp32_and_run_int8_convolutions() {
    let tmp = tempfile::tempdir().unwrap();
    let clip_dir = tmp.path().join("rn-clip");
    resnet_clip(&clip_dir);
    let model = model_on(&clip_dir, 64);
    // fp32: the folded batch norms and the folded value path are exact up to rounding.
    let path = tmp.path().join("visual.onnx");
    write_fp32(&model, &path).unwrap();
    let plan = optimized(&path);
    for (n, first) in [(1, 0), (3, 5)] {
        let x = images(n, first, 64);
        let want = candle_parts(&model, &x);
        let (dims, got) = run(&plan, &x);
        assert_eq!(dims, want.dims());
        let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let diff = max_abs_diff(&got, &want);
        eprintln!("resnet: batch {n}: fp32 graph vs candle max |diff| {diff:.3e}");
        assert!(diff < FP32_TOLERANCE, "batch {n}: max |diff| {diff}");
    }
    // int8: every convolution and the value path quantized, close to fp32 on fresh images.
    let path = tmp.path().join("visual.int8.onnx");
    let report = write_int8(
        &model,
        &images(12, 100, 64),
        &path,
        &Int8Options::default(),
        None,
    )
    .unwrap();
    eprintln!("resnet:\n{report}");
    // 3 stem + 5 bottlenecks × 3 + 4 downsamples (stage 2's second block has none) + values.
    assert_eq!(report.layers.len(), 3 + 15 + 4 + 1);
    assert!(report.int8_layers() >= 20, "{report}");
    let plan = optimized(&path);
    // tract lowers ConvInteger to an im2col and a product with an i32-accumulating kernel.
    let int8 = int8_products(&plan);
    eprintln!("resnet: tract int8 products: {}", int8.len());
    assert!(int8.len() >= report.int8_layers(), "{int8:?}");
    let min = min_image_cosine(&model, &plan, 64);
    eprintln!("resnet: int8 vs candle fp32, held-out images: min cosine {min:.6}");
    assert!(min >= INT8_MIN_COSINE, "min cosine {min}");
    // Per-channel smoothing: some convolutions take it (their QuantizeLinear has one step per
    // channel, which tract runs), and the whole graph ends closer to fp32 than without it.
    assert!(
        report.layers.iter().any(|l| l.smoothing.is_some()),
        "{report}"
    );
    let smoothed = mean_error(&image_cosines(&model, &plan, 64));
    let path = tmp.path().join("visual.plain.int8.onnx");
    let plain = Int8Options {
        smoothing_alphas: Vec::new(),
        ..Int8Options::default()
    };
    let report = write_int8(&model, &images(12, 100, 64), &path, &plain, None).unwrap();
    assert!(report.layers.iter().all(|l| l.smoothing.is_none()));
    let plain = mean_error(&image_cosines(&model, &optimized(&path), 64));
    eprintln!("resnet: 1 − mean cosine to fp32: smoothed {smoothed:.3e}, plain {plain:.3e}");
    assert!(smoothed < plain, "smoothed {smoothed} plain {plain}");
}

/// 1 − the mean of `cosines`.
fn mean_error(cosines: &[f64]) -> f64 {
    1.0 - cosines.iter().sum::<f64>() / cosines.len() as f64
}

#[test]
fn both_graphs_name_unas_softmax_maps_for_the_runtime_and_keep_their_parts() {
    use std::num::NonZeroUsize;
    use xrvlm_runtime::engine::{ModelShape, Plan, PlanOptions, Precision};
    use xrvlm_train::export::una::PART_MAPS;

    let model = model("clip-tiny-quick-gelu");
    let dir = tempfile::tempdir().unwrap();
    let fp32 = dir.path().join("visual.onnx");
    let int8 = dir.path().join("visual.int8.onnx");
    write_fp32(&model, &fp32).unwrap();
    let calibration = images(12, 100, 32);
    write_int8(&model, &calibration, &int8, &Int8Options::default(), None).unwrap();
    let image = images(1, 7, 32)
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let shape = ModelShape {
        image_size: 32,
        parts: 3,
        embed: 24,
    };
    for (path, precision) in [(&fp32, Precision::Fp32), (&int8, Precision::Int8)] {
        let options = PlanOptions {
            precision,
            threads: NonZeroUsize::MIN,
        };
        let onnx = std::fs::read(path).unwrap();
        let plain = Plan::from_onnx(path, &onnx, shape, options).unwrap();
        let explained = Plan::from_onnx_explained(path, &onnx, shape, options, PART_MAPS)
            .unwrap_or_else(|e| panic!("{precision}: {e}"));
        let (parts, maps) = explained.run_explained(&image).unwrap();
        assert_eq!(parts, plain.run(&image).unwrap(), "{precision}");
        assert_eq!(maps.parts(), 3);
        assert_eq!(
            maps.grid(),
            4,
            "32 px in patches of 8, after the class token"
        );
        for (part, map) in maps.maps().enumerate() {
            let sum: f32 = map.iter().sum::<f32>() + maps.off_grid(part);
            assert!((sum - 1.0).abs() < 1e-5, "{precision}: a map sums to {sum}");
        }
    }
}
