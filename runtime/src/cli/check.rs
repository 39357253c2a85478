//! `xrvlm check --bundle DIR [--data SET]`: the accuracy check a device runs on itself.
//!
//! Runs the bundle's golden images (always) and a labelled set (an ImageFolder tree or a JSONL
//! of `{"file", "label"}`) through the precision the device will use, prints top-1/top-5,
//! per-class accuracy with the worst classes' confusions, the share of known-species images
//! not answered `unknown` (a bundle with `[open_world]`), golden parity and latency, compares
//! them with the manifest's reference figures, and writes a JSON report. Exit code 3 when a
//! figure is outside its tolerance (each is named, with by how much), 1 when the check could not
//! run, 0 when it passes.

use std::fmt::Write as _;
use std::io::Write as _;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;
use xrvlm_runtime::bundle::Bundle;
use xrvlm_runtime::check::labelled_set::read_labelled_set;
use xrvlm_runtime::check::measure::{accuracy, golden_parity, Accuracy, GoldenParity};
use xrvlm_runtime::check::verdict::{judge, limits, Limits, Regression, Tolerances};
use xrvlm_runtime::classifier::Classifier;
use xrvlm_runtime::engine::{PlanOptions, Precision};

use super::classify::default_threads;
use super::trust::TrustArgs;
use super::Status;

/// Appends one formatted line to a `String`.
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {
        writeln!($out, $($arg)*).expect("writing to a String cannot fail")
    };
}

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The bundle directory.
    #[arg(long)]
    pub bundle: PathBuf,
    /// A labelled set: an ImageFolder tree (ROOT/<label>/*.jpg) or a JSONL of {"file", "label"}.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The precision the device runs: fp32, int8 or f16.
    #[arg(long, default_value = "int8")]
    pub precision: Precision,
    /// Threads for the image model (default: one per core).
    #[arg(long)]
    pub threads: Option<NonZeroUsize>,
    /// Which signatures the bundle must carry.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Where to write the JSON report (default: check-report.json in the current folder).
    #[arg(long, default_value = "check-report.json")]
    pub report: PathBuf,
    /// Largest golden |Δlogit| against the recorded fp32 logits (default: 1e-4 at fp32, 0.05
    /// at f16, at int8 twice the manifest's int8 max |Δlogit| and at least 0.05).
    #[arg(long)]
    pub max_golden_delta: Option<f64>,
    /// Largest top-1 drop on the labelled set below the manifest's top-1, as a fraction.
    #[arg(long, default_value_t = xrvlm_runtime::check::verdict::DEFAULT_MAX_TOP1_DROP)]
    pub max_top1_drop: f64,
    /// Least top-1 on the labelled set, as a fraction, whatever the manifest says.
    #[arg(long)]
    pub min_top1: Option<f64>,
    /// Largest drop of the labelled set's known-species recall (images not answered unknown)
    /// below the manifest's `open_world.recall`, as a fraction.
    #[arg(long, default_value_t = xrvlm_runtime::check::verdict::DEFAULT_MAX_RECALL_DROP)]
    pub max_recall_drop: f64,
}

/// The JSON report.
#[derive(Debug, Serialize)]
struct Report {
    bundle: String,
    model: String,
    precision: String,
    threads: usize,
    /// The integer matrix kernels tract runs (int8 only).
    int8_kernels: Vec<String>,
    passed: bool,
    golden: GoldenParity,
    labelled: Option<Accuracy>,
    limits: Limits,
    tolerances: Tolerances,
    regressions: Vec<Regression>,
}

