//! `xrvlm-train open-world-scores --bundle DIR --data SET --out FILE`: every candidate
//! open-world score of every image of an ImageFolder through the runtime's frame path, one JSON
//! line per image, for `tools/eval_open_world.py` to measure how well each separates species
//! the bundle never saw (folders that are not its classes) from the ones it knows:
//!
//! ```json
//! {"file":"W/31/bartail_honeyeater/00003.png","folder":"bartail_honeyeater","top1":"bartail_finch","scores":{"max_softmax":0.61,"max_logit":7.2,"energy":7.9,"part_prompt":0.43,"part_prototype":0.68}}
//! ```
//!
//! `part_prototype` is `null` for a bundle without part prototypes (calibrated for another
//! score, or not at all).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::{json, Map, Value};
use xrvlm_runtime::engine::Precision;
use xrvlm_runtime::open_world::ScoreKind;

use super::open_classifier;
use crate::data::image_folder::load_image_folder;
use crate::open_world::score_dataset;

/// Arguments of `open-world-scores`.
#[derive(Debug, Args)]
pub struct OpenWorldScoresArgs {
    /// The bundle directory.
    #[arg(long)]
    pub bundle: PathBuf,
    /// ImageFolder to score (any folder names: known classes and others).
    #[arg(long)]
    pub data: PathBuf,
    /// The JSON-lines file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Arithmetic of the image model: fp32, int8 or f16.
    #[arg(long, default_value = "fp32")]
    pub precision: Precision,
    /// tract threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// Runs `open-world-scores`.
pub fn run(args: OpenWorldScoresArgs) -> anyhow::Result<ExitCode> {
    let classifier = open_classifier(&args.bundle, args.precision, args.threads)?;
    let ds = load_image_folder(&args.data)?;
    let scored = score_dataset(&classifier, &ds)?;
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?,
    );
    for image in &scored {
        let scores: Map<String, Value> = ScoreKind::ALL
            .iter()
            .map(|&k| (k.name().to_string(), json!(image.frame.candidates.get(k))))
            .collect();
        let line = json!({
            "file": image.sample.path.display().to_string(),
            "folder": ds.classes[image.sample.label],
            "top1": image.frame.prediction.top.first().map(|c| c.label.clone()),
            "scores": scores,
        });
        writeln!(out, "{line}")?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "{}: {} of {} images of {} scored",
        args.out.display(),
        scored.len(),
        ds.samples.len(),
        ds.name
    );
    Ok(ExitCode::SUCCESS)
}
