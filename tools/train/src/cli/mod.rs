//! The `xrvlm-train` subcommands, one file each, all the same shape: a clap `Args` struct and a
//! `run(args) -> anyhow::Result<ExitCode>`.

pub mod ablate;
pub mod calibrate_open_world;
pub mod embed;
pub mod eval;
pub mod eval_vision;
pub mod export;
pub mod histogram;
pub mod open_world_scores;
pub mod pretrain;
pub mod pretrain_vision;
pub mod set_taxonomy;
pub mod synth;
pub mod synth_scenes;
pub mod train;

use std::num::NonZeroUsize;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use xrvlm_runtime::bundle::Bundle;
use xrvlm_runtime::classifier::Classifier;
use xrvlm_runtime::engine::{PlanOptions, Precision};

/// Companion training tool of xrvlm-edge: CLIP towers, XR-VLM and its baselines.
#[derive(Debug, Parser)]
#[command(name = "xrvlm-train", version, about)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a head on a frozen CLIP (or resume a killed run).
    Train(train::TrainArgs),
    /// Evaluate a trained checkpoint.
    Eval(eval::EvalArgs),
    /// Train and evaluate every baseline and XR-VLM over seeds; print the table.
    Ablate(ablate::AblateArgs),
    /// Write a trained XR-VLM run as a verified model bundle (ONNX fp32 + int8, prompts, golden).
    Export(export::ExportArgs),
    /// Calibrate an existing bundle's unknown-species threshold and rewrite only its manifest.
    CalibrateOpenWorld(calibrate_open_world::CalibrateOpenWorldArgs),
    /// Give an existing bundle's classes their taxonomy (species.json or a CSV file) for
    /// roll-up answers; rewrites only its manifest.
    SetTaxonomy(set_taxonomy::SetTaxonomyArgs),
    /// Write every candidate unknown-species score of an ImageFolder's images (JSON lines).
    OpenWorldScores(open_world_scores::OpenWorldScoresArgs),
    /// Print the projected image and text features of a CLIP checkpoint as JSON.
    Embed(embed::EmbedArgs),
    /// Pre-train a small CLIP from scratch on a synth directory (contrastive, CPU, minutes).
    Pretrain(pretrain::PretrainArgs),
    /// Train a ModifiedResNet image tower on species and part attributes (pre-training's
    /// supervised stage; with --eval, the world's learnability ceiling).
    PretrainVision(pretrain_vision::PretrainVisionArgs),
    /// Score a pretrain-vision checkpoint's species head: overall, day, night, per species.
    EvalVision(eval_vision::EvalVisionArgs),
    /// Generate a deterministic synthetic fine-grained bird dataset (ImageFolder + captions).
    Synth(synth::SynthArgs),
    /// Generate large synthetic camera-trap frames with ground-truth boxes (MegaDetector and
    /// COCO Camera Traps JSON), and bursts of one scene into which a bird arrives.
    SynthScenes(synth_scenes::SynthScenesArgs),
    /// Score the nearest-centroid colour-histogram baseline on a train and a test ImageFolder.
    HistogramBaseline(histogram::HistogramArgs),
}

/// The runtime's classifier of the bundle at `dir`, at `precision` on `threads` (at least one):
/// what the subcommands that measure a bundle run, as a device would.
pub fn open_classifier(
    dir: &Path,
    precision: Precision,
    threads: usize,
) -> anyhow::Result<Classifier> {
    let bundle = Bundle::open(dir).with_context(|| format!("loading bundle {}", dir.display()))?;
    let options = PlanOptions {
        precision,
        threads: NonZeroUsize::new(threads.max(1)).expect("at least one"),
    };
    Classifier::new(bundle, options)
        .with_context(|| format!("preparing the {precision} image model"))
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Embed(a) => embed::run(a),
        Command::Export(a) => export::run(a),
        Command::CalibrateOpenWorld(a) => calibrate_open_world::run(a),
        Command::OpenWorldScores(a) => open_world_scores::run(a),
        Command::SetTaxonomy(a) => set_taxonomy::run(a),
        Command::Pretrain(a) => pretrain::run(a),
        Command::PretrainVision(a) => pretrain_vision::run(a),
        Command::EvalVision(a) => eval_vision::run(a),
        Command::Ablate(a) => ablate::run(a),
        Command::Synth(a) => synth::run(a),
        Command::SynthScenes(a) => synth_scenes::run(a),
        Command::HistogramBaseline(a) => histogram::run(a),
    }
}
