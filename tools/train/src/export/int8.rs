//! `visual.int8.onnx`: the image graph with its linear layers in int8 QOperator form
//! ([`super::linear`]), built for tract's fast int8 path (`performance.md`): per-output-channel
//! symmetric int8 weights quantized once here, and statically calibrated symmetric activation
//! scales, so that no weight zero point and no per-run weight sums are left in the graph.
//! LayerNorm, softmax, the MLP activation, residual adds, the attention score matmuls and UnA
//! stay f32 (`xrvlm-method.md` §11).
//!
//! Steps: (1) the fp32 graph with every linear layer's input exposed runs in tract over the
//! calibration images and records their ranges; (2) each layer's int8 forms (one step for the
//! whole input and, for a convolution, each per-channel smoothing of [`super::smoothing`]) are
//! compared with its float form on those inputs, the closest is kept, and a layer whose output
//! cosine is below
//! [`Int8Options::min_layer_cosine`] stays float; (3) given the bundle's CRM, the
//! classification itself is checked ([`super::agreement`]): while the int8 top-1 class agrees
//! with fp32 on fewer than [`Int8Options::min_agreement`] of the calibration images, the most
//! sensitive int8 layers go back to float; (4) the int8 graph is built and, with the fp32
//! graph, run in tract on the calibration images for the report's end-to-end figures.
//!
//! Loading it in tract 0.23.9: fix the batch before optimizing (`set_input_fact` with a
//! concrete `N`). With `N` symbolic, tract's matmul lowering (`einsum_matmul::detect_rule`)
//! ranks a symbolic axis above every static one and makes the batch the int8 product's row
//! axis, looping over the tokens: on ViT-B/16 at batch 1 the int8 plan then ran 3.8× slower
//! than fp32; with `N = 1` it runs one `197 × K` int8 product per layer. (The f32 `MatMul`
//! lowering merges batch and tokens and is not affected.)

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use candle_core::Tensor;
use tract_onnx::pb::ModelProto;

use xrvlm_runtime::engine::Precision;
use xrvlm_runtime::scoring::FoldedCrm;

use super::agreement::{fall_back, AgreementProbe, FallbackReport};
use super::calibrate::{collect_ranges, layer_errors, ActivationRange, LayerError, RangeStats};
use super::linear::{LinearForm, LinearId, LinearPlan};
use super::quant::ActivationQuant;
use super::smoothing::{ChannelSmoothing, DEFAULT_ALPHAS};
use super::source::{Layer, VisualSource};
use super::tract_run::{device_plan, run_plan, TractGraph};
use super::visual::{build, write_graph, Written};
use super::ExportError;
use crate::model::Model;

/// How the int8 graph is made.
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Options {
    /// How each quantized input's range is taken from the calibration values.
    pub range: ActivationRange,
    /// A layer whose int8 output has a lower cosine to its float output (on the calibration
    /// inputs) stays float.
    pub min_layer_cosine: f64,
    /// Layers kept float whatever their error.
    pub keep_float: Vec<LinearId>,
    /// Least top-1 agreement of int8 with fp32 on the calibration images (checked when the
    /// CRM is given); below it, the most sensitive int8 layers go back to float.
    pub min_agreement: f64,
    /// Calibration images per tract run (bounds the memory of the exposed activations).
    pub batch_size: usize,
    /// Migration strengths of the per-channel smoothing tried on each convolution
    /// ([`super::smoothing`]); the form closest to float on the calibration inputs is kept,
    /// smoothed or not. Empty: no smoothing.
    pub smoothing_alphas: Vec<f32>,
}

impl Default for Int8Options {
    fn default() -> Self {
        Self {
            range: ActivationRange::MaxAbs,
            min_layer_cosine: DEFAULT_MIN_LAYER_COSINE,
            keep_float: Vec::new(),
            min_agreement: DEFAULT_MIN_AGREEMENT,
            batch_size: 4,
            smoothing_alphas: DEFAULT_ALPHAS.to_vec(),
        }
    }
}

