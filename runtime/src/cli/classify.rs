//! `xrvlm classify PATH… --bundle DIR`: classify image files and folder trees.
//!
//! Files are classified in batches in the order [`super::inputs::collect`] gives. A file
//! that cannot be read, decoded or preprocessed is recorded as a failure with its error and
//! the run goes on; the exit code is then 2. A progress bar goes to standard error when it
//! is a terminal (never with `--quiet`).

use std::io::IsTerminal;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use xrvlm_runtime::bundle::manifest::ClassInfo;
use xrvlm_runtime::bundle::Bundle;
use xrvlm_runtime::classifier::Classifier;
use xrvlm_runtime::engine::{PlanOptions, Precision};

use super::inputs::{collect, Input};
use super::output::{self, Format, Record, RunInfo};
use super::Status;

/// Arguments of `classify`.
#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// Image files and folders (walked recursively for .jpg, .jpeg, .png, .bmp, .webp).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The model bundle directory.
    #[arg(long, default_value = "models/demo")]
    pub bundle: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// Output file (standard output when omitted; required for megadetector and --resume).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Arithmetic of the image model: fp32, int8, or f16 (ARM CPUs with fp16 only).
    #[arg(long, default_value = "fp32")]
    pub precision: Precision,
    /// Threads for the image model (default: every core).
    #[arg(long)]
    pub threads: Option<NonZeroUsize>,
    /// Classes reported per image.
    #[arg(long, default_value = "5")]
    pub top_k: NonZeroUsize,
    /// Images per run of the image model.
    #[arg(long, default_value = "4")]
    pub batch_size: NonZeroUsize,
    /// Skip the files the existing --output already records and append the others.
    #[arg(long)]
    pub resume: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `classify`.
pub fn run(args: ClassifyArgs) -> Result<Status> {
    let bundle = Bundle::open(&args.bundle)
        .with_context(|| format!("loading bundle {}", args.bundle.display()))?;
    let options = PlanOptions {
        precision: args.precision,
        threads: args.threads.unwrap_or_else(default_threads),
    };
    let classifier = Classifier::new(bundle, options)
        .with_context(|| format!("preparing the {} image model", args.precision))?;
    let info = run_info(&classifier, args.top_k.get());
    let (mut sink, done) = output::open(args.format, args.output.as_deref(), args.resume, &info)?;
    let inputs: Vec<Input> = collect(&args.paths)
        .into_iter()
        .filter(|i| !done.contains(&key(i)))
        .collect();
    let progress = progress_bar(inputs.len() as u64, args.quiet);
    let mut failed = 0usize;
    for chunk in inputs.chunks(args.batch_size.get()) {
        for record in classify_chunk(&classifier, chunk, info.top_k)? {
            failed += usize::from(record.outcome.is_err());
            sink.write(&record)?;
            progress.inc(1);
        }
    }
    progress.finish_and_clear();
    sink.finish()?;
    if failed > 0 {
        eprintln!(
            "xrvlm: {failed} of {} files failed (recorded in the output)",
            inputs.len()
        );
        return Ok(Status::SomeInputsFailed);
    }
    Ok(Status::Success)
}

/// Records for one batch of inputs, in order.
fn classify_chunk(classifier: &Classifier, chunk: &[Input], k: usize) -> Result<Vec<Record>> {
    let files: Vec<PathBuf> = chunk
        .iter()
        .filter_map(|i| match i {
            Input::File(p) => Some(p.clone()),
            Input::Unusable(..) => None,
        })
        .collect();
    let mut results = classifier
        .classify_files(&files, k)
        .context("running the image model")?
        .into_iter();
    Ok(chunk
        .iter()
        .map(|input| Record {
            file: key(input),
            outcome: match input {
                Input::File(_) => results
                    .next()
                    .expect("one result per file")
                    .map_err(|e| e.to_string()),
                Input::Unusable(path, why) => Err(format!("{}: {why}", path.display())),
            },
        })
        .collect())
}

/// The string a record is keyed by (and `--resume` matches on).
fn key(input: &Input) -> String {
    input.path().to_string_lossy().into_owned()
}

fn run_info(classifier: &Classifier, top_k: usize) -> RunInfo {
    let manifest = classifier.bundle().manifest();
    RunInfo {
        classifier: format!("xrvlm {} {}", manifest.model.name, manifest.model.version),
        labels: manifest.labels().map(str::to_string).collect(),
        descriptions: manifest.classes.iter().map(describe).collect(),
        top_k: top_k.min(manifest.classes.len()),
    }
}

/// "common name (scientific name)", or whatever part is known, or the label.
fn describe(class: &ClassInfo) -> String {
    match (&class.common_name, &class.scientific_name) {
        (Some(common), Some(scientific)) => format!("{common} ({scientific})"),
        (Some(name), None) | (None, Some(name)) => name.clone(),
        (None, None) => class.label.clone(),
    }
}

/// Every core the process may use.
pub fn default_threads() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

fn progress_bar(len: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}  eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}
