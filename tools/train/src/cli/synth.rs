//! `xrvlm-train synth`: writes a deterministic synthetic fine-grained bird dataset (ImageFolder,
//! captions, species descriptions and provenance); see [`crate::synth`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use crate::synth::{self, Framing, SynthConfig};

/// Arguments of `synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output folder; created, and must be empty if it exists.
    #[arg(long)]
    pub out: PathBuf,
    /// Image seed: which images are drawn (species do not depend on it).
    #[arg(long)]
    pub seed: u64,
    /// Number of species.
    #[arg(long)]
    pub classes: usize,
    /// Bird images per species.
    #[arg(long)]
    pub per_class: usize,
    /// World seed: which species exist.
    #[arg(long, default_value_t = synth::DEFAULT_WORLD)]
    pub world: u64,
    /// Image side in pixels (32 to 512).
    #[arg(long, default_value_t = synth::DEFAULT_SIZE)]
    pub size: u32,
    /// Fraction of frames taken at night (infrared grey, no colour).
    #[arg(long, default_value_t = synth::DEFAULT_NIGHT_FRACTION)]
    pub night_fraction: f64,
    /// Empty frames (class `blank`), as a fraction of the bird frames; 0 for none.
    #[arg(long, default_value_t = synth::DEFAULT_EMPTY_FRACTION)]
    pub empty_fraction: f64,
    /// Fraction of captions that name the species.
    #[arg(long, default_value_t = synth::DEFAULT_NAME_FRACTION)]
    pub name_fraction: f64,
    /// `scene`: whole camera frames (a small bird, sometimes at the edge); `crop`: detector crops
    /// (the bird centred and larger, as a classifier behind a detector sees it).
    #[arg(long, default_value = "scene", value_parser = parse_framing)]
    pub framing: Framing,
}

fn parse_framing(s: &str) -> Result<Framing, String> {
    Framing::parse(s).ok_or_else(|| format!("'{s}' is not a framing; expected scene or crop"))
}

/// Runs `synth`.
pub fn run(args: SynthArgs) -> anyhow::Result<ExitCode> {
    let config = SynthConfig {
        world: args.world,
        seed: args.seed,
        classes: args.classes,
        per_class: args.per_class,
        size: args.size,
        night_fraction: args.night_fraction,
        empty_fraction: args.empty_fraction,
        name_fraction: args.name_fraction,
        framing: args.framing,
    };
    let start = Instant::now();
    let summary = synth::generate(&config, &args.out)
        .with_context(|| format!("generating a synthetic dataset in {}", args.out.display()))?;
    println!(
        "wrote {} images ({} species x {}, {} blank, {} at night) of {} px, {:?} framing, to {} in {:.1} s",
        summary.images,
        summary.species.len(),
        config.per_class,
        summary.blank,
        summary.night,
        config.size,
        config.framing,
        args.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
