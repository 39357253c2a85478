//! `xrvlm-train pretrain-vision`: the supervised stage of pre-training (a ModifiedResNet image
//! tower trained on species and part attributes, [`crate::pretrain::supervised`]); with
//! `--eval` on fresh frames of the same species it measures the world's learnability ceiling.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::clip::resnet::ResNetConfig;
use crate::pretrain::supervised::{bench_steps, train_supervised, SupervisedConfig};
use crate::pretrain::Holdout;

/// Arguments of `pretrain-vision`.
#[derive(Debug, Args)]
pub struct PretrainVisionArgs {
    /// Synth directory to train on (captions.jsonl, species.json with attributes).
    #[arg(long)]
    pub data: PathBuf,
    /// Synth directory of fresh frames of the same species, scored after every epoch.
    #[arg(long)]
    pub eval: Option<PathBuf>,
    /// Output directory (open_clip_config.json, open_clip_model.safetensors, heads, report).
    #[arg(long)]
    pub out: PathBuf,
    /// Keep the last K species of species.json out entirely (probed after training).
    #[arg(long, default_value_t = 0, conflicts_with = "holdout_species")]
    pub holdout: usize,
    /// Keep these species (comma-separated names) out entirely (probed after training).
    #[arg(long, value_delimiter = ',')]
    pub holdout_species: Vec<String>,
    /// Input side (a multiple of 32).
    #[arg(long, default_value_t = 96)]
    pub image_size: usize,
    /// Stem width (stage i has 4·width·2ⁱ output channels).
    #[arg(long, default_value_t = 16)]
    pub width: usize,
    /// Bottlenecks per stage, four comma-separated counts.
    #[arg(long, value_delimiter = ',', default_value = "1,1,1,1")]
    pub layers: Vec<usize>,
    /// Attention-pool heads.
    #[arg(long, default_value_t = 8)]
    pub heads: usize,
    /// Joint embedding size.
    #[arg(long, default_value_t = 128)]
    pub embed_dim: usize,
    /// Epochs.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Frames per batch.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Peak learning rate (AdamW).
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    /// AdamW weight decay on kernels and weight matrices.
    #[arg(long, default_value_t = 0.05)]
    pub weight_decay: f64,
    /// Linear warm-up steps.
    #[arg(long, default_value_t = 100)]
    pub warmup_steps: usize,
    /// Smallest crop area fraction of the random resized crop.
    #[arg(long, default_value_t = 0.6)]
    pub min_crop_scale: f64,
    /// Weight of the mean part-attribute loss beside the species loss.
    #[arg(long, default_value_t = 1.0)]
    pub attribute_weight: f64,
    /// Seed of initialisation, shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Frames per held-out species for the linear probe run after training.
    #[arg(long, default_value_t = 16)]
    pub probe_shots: usize,
    /// Instead of training: time N optimiser steps on one random batch and print the seconds
    /// per step and frames per second as JSON (the comparison with PyTorch,
    /// `tools/bench-pretrain.sh`).
    #[arg(long)]
    pub bench_steps: Option<usize>,
}

impl PretrainVisionArgs {
    fn config(&self) -> anyhow::Result<SupervisedConfig> {
        let layers: [usize; 4] = self.layers.clone().try_into().map_err(|l: Vec<usize>| {
            anyhow::anyhow!("--layers {l:?}: expected four comma-separated counts")
        })?;
        Ok(SupervisedConfig {
            data: self.data.clone(),
            eval: self.eval.clone(),
            out: self.out.clone(),
            holdout: if self.holdout_species.is_empty() {
                Holdout::Last(self.holdout)
            } else {
                Holdout::Named(self.holdout_species.clone())
            },
            tower: ResNetConfig {
                image_size: self.image_size,
                layers,
                width: self.width,
                heads: self.heads,
                embed_dim: self.embed_dim,
            },
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            weight_decay: self.weight_decay,
            warmup_steps: self.warmup_steps,
            min_crop_scale: self.min_crop_scale,
            attribute_weight: self.attribute_weight,
            seed: self.seed,
            probe_shots: self.probe_shots,
        })
    }
}

/// Runs `pretrain-vision`.
pub fn run(args: PretrainVisionArgs) -> anyhow::Result<ExitCode> {
    crate::pretrain::alloc::keep_freed_memory();
    let config = args.config()?;
    if let Some(steps) = args.bench_steps {
        let mut times = bench_steps(&config, steps.max(1))
            .with_context(|| format!("timing steps with the classes of {}", args.data.display()))?;
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let json = serde_json::json!({
            "impl": "xrvlm-train (candle + our conv / batch-norm ops)",
            "batch": config.batch_size,
            "threads": rayon::current_num_threads(),
            "step_seconds_min": times[0],
            "step_seconds_median": median,
            "frames_per_second": config.batch_size as f64 / median,
        });
        println!("{json}");
        return Ok(ExitCode::SUCCESS);
    }
    let report = train_supervised(&config)
        .with_context(|| format!("supervised pre-training on {}", args.data.display()))?;
    println!(
        "{} frames, {} classes, {:.0} s; species top-1 on {} fresh frames: {}",
        report.train_frames,
        report.classes.species.len(),
        report.seconds,
        report.eval_frames,
        report
            .eval_top1
            .map(|a| format!("{:.2} %", 100.0 * a))
            .unwrap_or_else(|| "not measured (no --eval)".into())
    );
    Ok(ExitCode::SUCCESS)
}