/// Per-channel int8 weights with a per-tensor int8 input typically reach a cosine of 0.9999
/// on a transformer layer; 0.999 leaves room for that and still catches a layer whose
/// activations have outliers large enough to crush the rest of its range.
pub const DEFAULT_MIN_LAYER_COSINE: f64 = 0.999;

/// The bundle contract's target for int8 against fp32 (top-1 agreement, `models/BUNDLE.md`).
pub const DEFAULT_MIN_AGREEMENT: f64 = 0.99;

/// What happened to one linear layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerReport {
    /// The layer.
    pub id: LinearId,
    /// The form it has in the graph.
    pub form: LinearForm,
    /// Largest |input| on the calibration set.
    pub input_max_abs: f32,
    /// The range the int8 scale covers (of the smoothed input when smoothed).
    pub input_range: f32,
    /// The migration strength α of its per-channel smoothing, if smoothed.
    pub smoothing: Option<f32>,
    /// Its int8 form against its float form on the calibration inputs.
    pub error: LayerError,
    /// Why it stayed float, if it did.
    pub kept_float: Option<String>,
}

/// The int8 graph's quantization and how far it is from fp32.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantReport {
    /// Calibration images used.
    pub calibration_images: usize,
    /// Every linear layer, in graph order.
    pub layers: Vec<LayerReport>,
    /// Smallest cosine between int8 and fp32 `parts` of one image (flattened `M·D`), over the
    /// calibration images, both graphs run in tract.
    pub parts_cosine_min: f64,
    /// Mean of the same cosines.
    pub parts_cosine_mean: f64,
    /// Largest |int8 − fp32| over every `parts` value of the calibration images.
    pub parts_max_abs_diff: f32,
    /// tract's int8 matrix products in the optimized int8 graph, `(node, kernel)`
    /// ([`xrvlm_runtime::engine::Plan::int8_products`] of the device's plan).
    pub tract_int8_matmuls: Vec<(String, String)>,
    /// The classification check and its fallback, when the CRM was given.
    pub fallback: Option<FallbackReport>,
    /// The written file, once written.
    pub written: Option<Written>,
}

impl QuantReport {
    /// Number of int8 layers.
    pub fn int8_layers(&self) -> usize {
        self.layers
            .iter()
            .filter(|l| matches!(l.form, LinearForm::Int8 { .. }))
            .count()
    }

    /// The layers that stayed float.
    pub fn float_layers(&self) -> Vec<LinearId> {
        self.layers
            .iter()
            .filter(|l| l.form == LinearForm::Float)
            .map(|l| l.id)
            .collect()
    }
}

impl fmt::Display for QuantReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "int8: {} of {} linear layers, calibrated on {} images; parts cosine to fp32 \
             min {:.6} mean {:.6}, max |diff| {:.3e}",
            self.int8_layers(),
            self.layers.len(),
            self.calibration_images,
            self.parts_cosine_min,
            self.parts_cosine_mean,
            self.parts_max_abs_diff
        )?;
        if let Some(fb) = &self.fallback {
            writeln!(
                f,
                "top-1 agreement with fp32 on the {} calibration images: {:.2} % as gated per \
                 layer, {:.2} % after {} layer(s) went back to float (target {:.2} %)",
                fb.images,
                100.0 * fb.before.top1,
                100.0 * fb.after.top1,
                fb.floated.len(),
                100.0 * fb.target
            )?;
        }
        let mut kernels: Vec<&str> = self
            .tract_int8_matmuls
            .iter()
            .map(|(_, k)| k.as_str())
            .collect();
        kernels.sort_unstable();
        kernels.dedup();
        writeln!(
            f,
            "tract runs {} int8 matrix products (kernels: {})",
            self.tract_int8_matmuls.len(),
            kernels.join(", ")
        )?;
        writeln!(
            f,
            "| layer | form | max abs in | range | smoothing α | layer cosine | rel. error |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|")?;
        for l in &self.layers {
            let form = match (&l.form, &l.kept_float) {
                (LinearForm::Int8 { .. }, _) => "int8".to_string(),
                (LinearForm::Float, Some(why)) => format!("float ({why})"),
                (LinearForm::Float, None) => "float".to_string(),
            };
            let alpha = l.smoothing.map_or("–".to_string(), |a| format!("{a}"));
            writeln!(
                f,
                "| {} | {form} | {:.4} | {:.4} | {alpha} | {:.6} | {:.2e} |",
                l.id, l.input_max_abs, l.input_range, l.error.cosine, l.error.relative
            )?;
        }
        Ok(())
    }
}

