//! `xrvlm-train synth-scenes`: writes large camera-trap frames of the synthetic world with their
//! ground-truth boxes (MegaDetector batch output, COCO Camera Traps, one JSON line per box), and
//! optionally bursts of one fixed scene into which a bird arrives; see
//! [`crate::synth::generate_scenes`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use crate::synth::{self, SceneConfig};

/// The default `--sizes`: common trail-camera frame sizes.
const DEFAULT_SIZES: &str = "1280x720,1920x1080,2048x1440";

/// Arguments of `synth-scenes`.
#[derive(Debug, Args)]
pub struct SynthScenesArgs {
    /// Output folder; created, and must be empty if it exists.
    #[arg(long)]
    pub out: PathBuf,
    /// Image seed: which frames are drawn (species do not depend on it).
    #[arg(long)]
    pub seed: u64,
    /// Independent frames (`images/NNNNN.jpg`), each with zero to three birds.
    #[arg(long)]
    pub count: usize,
    /// World seed: which species exist.
    #[arg(long, default_value_t = synth::DEFAULT_WORLD)]
    pub world: u64,
    /// Number of species birds are drawn from (the first of the world, as `synth` names them).
    #[arg(long)]
    pub classes: usize,
    /// Fraction of frames (and sequences) taken at night (infrared grey, no colour).
    #[arg(long, default_value_t = synth::DEFAULT_NIGHT_FRACTION)]
    pub night_fraction: f64,
    /// Fraction of independent frames without a bird.
    #[arg(long, default_value_t = synth::DEFAULT_SCENE_EMPTY_FRACTION)]
    pub empty_fraction: f64,
    /// Bursts of one fixed scene (`sequences/sNNN/fNN.jpg`) in which a bird is absent from the
    /// first frame or two, then present.
    #[arg(long, default_value_t = 0)]
    pub sequences: usize,
    /// Frames per sequence (2 to 99).
    #[arg(long, default_value_t = synth::DEFAULT_SEQUENCE_LENGTH)]
    pub sequence_length: usize,
    /// Frame sizes drawn from, one per frame or sequence: WIDTHxHEIGHT[,WIDTHxHEIGHT...].
    #[arg(long, default_value = DEFAULT_SIZES, value_parser = parse_sizes)]
    pub sizes: Sizes,
}

/// The parsed `--sizes` (a named type, so clap takes the whole list as one value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sizes(pub Vec<(u32, u32)>);

fn parse_sizes(s: &str) -> Result<Sizes, String> {
    synth::parse_sizes(s)
        .map(Sizes)
        .ok_or_else(|| format!("'{s}' is not a list of sizes; expected e.g. 1280x720,1920x1080"))
}

/// Runs `synth-scenes`.
pub fn run(args: SynthScenesArgs) -> anyhow::Result<ExitCode> {
    let config = SceneConfig {
        world: args.world,
        seed: args.seed,
        classes: args.classes,
        count: args.count,
        night_fraction: args.night_fraction,
        empty_fraction: args.empty_fraction,
        sequences: args.sequences,
        sequence_length: args.sequence_length,
        sizes: args.sizes.0,
    };
    let start = Instant::now();
    let summary = synth::generate_scenes(&config, &args.out)
        .with_context(|| format!("generating synthetic scenes in {}", args.out.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "wrote {} images ({} frames, {} sequences x {}; {} empty, {} at night) with {} boxes to {} \
         in {:.1} s ({:.0} ms per image)",
        summary.images,
        config.count,
        config.sequences,
        config.sequence_length,
        summary.empty,
        summary.night,
        summary.boxes,
        args.out.display(),
        seconds,
        1e3 * seconds / summary.images.max(1) as f64
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_flag_takes_a_list_and_refuses_garbage() {
        assert_eq!(
            parse_sizes(DEFAULT_SIZES),
            Ok(Sizes(vec![(1280, 720), (1920, 1080), (2048, 1440)]))
        );
        assert!(parse_sizes("1280by720").is_err());
    }
}
