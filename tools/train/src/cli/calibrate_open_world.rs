//! `xrvlm-train calibrate-open-world --bundle DIR --data SET`: gives an existing bundle its
//! `[open_world]` section (or a new one) without re-exporting it: the known-species images of
//! an ImageFolder go through the runtime's frame path at fp32, the threshold is chosen for the
//! target recall, and only `manifest.toml` and `open_world.safetensors` (the part prototypes,
//! for the `part_prototype` score) are written: the image models, prompts and golden files stay
//! byte for byte. The export runs the same step on its evaluation set.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use xrvlm_runtime::engine::Precision;
use xrvlm_runtime::open_world::ScoreKind;

use super::open_classifier;
use crate::data::image_folder::load_image_folder;
use crate::open_world::{
    self, calibrate_section, describe, install, parse_recall, OpenWorldOptions,
};

/// Arguments of `calibrate-open-world`.
#[derive(Debug, Args)]
pub struct CalibrateOpenWorldArgs {
    /// The bundle directory; its manifest.toml is rewritten.
    #[arg(long)]
    pub bundle: PathBuf,
    /// ImageFolder of the bundle's classes (no image of it trained the model), e.g. the
    /// export's evaluation set.
    #[arg(long)]
    pub data: PathBuf,
    /// The score: max_softmax, max_logit, energy, part_prompt or part_prototype.
    #[arg(long, default_value_t = open_world::DEFAULT_SCORE)]
    pub score: ScoreKind,
    /// The share of known-species images kept, in (0, 1].
    #[arg(long, default_value_t = open_world::DEFAULT_TARGET_RECALL, value_parser = parse_recall)]
    pub target_recall: f64,
    /// The no-animal class: never answered unknown, not a known species.
    #[arg(long, default_value = open_world::DEFAULT_BLANK_LABEL)]
    pub blank_label: String,
    /// tract threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// Runs `calibrate-open-world`.
pub fn run(args: CalibrateOpenWorldArgs) -> anyhow::Result<ExitCode> {
    let classifier = open_classifier(&args.bundle, Precision::Fp32, args.threads)?;
    let ds = load_image_folder(&args.data)?;
    let options = OpenWorldOptions {
        score: args.score,
        target_recall: args.target_recall,
        blank_label: args.blank_label,
    };
    let calibrated = calibrate_section(&classifier, &ds, &options)?;
    let line = describe(&calibrated.section);
    install(&args.bundle, calibrated)?;
    println!("{}: {line}", args.bundle.display());
    Ok(ExitCode::SUCCESS)
}