/// Builds the int8 graph of `model`'s image path, calibrated on `calibration` (preprocessed
/// images `(N, 3, S, S)`, e.g. training images through the test transform). With `crm` (the
/// head the bundle scores with), the top-1 agreement with fp32 is held to
/// [`Int8Options::min_agreement`] on the calibration images.
pub fn int8_graph(
    model: &Model,
    calibration: &Tensor,
    options: &Int8Options,
    crm: Option<&FoldedCrm>,
) -> Result<(ModelProto, QuantReport), ExportError> {
    check_options(options)?;
    let src = VisualSource::from_model(model)?;
    check_calibration(&src, calibration)?;
    let probe_graph = build(&src, &LinearPlan::float(), true, "calibration")?;
    let runner = TractGraph::load(&probe_graph.model, "calibration")?;
    let batch = options.batch_size;
    let ranges = collect_ranges(&runner, &probe_graph.probes, calibration, batch)?;
    let candidates: BTreeMap<LinearId, Vec<Candidate>> = ranges
        .iter()
        .map(|(&id, stats)| (id, candidates(&src, id, stats, options)))
        .collect();
    let forms = candidates
        .iter()
        .map(|(&id, c)| (id, c.iter().map(|c| c.form.clone()).collect()))
        .collect();
    let errors = layer_errors(
        &runner,
        &probe_graph.probes,
        &src,
        &forms,
        calibration,
        batch,
    )?;
    let chosen = choose(candidates, &errors);
    drop(runner);
    let mut layers = decide(&src, &ranges, &chosen, options);
    let mut plan = LinearPlan::float();
    for l in &layers {
        plan.set(l.id, l.form.clone());
    }
    let fallback = match crm {
        Some(crm) => {
            let probe = AgreementProbe::new(&src, crm, calibration, batch)?;
            let (checked, fb) = fall_back(&probe, &plan, options.min_agreement)?;
            mark_floated(&mut layers, &fb);
            plan = checked;
            Some(fb)
        }
        None => None,
    };
    let int8 = build(&src, &plan, false, INT8_DOC)?.model;
    let fp32 = build(&src, &LinearPlan::float(), false, "fp32")?.model;
    let mut report = QuantReport {
        calibration_images: calibration.dim(0)?,
        layers,
        parts_cosine_min: 0.0,
        parts_cosine_mean: 0.0,
        parts_max_abs_diff: 0.0,
        tract_int8_matmuls: Vec::new(),
        fallback,
        written: None,
    };
    compare_parts(&src, &fp32, &int8, calibration, batch, &mut report)?;
    Ok((int8, report))
}

/// Builds the int8 graph (see [`int8_graph`]) and writes it to `path` (atomically).
pub fn write_int8(
    model: &Model,
    calibration: &Tensor,
    path: &Path,
    options: &Int8Options,
    crm: Option<&FoldedCrm>,
) -> Result<QuantReport, ExportError> {
    let (proto, mut report) = int8_graph(model, calibration, options, crm)?;
    let nodes = proto.graph.as_ref().map_or(0, |g| g.node.len());
    let built = super::visual::BuiltGraph {
        model: proto,
        probes: Vec::new(),
        nodes,
    };
    report.written = Some(write_graph(&built, path)?);
    Ok(report)
}