/// Runs `check`.
pub fn run(args: CheckArgs) -> Result<Status> {
    let bundle = Bundle::open_trusted(&args.bundle, &args.trust.policy()?)
        .with_context(|| format!("loading bundle {}", args.bundle.display()))?;
    let threads = args.threads.unwrap_or_else(default_threads);
    let options = PlanOptions {
        precision: args.precision,
        threads,
    };
    let classifier = Classifier::new(bundle, options).with_context(|| {
        format!(
            "{}: cannot load the {} image model",
            args.bundle.display(),
            args.precision.as_str()
        )
    })?;
    let manifest = classifier.bundle().manifest().clone();
    let golden = golden_parity(&classifier)?;
    let labelled = match &args.data {
        None => None,
        Some(path) => {
            let labels: Vec<&str> = manifest.labels().collect();
            let set = read_labelled_set(path, &labels)?;
            Some(accuracy(&classifier, &set)?)
        }
    };
    let tolerances = Tolerances {
        max_golden_delta: args.max_golden_delta,
        max_top1_drop: Some(args.max_top1_drop),
        min_top1: args.min_top1,
        max_recall_drop: Some(args.max_recall_drop),
    };
    let limits = limits(&manifest, args.precision, &tolerances);
    let regressions = judge(&limits, &golden, labelled.as_ref());
    let report = Report {
        bundle: args.bundle.display().to_string(),
        model: format!("{} {}", manifest.model.name, manifest.model.version),
        precision: args.precision.as_str().to_string(),
        threads: threads.get(),
        int8_kernels: classifier.plan().int8_kernels(),
        passed: regressions.is_empty(),
        golden,
        labelled,
        limits,
        tolerances,
        regressions,
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(summary(&report).as_bytes())?;
    let json = serde_json::to_string_pretty(&report).expect("the report is plain data");
    std::fs::write(&args.report, json + "\n")
        .with_context(|| format!("{}: cannot write the report", args.report.display()))?;
    writeln!(stdout, "report: {}", args.report.display())?;
    Ok(if report.passed {
        Status::Success
    } else {
        Status::Regression
    })
}

/// `12.34 %`, or `-` when there is no figure.
fn percent(fraction: Option<f64>) -> String {
    fraction.map_or("-".into(), |f| format!("{:.2} %", 100.0 * f))
}

/// The human-readable summary.
fn summary(r: &Report) -> String {
    let mut out = String::new();
    say!(
        &mut out,
        "check {} ({}) at {}, {} threads",
        r.bundle,
        r.model,
        r.precision,
        r.threads
    );
    say!(
        &mut out,
        "int8 kernels: {}",
        if r.int8_kernels.is_empty() {
            "none (a float plan)".to_string()
        } else {
            r.int8_kernels.join(", ")
        }
    );
    say!(
        &mut out,
        "golden: {} images, max |Δlogit| {:.6} (limit {:.6}), top-1 agreement with fp32 {:.1} %",
        r.golden.images,
        r.golden.max_abs_logit_diff,
        r.limits.max_golden_delta,
        100.0 * r.golden.top1_agreement
    );
    if let Some(a) = &r.labelled {
        say!(
            &mut out,
            "labelled set: {} images, top-1 {:.2} %, top-5 {:.2} %{}; latency median {:.1} ms, p90 {:.1} ms",
            a.images,
            100.0 * a.top1,
            100.0 * a.top5,
            r.limits
                .min_top1
                .map(|m| format!(" (accepted from {:.2} %)", 100.0 * m))
                .unwrap_or_default(),
            a.latency_ms.median,
            a.latency_ms.p90
        );
        for c in &a.per_class {
            say!(
                &mut out,
                "  {:<28} {:>5} images  top-1 {:6.2} %",
                c.label,
                c.images,
                100.0 * c.top1
            );
        }
        for label in &a.worst {
            if let Some(c) = a.per_class.iter().find(|c| &c.label == label) {
                let confusions: Vec<String> = c
                    .confused_with
                    .iter()
                    .take(3)
                    .map(|(l, n)| format!("{l} ×{n}"))
                    .collect();
                if !confusions.is_empty() {
                    say!(
                        &mut out,
                        "  worst: {label} mistaken for {}",
                        confusions.join(", ")
                    );
                }
            }
        }
        if let Some(k) = &a.known_recall {
            say!(
                &mut out,
                "unknown species: {:.2} % of {} known-species images kept (not answered unknown); \
                 the manifest's figure {}, accepted from {}",
                100.0 * k.recall,
                k.images,
                percent(r.limits.reference_recall),
                percent(r.limits.min_recall)
            );
        }
        for (path, error) in &a.failures {
            say!(&mut out, "  unreadable: {path}: {error}");
        }
    }
    if r.regressions.is_empty() {
        say!(&mut out, "PASS");
    }
    for regression in &r.regressions {
        say!(
            &mut out,
            "FAIL {}: {}",
            regression.figure,
            regression.message
        );
    }
    out
}
