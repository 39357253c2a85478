//! `xrvlm-train eval-vision`: a `pretrain-vision` checkpoint's species top-1 on a synth directory,
//! overall, by day, by night and per species ([`crate::pretrain::vision_eval`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::pretrain::vision_eval::evaluate_checkpoint;

/// Arguments of `eval-vision`.
#[derive(Debug, Args)]
pub struct EvalVisionArgs {
    /// The `pretrain-vision` output directory.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// A synth directory of frames the checkpoint never saw.
    #[arg(long)]
    pub data: PathBuf,
    /// Also print the breakdown as one JSON line.
    #[arg(long)]
    pub json: bool,
}

/// Runs `eval-vision`.
pub fn run(args: EvalVisionArgs) -> anyhow::Result<ExitCode> {
    let b = evaluate_checkpoint(&args.checkpoint, &args.data).with_context(|| {
        format!(
            "scoring {} on {}",
            args.checkpoint.display(),
            args.data.display()
        )
    })?;
    println!("| frames | top-1 | correct / frames |\n|---|---:|---:|");
    let row = |name: &str, s: &crate::pretrain::vision_eval::Score| {
        println!(
            "| {name} | {:.2} % | {} / {} |",
            100.0 * s.top1(),
            s.correct,
            s.frames
        );
    };
    row("all", &b.all);
    row("day", &b.day);
    row("night", &b.night);
    for (class, s) in &b.per_class {
        row(class, s);
    }
    if args.json {
        println!("{}", serde_json::to_string(&b)?);
    }
    Ok(ExitCode::SUCCESS)
}