fn check_options(o: &Int8Options) -> Result<(), ExportError> {
    if o.batch_size == 0 {
        return Err(ExportError::Option {
            name: "batch_size",
            msg: "must be at least 1".into(),
        });
    }
    if !(-1.0..=1.0).contains(&o.min_layer_cosine) {
        return Err(ExportError::Option {
            name: "min_layer_cosine",
            msg: format!("{} is not a cosine (−1 … 1)", o.min_layer_cosine),
        });
    }
    if !(0.0..=1.0).contains(&o.min_agreement) {
        return Err(ExportError::Option {
            name: "min_agreement",
            msg: format!("{} is not a fraction (0 … 1)", o.min_agreement),
        });
    }
    if let ActivationRange::Percentile(p) = o.range {
        if !(p > 0.0 && p <= 100.0) {
            return Err(ExportError::Option {
                name: "range",
                msg: format!("percentile {p} is outside (0, 100]"),
            });
        }
    }
    Ok(())
}

fn check_calibration(src: &VisualSource, images: &Tensor) -> Result<(), ExportError> {
    let s = src.image_size();
    let want = [3, s, s];
    match images.dims() {
        [n, rest @ ..] if *n > 0 && rest == want => {}
        dims => {
            return Err(ExportError::Calibration(format!(
                "shape {dims:?}, expected (N, {}, {}, {}) with N ≥ 1",
                want[0], want[1], want[2]
            )))
        }
    }
    let finite = images
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_scalar::<f32>()?
        .is_finite();
    if !finite {
        return Err(ExportError::Calibration(
            "contain NaN or infinite values".into(),
        ));
    }
    Ok(())
}

/// One int8 form a layer could take, with the range its step covers.
struct Candidate {
    form: LinearForm,
    range: f32,
}

/// The int8 forms tried for layer `id`: one step for the whole input, and for a convolution
/// each smoothing strength of the options. Never-negative convolution inputs get zero point 0
/// (`ConvInteger` takes any); the dense layers keep 128, which the runtime's int8 kernels are
/// built for.
fn candidates(
    src: &VisualSource,
    id: LinearId,
    stats: &RangeStats,
    options: &Int8Options,
) -> Vec<Candidate> {
    let conv = match src.layer(id) {
        Some(Layer::Conv(c)) => Some(c),
        _ => None,
    };
    let non_negative = conv.is_some() && stats.non_negative();
    let range = stats.range(options.range);
    let mut out = vec![Candidate {
        form: LinearForm::int8(ActivationQuant::for_range(range, non_negative)),
        range,
    }];
    let channel_max = stats.channel_max();
    if let Some(conv) = conv.filter(|c| c.in_channels() == channel_max.len()) {
        for &alpha in &options.smoothing_alphas {
            let smoothing = ChannelSmoothing::migrate(conv, channel_max, alpha);
            let range = smoothing.range(channel_max);
            out.push(Candidate {
                form: LinearForm::Int8 {
                    input: ActivationQuant::for_range(range, non_negative),
                    smoothing: Some(smoothing),
                },
                range,
            });
        }
    }
    out
}

/// Each layer's candidate closest to float on the calibration inputs (the least relative
/// error; the first on a tie, i.e. unsmoothed), with its error.
fn choose(
    candidates: BTreeMap<LinearId, Vec<Candidate>>,
    errors: &BTreeMap<LinearId, Vec<LayerError>>,
) -> BTreeMap<LinearId, (Candidate, LayerError)> {
    candidates
        .into_iter()
        .filter_map(|(id, cands)| {
            let errs = errors.get(&id)?;
            let best = cands.into_iter().zip(errs.iter().copied()).reduce(|a, b| {
                if b.1.relative < a.1.relative {
                    b
                } else {
                    a
                }
            })?;
            Some((id, best))
        })
        .collect()
}

