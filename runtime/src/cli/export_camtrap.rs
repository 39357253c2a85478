//! `xrvlm export-camtrap LOG --out DIR [--profile PROFILE]`: a Camtrap DP 1.0.2 package from a
//! detection log.
//!
//! Deployment and classes come from the log's start records; `--profile` replaces them with
//! the profile's `[deployment]` and its bundle's classes (to correct coordinates after the
//! fact, or for a log without start records). Lines of the log that are not records, and
//! records the package cannot hold, are reported on standard error and the exit code is 2.

use std::path::PathBuf;

use anyhow::{Context, Result};
use xrvlm_runtime::bundle::manifest::{Manifest, MANIFEST_FILE};
use xrvlm_runtime::field::camtrap::{self, ClassList, ExportOptions};
use xrvlm_runtime::field::config::Profile;
use xrvlm_runtime::field::detection_log::read_records;
use xrvlm_runtime::timestamp::rfc3339_utc;

use super::Status;

/// Arguments of `export-camtrap`.
#[derive(Debug, clap::Args)]
pub struct ExportCamtrapArgs {
    /// The detection log (`OUTPUT/detections.jsonl`).
    pub log: PathBuf,
    /// Folder the package is written to (the output folder itself keeps media paths valid).
    #[arg(long)]
    pub out: PathBuf,
    /// A board profile whose deployment and bundle classes replace the log's.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Contributor named in the package.
    #[arg(long, default_value = "xrvlm field camera")]
    pub contributor: String,
    /// Project title named in the package.
    #[arg(long, default_value = "Camera-trap detections by xrvlm")]
    pub project_title: String,
}

/// Runs `export-camtrap`.
pub fn run(args: ExportCamtrapArgs) -> Result<Status> {
    let (entries, problems) = read_records(&args.log)?;
    for p in &problems {
        eprintln!(
            "xrvlm: {}:{}: not a record, skipped: {}",
            args.log.display(),
            p.line,
            p.error
        );
    }
    let mut options = ExportOptions {
        created: rfc3339_utc(std::time::SystemTime::now()),
        contributor: args.contributor,
        project_title: args.project_title,
        deployment: None,
        classes: None,
    };
    if let Some(path) = &args.profile {
        let profile = Profile::load(path)?;
        let manifest_path = profile.model.bundle.join(MANIFEST_FILE);
        let manifest = Manifest::load(&manifest_path).with_context(|| {
            format!(
                "reading the classes of the profile's bundle {}",
                profile.model.bundle.display()
            )
        })?;
        options.deployment = Some(profile.deployment.clone());
        options.classes = Some(ClassList {
            classes: manifest.classes,
            blank_label: profile.decision.blank_label.clone(),
        });
    }
    let summary = camtrap::export(&entries, &options, &args.out)
        .with_context(|| format!("exporting {}", args.log.display()))?;
    for warning in &summary.warnings {
        eprintln!("xrvlm: {}: {warning}", args.log.display());
    }
    println!(
        "{}: {} deployment(s), {} media, {} observation(s) (Camtrap DP {})",
        args.out.display(),
        summary.deployments,
        summary.media,
        summary.observations,
        camtrap::CAMTRAP_DP_VERSION
    );
    Ok(if problems.is_empty() && summary.warnings.is_empty() {
        Status::Success
    } else {
        Status::SomeInputsFailed
    })
}
