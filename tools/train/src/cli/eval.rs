//! `xrvlm-train eval`: evaluates a trained checkpoint on its run's evaluation set, or on another
//! ImageFolder, and prints top-1 / top-5, per-class accuracy and the worst confusions.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use xrvlm_runtime::preprocess::Preprocess;

use crate::data::image_folder::load_image_folder;
use crate::device::{self, DeviceChoice};
use crate::train::evaluate::evaluate;
use crate::train::trainer::{eval_set, load_trained};

/// Arguments of `eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A checkpoint written by `xrvlm-train train` (checkpoint.safetensors).
    pub checkpoint: PathBuf,
    /// Evaluate on this ImageFolder instead of the run's evaluation set.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Images per batch.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Write the full evaluation (per class, confusion matrix) as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
}

/// Runs `eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let probe = device::open(args.device, device::Precision::F32)?;
    let (run, model) = load_trained(&args.checkpoint, &probe)?;
    let ds = match &args.data {
        Some(dir) => {
            let ds = load_image_folder(dir)?;
            if ds.classes != model.classes {
                bail!(
                    "{}: classes {:?} differ from the checkpoint's {:?}",
                    dir.display(),
                    ds.classes,
                    model.classes
                );
            }
            ds
        }
        None => match eval_set(&run)? {
            Some(ds) => ds,
            None => bail!("the run has no evaluation set; pass --data DIR"),
        },
    };
    let pre = Preprocess::for_image_size(model.clip.config.vision.image_size() as u32);
    let outcome = evaluate(&model, &ds, &pre, args.batch_size, &probe, |_| {})?;
    for f in &outcome.failures {
        eprintln!(
            "warning: skipped unreadable image {}: {}",
            f.path.display(),
            f.error
        );
    }
    println!("{}", outcome.evaluation.to_markdown());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&outcome.evaluation)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if outcome.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