/// The form of every layer: its chosen int8 form unless the options keep it float or its
/// error is too large.
fn decide(
    src: &VisualSource,
    ranges: &BTreeMap<LinearId, RangeStats>,
    chosen: &BTreeMap<LinearId, (Candidate, LayerError)>,
    o: &Int8Options,
) -> Vec<LayerReport> {
    src.linear_ids()
        .into_iter()
        .map(|id| {
            let stats = ranges.get(&id).cloned().unwrap_or_default();
            let error = chosen.get(&id).map_or(
                LayerError {
                    cosine: f64::NAN,
                    relative: f64::NAN,
                },
                |c| c.1,
            );
            let kept_float = if o.keep_float.contains(&id) {
                Some("kept float by option".to_string())
            } else if error.cosine.is_nan() || error.cosine < o.min_layer_cosine {
                Some(format!(
                    "cosine {:.6} < {}",
                    error.cosine, o.min_layer_cosine
                ))
            } else {
                None
            };
            let candidate = chosen.get(&id).map(|c| &c.0);
            let form = match (&kept_float, candidate) {
                (None, Some(c)) => c.form.clone(),
                _ => LinearForm::Float,
            };
            let smoothing = match candidate.map(|c| &c.form) {
                Some(LinearForm::Int8 {
                    smoothing: Some(s), ..
                }) => Some(s.alpha),
                _ => None,
            };
            LayerReport {
                id,
                form,
                input_max_abs: stats.max_abs(),
                input_range: candidate.map_or(stats.range(o.range), |c| c.range),
                smoothing,
                error,
                kept_float,
            }
        })
        .collect()
}

/// Records in `layers` the ones the fallback sent back to float.
fn mark_floated(layers: &mut [LayerReport], fb: &FallbackReport) {
    for l in layers.iter_mut() {
        if let Some((_, sensitivity)) = fb.floated.iter().find(|(id, _)| *id == l.id) {
            l.form = LinearForm::Float;
            l.kept_float = Some(format!(
                "top-1 agreement fallback, sensitivity {sensitivity:.2e}"
            ));
        }
    }
}

/// Runs both graphs in tract on the calibration images and fills the report's `parts`
/// figures.
fn compare_parts(
    src: &VisualSource,
    fp32: &ModelProto,
    int8: &ModelProto,
    images: &Tensor,
    batch: usize,
    report: &mut QuantReport,
) -> Result<(), ExportError> {
    let shape = src.model_shape();
    let fp32 = device_plan(fp32, shape, Precision::Fp32, "fp32")?;
    let int8 = device_plan(int8, shape, Precision::Int8, "int8")?;
    report.tract_int8_matmuls = int8.int8_products();
    let (mut min, mut sum, mut max_diff, mut count) = (f64::INFINITY, 0.0, 0f32, 0usize);
    let n = images.dim(0)?;
    let mut start = 0;
    while start < n {
        let len = batch.min(n - start);
        let x = images.narrow(0, start, len)?;
        let a = run_plan(&fp32, &x, "fp32")?;
        let b = run_plan(&int8, &x, "int8")?;
        let per_image = a.len() / len;
        for (pa, pb) in a.chunks(per_image).zip(b.chunks(per_image)) {
            let c = cosine(pa, pb);
            min = min.min(c);
            sum += c;
            count += 1;
            for (x, y) in pa.iter().zip(pb) {
                max_diff = max_diff.max((x - y).abs());
            }
        }
        start += len;
    }
    report.parts_cosine_min = min;
    report.parts_cosine_mean = sum / count.max(1) as f64;
    report.parts_max_abs_diff = max_diff;
    Ok(())
}

/// Cosine of two vectors (1 when both are zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    let norms = (na * nb).sqrt();
    if norms > 0.0 {
        dot / norms
    } else {
        1.0
    }
}

const INT8_DOC: &str = "XR-VLM image path (frozen CLIP image tower, both token streams, and UnA \
                        in eval mode), int8 linear layers (QuantizeLinear u8 -> MatMulInteger / \
                        ConvInteger s8 per-channel weights -> Cast -> Mul -> Add; convolution \
                        inputs may have per-channel steps), statically calibrated: \
                        image (N,3,S,S) -> parts (N,M,D)";
