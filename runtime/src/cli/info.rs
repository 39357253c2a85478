//! `xrvlm info BUNDLE`: verify a bundle and print what its manifest says.
//!
//! Verification is [`Bundle::open`] and, since `info` vouches for the whole bundle, the image
//! models' digests too ([`Bundle::verify_image_models`], which `open` leaves to the loading of
//! the one that runs): a bundle that fails is reported with the file and the problem, and the
//! exit code is 1.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use xrvlm_runtime::bundle::manifest::Manifest;
use xrvlm_runtime::bundle::signing::{self, SignatureStatus};
use xrvlm_runtime::bundle::Bundle;
use xrvlm_runtime::engine::Precision;

use super::Status;

/// Arguments of `info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// The model bundle directory.
    pub bundle: PathBuf,
}

/// Runs `info`.
pub fn run(args: InfoArgs) -> Result<Status> {
    let context = || format!("verifying bundle {}", args.bundle.display());
    let bundle = Bundle::open(&args.bundle).with_context(context)?;
    bundle.verify_image_models().with_context(context)?;
    print!("{}", summary(&bundle));
    println!("{}", signature_line(&bundle));
    Ok(Status::Success)
}

/// Who signed the manifest, as `manifest.sig` says, checked against the manifest (not against
/// any trusted key: `info` has no policy; `run`, `classify` and `check` do).
fn signature_line(bundle: &Bundle) -> String {
    match signing::status(bundle.dir()) {
        SignatureStatus::Unsigned => "signature   unsigned".into(),
        SignatureStatus::Valid(key) => {
            format!("signature   signed by {} (valid): {key}", key.fingerprint())
        }
        SignatureStatus::Invalid(e) => format!("signature   INVALID: {e}"),
    }
}

/// The printed summary.
fn summary(bundle: &Bundle) -> String {
    let m = bundle.manifest();
    let mut out = String::new();
    let _ = writeln!(out, "bundle      {}", bundle.dir().display());
    let _ = writeln!(
        out,
        "model       {} {} (created {}): {}",
        m.model.name, m.model.version, m.model.created, m.model.description
    );
    let b = &m.backbone;
    let _ = writeln!(
        out,
        "backbone    {:?}, {} px, patch {}, width {}, {} layers, {} heads, D = {}, {:?}",
        b.architecture,
        b.image_size,
        b.patch_size,
        b.width,
        b.layers,
        b.heads,
        b.embed_dim,
        b.activation
    );
    let h = &m.head;
    let _ = writeln!(
        out,
        "head        {:?}: M = {} parts, P = {} prompts, D' = {}, H = {}, s = {}",
        h.kind, h.parts, h.prompts, h.crm_dim, h.hidden, h.feature_scale
    );
    let p = &m.preprocess;
    let _ = writeln!(
        out,
        "preprocess  shorter side to {} ({:?}), centre crop {}, mean {:?}, std {:?}",
        p.resize_shorter, p.interpolation, p.crop, p.mean, p.std
    );
    let labels: Vec<&str> = m.labels().collect();
    let _ = writeln!(out, "classes     {}: {}", labels.len(), labels.join(", "));
    let _ = writeln!(out, "files");
    for f in &m.files {
        let precision = f.precision.map(|p| format!(" {p:?}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<28} {:?}{precision}, {} bytes, sha256 {}",
            f.path, f.role, f.bytes, f.sha256
        );
    }
    write_metrics(&mut out, m);
    write_open_world(&mut out, m);
    let pr = &m.provenance;
    let _ = writeln!(
        out,
        "provenance  {}, backbone {}, checkpoint {}, dataset {}",
        pr.trainer, pr.backbone, pr.checkpoint_sha256, pr.dataset_fingerprint
    );
    let available: Vec<String> = Precision::ALL
        .iter()
        .filter(|p| p.is_available() && bundle.visual_path(p.source()).is_some())
        .map(Precision::to_string)
        .collect();
    let _ = writeln!(out, "precisions  {} (on this CPU)", available.join(", "));
    let _ = writeln!(
        out,
        "verified    every file matches its size and SHA-256; model, prompt and golden shapes agree"
    );
    out
}

fn write_open_world(out: &mut String, m: &Manifest) {
    let Some(o) = &m.open_world else {
        let _ = writeln!(
            out,
            "open world  none: no frame is answered unknown for its species"
        );
        return;
    };
    let _ = writeln!(
        out,
        "open world  {} below {} is unknown{}; keeps {:.4} of {} known-species images of {} \
         (target {})",
        o.score,
        o.threshold,
        o.blank_label
            .as_deref()
            .map(|b| format!(" (never when the top class is {b})"))
            .unwrap_or_default(),
        o.recall,
        o.calibration_images,
        o.calibration_set,
        o.target_recall
    );
}

fn write_metrics(out: &mut String, m: &Manifest) {
    let Some(x) = &m.metrics else {
        let _ = writeln!(out, "metrics     none recorded");
        return;
    };
    let _ = writeln!(
        out,
        "metrics     {} ({} images): fp32 top-1 {:.4}, top-5 {:.4}",
        x.eval_set, x.eval_images, x.fp32_top1, x.fp32_top5
    );
    let optional = [
        ("int8 top-1", x.int8_top1),
        ("int8 top-5", x.int8_top5),
        ("int8 agreement", x.int8_agreement),
        ("int8 max |Δlogit|", x.int8_max_abs_logit_diff),
        ("golden fp32 max |Δlogit|", x.golden_fp32_max_abs_logit_diff),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            let _ = writeln!(out, "            {name} {v}");
        }
    }
}
