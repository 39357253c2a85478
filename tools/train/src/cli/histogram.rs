//! `xrvlm-train histogram-baseline`: the nearest-centroid colour-histogram classifier, trained on
//! one ImageFolder and scored on another; the floor a part-aware model must rise far above.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::data::image_folder::load_image_folder;
use crate::synth::histogram_nearest_centroid;

/// Arguments of `histogram-baseline`.
#[derive(Debug, Args)]
pub struct HistogramArgs {
    /// Training ImageFolder.
    #[arg(long)]
    pub train: PathBuf,
    /// Test ImageFolder (same class folders).
    #[arg(long)]
    pub test: PathBuf,
    /// Also write the full report (per class) as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs `histogram-baseline`. Exits 1 when some images were unreadable (they are skipped).
pub fn run(args: HistogramArgs) -> anyhow::Result<ExitCode> {
    let train = load_image_folder(&args.train)?;
    let test = load_image_folder(&args.test)?;
    let report = histogram_nearest_centroid(&train, &test)?;
    println!("{}", report.summary());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if report.skipped_train + report.skipped_test == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
