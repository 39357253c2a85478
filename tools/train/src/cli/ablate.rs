//! `xrvlm-train ablate`: trains and evaluates every baseline and XR-VLM on the same frozen
//! backbone, the same k-shot draws and the same seeds, and prints the Markdown table (also
//! written to `OUT/ablation.md`, with the raw figures in `OUT/ablation.json`).
//!
//! It takes every `train` flag; `--head`, `--parts`, `--prompts` and `--seed` are set per run
//! from `--part-counts` (M = P) and `--seeds` (each seed sets the shot draw, the initialisation
//! and the data order).

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;

use super::train::TrainArgs;
use crate::ablate::{run_all, to_markdown, Grid};
use crate::device;

/// Arguments of `ablate`.
#[derive(Debug, Args)]
pub struct AblateArgs {
    /// The training settings shared by every run (`--out` is the ablation's directory).
    #[command(flatten)]
    pub train: TrainArgs,
    /// Seeds; each row is run once per seed.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub seeds: Vec<u64>,
    /// The M = P values of the part-based heads.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    pub part_counts: Vec<usize>,
    /// Training images per class, e.g. 1,4,16: every row at each count, on the same evaluation
    /// set (give one with --eval-folder); without it, --shots alone.
    #[arg(long, value_delimiter = ',', conflicts_with = "shots")]
    pub shot_counts: Vec<usize>,
}

/// Runs `ablate`.
pub fn run(args: AblateArgs) -> anyhow::Result<ExitCode> {
    if args.train.resume {
        bail!("ablate continues finished and interrupted runs by itself; drop --resume");
    }
    if args.seeds.is_empty() || args.part_counts.is_empty() {
        bail!("--seeds and --part-counts need at least one value each");
    }
    let base = args.train.run_config()?;
    let device = device::open(args.train.device, base.precision)?;
    let out = &args.train.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    if args.shot_counts.contains(&0) {
        bail!("--shot-counts: every count must be at least 1 image per class");
    }
    let grid = Grid {
        parts: &args.part_counts,
        seeds: &args.seeds,
        shots: &args.shot_counts,
    };
    let results = run_all(&base, &grid, out, &device, !args.train.quiet)?;
    let table = to_markdown(&results, &args.seeds);
    std::fs::write(out.join("ablation.md"), &table)?;
    std::fs::write(
        out.join("ablation.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}
