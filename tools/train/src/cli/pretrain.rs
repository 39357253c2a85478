//! `xrvlm-train pretrain`: contrastive pre-training of a small CLIP from scratch on a
//! `xrvlm-train synth` directory, written as a Hugging Face checkpoint (`--out`), with the
//! zero-shot accuracy of held-out and seen species printed and written to `zero_shot.json`.
//! See [`crate::pretrain`] for the recipe and the output layout.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::device::{self, DeviceChoice, Precision};
use crate::pretrain::zero_shot::TaskResult;
use crate::pretrain::{pretrain, Holdout, ModelSize, PretrainConfig, PretrainReport};

/// The library's run defaults, which the flags' defaults repeat.
fn run_defaults() -> PretrainConfig {
    PretrainConfig::new(PathBuf::new(), PathBuf::new())
}

/// The library's model size defaults.
fn size_defaults() -> ModelSize {
    ModelSize::default()
}

/// Arguments of `pretrain`.
#[derive(Debug, Args)]
pub struct PretrainArgs {
    /// Synth directory (captions.jsonl, species.json, <species>/<n>.png).
    #[arg(long)]
    pub data: PathBuf,
    /// Output checkpoint directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Keep the last K species of species.json out of pre-training.
    #[arg(long, default_value_t = 0, conflicts_with = "holdout_species")]
    pub holdout: usize,
    /// Keep these species (comma-separated names) out of pre-training.
    #[arg(long, value_delimiter = ',')]
    pub holdout_species: Vec<String>,
    /// A synth directory (e.g. another seed) to measure zero-shot accuracy on.
    #[arg(long)]
    pub eval: Option<PathBuf>,
    /// Without --eval: images per pre-training species held back for the seen-species check.
    #[arg(long, default_value_t = run_defaults().eval_per_species)]
    pub eval_per_species: usize,
    /// Epochs.
    #[arg(long, default_value_t = run_defaults().epochs)]
    pub epochs: usize,
    /// Pairs per batch.
    #[arg(long, default_value_t = run_defaults().batch_size)]
    pub batch_size: usize,
    /// Peak learning rate (AdamW).
    #[arg(long, default_value_t = run_defaults().lr)]
    pub lr: f64,
    /// AdamW weight decay on weight matrices.
    #[arg(long, default_value_t = run_defaults().weight_decay)]
    pub weight_decay: f64,
    /// Linear warm-up steps.
    #[arg(long, default_value_t = run_defaults().warmup_steps)]
    pub warmup_steps: usize,
    /// Smallest crop area fraction of the random resized crop.
    #[arg(long, default_value_t = run_defaults().min_crop_scale)]
    pub min_crop_scale: f64,
    /// Probability of dropping each clause of a caption (text augmentation).
    #[arg(long, default_value_t = run_defaults().clause_dropout)]
    pub clause_dropout: f64,
    /// Initial softmax temperature of the contrastive loss (learned; CLIP: 0.07).
    #[arg(long, default_value_t = run_defaults().temperature)]
    pub temperature: f64,
    /// Seed of initialisation, shuffling and augmentation.
    #[arg(long, default_value_t = run_defaults().seed)]
    pub seed: u64,
    /// Measure held-out zero-shot accuracy every N epochs (0: only at the end).
    #[arg(long, default_value_t = run_defaults().eval_every)]
    pub eval_every: usize,
    /// Input image side.
    #[arg(long, default_value_t = size_defaults().image_size)]
    pub image_size: usize,
    /// Patch side.
    #[arg(long, default_value_t = size_defaults().patch_size)]
    pub patch_size: usize,
    /// Image transformer width.
    #[arg(long, default_value_t = size_defaults().vision_width)]
    pub vision_width: usize,
    /// Image transformer blocks (at least 4).
    #[arg(long, default_value_t = size_defaults().vision_layers)]
    pub vision_layers: usize,
    /// Image attention heads.
    #[arg(long, default_value_t = size_defaults().vision_heads)]
    pub vision_heads: usize,
    /// Text transformer width.
    #[arg(long, default_value_t = size_defaults().text_width)]
    pub text_width: usize,
    /// Text transformer blocks.
    #[arg(long, default_value_t = size_defaults().text_layers)]
    pub text_layers: usize,
    /// Text attention heads.
    #[arg(long, default_value_t = size_defaults().text_heads)]
    pub text_heads: usize,
    /// Joint embedding size.
    #[arg(long, default_value_t = size_defaults().projection_dim)]
    pub projection_dim: usize,
    /// Keep this trained ModifiedResNet image tower (a `pretrain-vision --out` directory) frozen
    /// and train the text tower alone to meet it (LiT); the image size flags are then ignored and
    /// the checkpoint is written in open_clip's layout.
    #[arg(long)]
    pub lock_image: Option<PathBuf>,
    /// Store the weights in f16: half the file (for checkpoints committed or shipped); every
    /// loader reads them back as f32, and the zero-shot figures are measured on what was stored.
    #[arg(long)]
    pub half_weights: bool,
    /// Replace a checkpoint already in --out.
    #[arg(long)]
    pub overwrite: bool,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl PretrainArgs {
    /// The run these flags describe.
    pub fn config(&self) -> PretrainConfig {
        let holdout = if self.holdout_species.is_empty() {
            Holdout::Last(self.holdout)
        } else {
            Holdout::Named(self.holdout_species.clone())
        };
        PretrainConfig {
            eval: self.eval.clone(),
            holdout,
            eval_per_species: self.eval_per_species,
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            weight_decay: self.weight_decay,
            warmup_steps: self.warmup_steps,
            min_crop_scale: self.min_crop_scale,
            temperature: self.temperature,
            clause_dropout: self.clause_dropout,
            seed: self.seed,
            eval_every: self.eval_every,
            size: ModelSize {
                image_size: self.image_size,
                patch_size: self.patch_size,
                vision_width: self.vision_width,
                vision_layers: self.vision_layers,
                vision_heads: self.vision_heads,
                text_width: self.text_width,
                text_layers: self.text_layers,
                text_heads: self.text_heads,
                projection_dim: self.projection_dim,
                ..ModelSize::default()
            },
            lock_image: self.lock_image.clone(),
            half_weights: self.half_weights,
            overwrite: self.overwrite,
            progress: !self.quiet,
            ..PretrainConfig::new(self.data.clone(), self.out.clone())
        }
    }
}

/// Runs `pretrain`.
pub fn run(args: PretrainArgs) -> anyhow::Result<ExitCode> {
    // A process-wide setting, so the binary makes it, not the library.
    crate::pretrain::alloc::keep_freed_memory();
    let device = device::open(args.device, Precision::F32)?;
    let cfg = args.config();
    let report = pretrain(&cfg, &device)
        .with_context(|| format!("pre-training on {}", cfg.data.display()))?;
    print_report(&report, &cfg);
    Ok(ExitCode::SUCCESS)
}

fn print_report(r: &PretrainReport, cfg: &PretrainConfig) {
    let (first, last) = (
        r.epoch_losses.first().copied().unwrap_or(f64::NAN),
        r.epoch_losses.last().copied().unwrap_or(f64::NAN),
    );
    eprintln!(
        "{} parameters, {} pairs, {} steps in {:.0} s; loss {first:.4} -> {last:.4}, \
         logit_scale {:.3}",
        r.parameters, r.pairs, r.steps, r.train_seconds, r.logit_scale
    );
    if !r.held_out.is_empty() {
        eprintln!("held out: {}", r.held_out.join(", "));
    }
    let zs = &r.zero_shot;
    for result in [&zs.held_out, &zs.seen, &zs.all].into_iter().flatten() {
        println!("{}", accuracy_line(result));
    }
    println!(
        "checkpoint {} ({:.0} s in all)",
        cfg.out.display(),
        r.total_seconds
    );
}

fn accuracy_line(r: &TaskResult) -> String {
    format!(
        "zero-shot {:<8} {:6.2} %  ({}/{} images, {} classes, chance {:.2} %)",
        r.name,
        100.0 * r.accuracy,
        r.correct,
        r.images,
        r.per_class.len(),
        100.0 * r.chance
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: PretrainArgs,
    }

    #[test]
    fn holdout_flags_parse() {
        let cli = Cli::parse_from(["x", "--data", "d", "--out", "o", "--holdout", "4"]);
        assert_eq!(cli.args.config().holdout, Holdout::Last(4));
        let cli = Cli::parse_from(["x", "--data", "d", "--out", "o", "--holdout-species", "a,b"]);
        assert_eq!(
            cli.args.config().holdout,
            Holdout::Named(vec!["a".into(), "b".into()])
        );
        let both = [
            "x",
            "--data",
            "d",
            "--out",
            "o",
            "--holdout",
            "1",
            "--holdout-species",
            "a",
        ];
        assert!(Cli::try_parse_from(both).is_err());
    }
}
