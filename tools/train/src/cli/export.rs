//! `xrvlm-train export`: a trained XR-VLM run as a model bundle, verified through the runtime.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::export::bundle::{export_bundle, BundleOptions};
use crate::export::calibrate::ActivationRange;
use crate::export::Int8Options;
use crate::open_world::{self, parse_recall, OpenWorldOptions};
use xrvlm_runtime::bundle::signing::{self, SecretKey, SIGNATURE_FILE};
use xrvlm_runtime::open_world::ScoreKind;

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The run's checkpoint (checkpoint.safetensors written by `xrvlm-train train`).
    pub checkpoint: PathBuf,
    /// Bundle directory to write, e.g. models/demo.
    #[arg(long)]
    pub out: PathBuf,
    /// Model name in the manifest (default: the directory's name).
    #[arg(long)]
    pub name: Option<String>,
    /// One line on what the model recognises.
    #[arg(long)]
    pub description: Option<String>,
    /// ImageFolder of calibration images for int8 (default: the run's training images).
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// Calibration images, taken class by class.
    #[arg(long, default_value_t = 256)]
    pub calibration_images: usize,
    /// int8: a layer whose output cosine to its float output (on the calibration images) is
    /// lower stays float.
    #[arg(long, default_value_t = Int8Options::default().min_layer_cosine)]
    pub min_layer_cosine: f64,
    /// int8: least top-1 agreement with fp32 on the calibration images; below it the most
    /// sensitive int8 layers go back to float (0 turns the check off).
    #[arg(long, default_value_t = Int8Options::default().min_agreement)]
    pub min_agreement: f64,
    /// int8: each activation scale covers this percentile of |x| on the calibration images
    /// (e.g. 99.99) instead of the largest |x|: rare outliers saturate, common values gain
    /// resolution.
    #[arg(long, value_parser = parse_percentile)]
    pub activation_percentile: Option<f64>,
    /// int8: never smooth a convolution's input per channel (by default each convolution
    /// takes the smoothing strength, or none, whose int8 output is closest to float).
    #[arg(long)]
    pub no_smoothing: bool,
    /// ImageFolder measured for the manifest's reference figures (default: the run's
    /// evaluation set).
    #[arg(long)]
    pub eval: Option<PathBuf>,
    /// Golden images copied into the bundle with their fp32 logits.
    #[arg(long, default_value_t = 8)]
    pub golden: usize,
    /// tract threads while measuring.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Replace an existing bundle at --out.
    #[arg(long)]
    pub overwrite: bool,
    /// The score that tells a species the model never saw: max_softmax, max_logit, energy,
    /// part_prompt or part_prototype.
    #[arg(long, default_value_t = open_world::DEFAULT_SCORE)]
    pub open_world_score: ScoreKind,
    /// The share of the evaluation set's known-species images the open-world threshold keeps
    /// (the rest would be answered unknown), in (0, 1].
    #[arg(long, default_value_t = open_world::DEFAULT_TARGET_RECALL, value_parser = parse_recall)]
    pub open_world_recall: f64,
    /// The classes' genus, family, order and class, for roll-up answers: a synthetic
    /// dataset's species.json or a CSV file (`label` and any of genus, family, order, class).
    #[arg(long)]
    pub taxonomy: Option<PathBuf>,
    /// Sign the bundle after it is written and verified, with this secret key (`PREFIX.key`
    /// of `xrvlm keygen`): writes manifest.sig, as `xrvlm sign` does.
    #[arg(long, value_name = "KEY")]
    pub sign_key: Option<PathBuf>,
}

/// Runs `export`.
pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    // Read before the export's long run, so a wrong key path fails at once.
    let sign_key = args
        .sign_key
        .as_deref()
        .map(SecretKey::load)
        .transpose()
        .context("--sign-key")?;
    let opts = BundleOptions {
        checkpoint: args.checkpoint,
        out: args.out,
        name: args.name,
        description: args.description,
        calibration: args.calibration,
        calibration_images: args.calibration_images,
        int8: Int8Options {
            min_layer_cosine: args.min_layer_cosine,
            min_agreement: args.min_agreement,
            range: args
                .activation_percentile
                .map_or(ActivationRange::MaxAbs, ActivationRange::Percentile),
            smoothing_alphas: if args.no_smoothing {
                Vec::new()
            } else {
                Int8Options::default().smoothing_alphas
            },
            ..Int8Options::default()
        },
        eval: args.eval,
        golden: args.golden,
        threads: args.threads,
        overwrite: args.overwrite,
        open_world: OpenWorldOptions {
            score: args.open_world_score,
            target_recall: args.open_world_recall,
            ..OpenWorldOptions::default()
        },
        taxonomy: args.taxonomy,
    };
    let report =
        export_bundle(&opts).with_context(|| format!("exporting {}", opts.checkpoint.display()))?;
    println!("{}", report.quant);
    let m = report
        .manifest
        .metrics
        .as_ref()
        .context("export measured no metrics")?;
    let pct = |x: Option<f64>| x.map_or("-".into(), |v| format!("{:.2} %", 100.0 * v));
    println!(
        "{}: {} images of {}: fp32 top-1 {} top-5 {}; int8 top-1 {} top-5 {}; int8 agrees with \
         fp32 on {}; max |Δlogit| int8 {:.4}; golden fp32 vs training crate {:.2e}",
        opts.out.display(),
        m.eval_images,
        m.eval_set,
        pct(Some(m.fp32_top1)),
        pct(Some(m.fp32_top5)),
        pct(m.int8_top1),
        pct(m.int8_top5),
        pct(m.int8_agreement),
        m.int8_max_abs_logit_diff.unwrap_or(f64::NAN),
        m.golden_fp32_max_abs_logit_diff.unwrap_or(f64::NAN),
    );
    if let Some(o) = &report.manifest.open_world {
        println!("{}", open_world::describe(o));
    }
    if let Some(key) = &sign_key {
        // `export_bundle` has opened the written bundle through the runtime: it is verified.
        let signer = signing::sign(&opts.out, key)
            .with_context(|| format!("signing {}", opts.out.display()))?;
        println!(
            "{}: signed by {} ({SIGNATURE_FILE})",
            opts.out.display(),
            signer.fingerprint()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A percentile in (50, 100].
fn parse_percentile(s: &str) -> Result<f64, String> {
    let p: f64 = s
        .parse()
        .map_err(|e| format!("{s:?} is not a number: {e}"))?;
    if p > 50.0 && p <= 100.0 {
        Ok(p)
    } else {
        Err(format!("{p} is not a percentile in (50, 100]"))
    }
}
