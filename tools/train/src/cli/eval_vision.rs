//! `xrvlm-train eval-vision`: a `pretrain-vision` checkpoint's species top-1 on a synth directory,
//! overall, by day, by night and per species ([`crate::pretrain::vision_eval`]); or, with
//! `--probe-species`, a linear probe of its frozen features on species it never saw
//! ([`crate::pretrain::probe`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::pretrain::captions::SynthSet;
use crate::pretrain::probe::linear_probe;
use crate::pretrain::vision_eval::{evaluate_checkpoint, load_tower};

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
    /// Instead of scoring the species head: a linear probe on the frozen image features of
    /// these species of --data (comma-separated; e.g. the ones held out of pre-training).
    #[arg(long, value_delimiter = ',')]
    pub probe_species: Vec<String>,
    /// Frames per species the probe trains on (50 others per species are scored).
    #[arg(long, default_value_t = 16)]
    pub probe_shots: usize,
    /// Seed of the probe's choice of frames.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs the linear probe of `args.probe_species`.
fn probe(args: &EvalVisionArgs) -> anyhow::Result<ExitCode> {
    let tower = load_tower(&args.checkpoint)?;
    let set = SynthSet::load(&args.data)?;
    let p = linear_probe(
        &tower,
        &set,
        &args.probe_species,
        args.probe_shots,
        args.seed,
    )?;
    println!(
        "linear probe, {} species, {} shots, seed {}: top-1 {:.2} % on {} frames (chance {:.2} %); \
         day {:.2} % ({} frames), night {:.2} % ({} frames)",
        p.species.len(),
        p.shots,
        args.seed,
        100.0 * p.top1,
        p.test_frames,
        100.0 * p.chance,
        100.0 * p.day.0,
        p.day.1,
        100.0 * p.night.0,
        p.night.1
    );
    if args.json {
        println!("{}", serde_json::to_string(&p)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `eval-vision`.
pub fn run(args: EvalVisionArgs) -> anyhow::Result<ExitCode> {
    if !args.probe_species.is_empty() {
        return probe(&args);
    }
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
