//! `xrvlm classify PATH… --bundle DIR`: classify image files and folder trees; with
//! `--detections md.json` instead of paths, the crops of a MegaDetector file's animal
//! detections ([`super::classify_detections`]).
//!
//! Files are classified in batches in the order [`super::inputs::collect`] gives. A file
//! that cannot be read, decoded or preprocessed is recorded as a failure with its error and
//! the run goes on; the exit code is then 2. A progress bar goes to standard error when it
//! is a terminal (never with `--quiet`). With `--explain DIR`, each image's part maps are drawn
//! into DIR as well ([`super::explain`]).

use std::io::IsTerminal;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use xrvlm_runtime::allowed::SpeciesList;
use xrvlm_runtime::bundle::manifest::ClassInfo;
use xrvlm_runtime::bundle::Bundle;
use xrvlm_runtime::classifier::{Classifier, ImageError};
use xrvlm_runtime::engine::{PlanOptions, Precision};
use xrvlm_runtime::field::config::{DecisionConfig, DEFAULT_BLANK_LABEL, DEFAULT_THRESHOLD};
use xrvlm_runtime::field::decision::Decider;
use xrvlm_runtime::prefetch;
use xrvlm_runtime::taxonomy::RollUpTo;

use super::explain::{explain_chunk, SheetFolder};
use super::inputs::{collect, Input};
use super::output::{self, Format, Layout, Record, RunInfo};
use super::trust::TrustArgs;
use super::Status;
use xrvlm_runtime::detection_file::DEFAULT_MIN_DETECTION_CONF;

/// Arguments of `classify`.
#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// Image files and folders (walked recursively for .jpg, .jpeg, .png, .bmp, .webp).
    #[arg(required_unless_present = "detections", conflicts_with = "detections")]
    pub paths: Vec<PathBuf>,
    /// Classify the crops of the animal detections in this MegaDetector batch-output file
    /// instead of whole frames, and write the file back with their classifications.
    #[arg(long, value_name = "MD_JSON")]
    pub detections: Option<PathBuf>,
    /// The folder the detection file's relative image paths start from (default: the folder
    /// holding the detection file).
    #[arg(long, value_name = "DIR", conflicts_with = "paths")]
    pub image_dir: Option<PathBuf>,
    /// Classify only detections at least this confident, between 0 and 1 (default 0.2).
    #[arg(long, value_name = "CONF", conflicts_with = "paths", value_parser = parse_conf)]
    pub min_detection_conf: Option<f64>,
    /// The model bundle directory.
    #[arg(long, default_value = "models/demo")]
    pub bundle: PathBuf,
    /// Output format (default: jsonl; megadetector with --detections).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Output file (standard output when omitted; required for megadetector and --resume).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Arithmetic of the image model: fp32, int8, or f16 (ARM CPUs with fp16 only).
    #[arg(long, default_value = "fp32")]
    pub precision: Precision,
    /// Threads for the image model (default: every core).
    #[arg(long)]
    pub threads: Option<NonZeroUsize>,
    /// Classes reported per image (per detection with --detections).
    #[arg(long, default_value = "5")]
    pub top_k: NonZeroUsize,
    /// Images (crops with --detections) per run of the image model.
    #[arg(long, default_value = "4")]
    pub batch_size: NonZeroUsize,
    /// Threads that read and preprocess the next images while the model runs (default: one
    /// per core).
    #[arg(long, value_name = "N")]
    pub decode_threads: Option<NonZeroUsize>,
    /// Which signatures the bundle must carry.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Skip the files the existing --output already records and append the others.
    #[arg(long)]
    pub resume: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Only these species may be answered (labels, scientific or common names, comma-separated
    /// or repeated; blank always may): the site's species. The others get probability 0 and
    /// the rest are renormalised, as the field loop does with a profile's `allowed_species`.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "SPECIES",
        conflicts_with = "exclude"
    )]
    pub allow: Vec<String>,
    /// These species may not be answered (the profile's `excluded_species`).
    #[arg(long, value_delimiter = ',', value_name = "SPECIES")]
    pub exclude: Vec<String>,
    /// The probability the best class, or a rolled-up taxon, must reach for the JSONL `answer`
    /// (a profile's `[decision] threshold`).
    #[arg(long, default_value_t = DEFAULT_THRESHOLD, value_name = "P")]
    pub threshold: f64,
    /// The coarsest rank the `answer` rolls up to when no species reaches the threshold:
    /// species (no roll-up), genus, family, order or class (a profile's `[decision]
    /// roll_up_to`).
    #[arg(long, default_value = "family", value_name = "RANK")]
    pub roll_up_to: RollUpTo,
    /// Also write, for each classified image, a PNG of where each of the model's parts looks
    /// (its UnA map over the input crop) into this folder, as `<file stem>.png`. Images then
    /// run one at a time.
    #[arg(long, value_name = "DIR", conflicts_with = "detections")]
    pub explain: Option<PathBuf>,
}

impl ClassifyArgs {
    /// The field's decision rule with `--threshold` and `--roll-up-to`, as a profile's
    /// `[decision]` with those settings decides.
    pub fn decider(&self) -> Decider {
        Decider::new(DecisionConfig {
            threshold: self.threshold,
            roll_up_to: self.roll_up_to,
            blank_label: DEFAULT_BLANK_LABEL.to_string(),
            ..DecisionConfig::default()
        })
    }

    /// The species list `--allow` or `--exclude` gives, if any.
    pub fn species_list(&self) -> Option<SpeciesList> {
        match (self.allow.is_empty(), self.exclude.is_empty()) {
            (false, _) => Some(SpeciesList::Allow(self.allow.clone())),
            (true, false) => Some(SpeciesList::Exclude(self.exclude.clone())),
            (true, true) => None,
        }
    }

    /// The output format asked for, or the mode's default.
    pub fn format(&self) -> Format {
        let default = match self.detections {
            Some(_) => Format::Megadetector,
            None => Format::Jsonl,
        };
        self.format.unwrap_or(default)
    }

    /// The detection confidence threshold of `--detections`.
    pub fn min_detection_conf(&self) -> f64 {
        self.min_detection_conf
            .unwrap_or(DEFAULT_MIN_DETECTION_CONF)
    }
}

/// A confidence: a number from 0 to 1.
fn parse_conf(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(conf) if (0.0..=1.0).contains(&conf) => Ok(conf),
        _ => Err(format!("expected a number from 0 to 1, got {text:?}")),
    }
}

/// Runs `classify`.
pub fn run(args: ClassifyArgs) -> Result<Status> {
    if let Some(detections) = args.detections.clone() {
        return super::classify_detections::run(&args, &detections);
    }
    let classifier = load_classifier(&args)?;
    let info = run_info(&classifier, args.top_k.get());
    let (mut sink, done) = output::open(
        args.format(),
        args.output.as_deref(),
        args.resume,
        &info,
        Layout::Frames,
    )?;
    let inputs: Vec<Input> = collect(&args.paths)
        .into_iter()
        .filter(|i| !done.contains(&key(i)))
        .collect();
    let progress = progress_bar(inputs.len() as u64, args.quiet);
    let mut failed = 0usize;
    let mut write = |records: Vec<Record>| -> Result<()> {
        for record in records {
            failed += usize::from(record.outcome.is_err());
            sink.write(&record)?;
            progress.inc(1);
        }
        Ok(())
    };
    let decider = args.decider();
    let (k, batch) = (info.top_k, args.batch_size);
    if let Some(dir) = &args.explain {
        let mut folder = SheetFolder::create(dir)?;
        for chunk in inputs.chunks(batch.get()) {
            write(explain_chunk(&classifier, &decider, chunk, k, &mut folder)?)?;
        }
    } else {
        let decoders = args.decode_threads.unwrap_or_else(default_threads);
        let batches = Batches { k, batch, decoders };
        classify_pipelined(&classifier, &decider, &inputs, batches, &mut write)?;
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

/// How [`classify_pipelined`] runs the model: `batch` images at a time, keeping the `k` best
/// classes, with `decoders` threads reading the next images.
struct Batches {
    k: usize,
    batch: NonZeroUsize,
    decoders: NonZeroUsize,
}

/// Classifies `inputs` in batches, in order, handing each batch's records to `write`. The next
/// images are read and preprocessed on the decoder threads while the model runs on this one; at
/// most two batches and one image per decoder wait in memory.
fn classify_pipelined(
    classifier: &Classifier,
    decider: &Decider,
    inputs: &[Input],
    batches: Batches,
    write: &mut impl FnMut(Vec<Record>) -> Result<()>,
) -> Result<()> {
    let Batches { k, batch, decoders } = batches;
    prefetch::in_batches(
        inputs,
        decoders,
        batch,
        |input| load(classifier, input),
        |range, images| {
            write(classify_chunk(
                classifier,
                decider,
                &inputs[range],
                images,
                k,
            )?)
        },
    )
}

/// An input read and preprocessed for the model; `None` for one that is not a usable file.
type Loaded = Option<Result<Vec<f32>, ImageError>>;

/// Reads and preprocesses `input` (on a decoder thread).
fn load(classifier: &Classifier, input: &Input) -> Loaded {
    match input {
        Input::File(path) => Some(classifier.load_image(path)),
        Input::Unusable(..) => None,
    }
}

/// Records for one batch of inputs and what [`load`] made of each, in order.
fn classify_chunk(
    classifier: &Classifier,
    decider: &Decider,
    chunk: &[Input],
    loaded: Vec<Loaded>,
    k: usize,
) -> Result<Vec<Record>> {
    let mut results = classifier
        .classify_loaded(loaded.into_iter().flatten().collect(), k)
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
                    .map(|p| {
                        let answer = decider.decide(&p);
                        (p, answer)
                    })
                    .map_err(|e| e.to_string()),
                Input::Unusable(path, why) => Err(format!("{}: {why}", path.display())),
            },
        })
        .collect())
}

/// The bundle's classifier at the precision and threads asked for.
pub fn load_classifier(args: &ClassifyArgs) -> Result<Classifier> {
    let bundle = Bundle::open_trusted(&args.bundle, &args.trust.policy()?)
        .with_context(|| format!("loading bundle {}", args.bundle.display()))?;
    let options = PlanOptions {
        precision: args.precision,
        threads: args.threads.unwrap_or_else(default_threads),
    };
    let mut classifier = match args.explain {
        Some(_) => Classifier::new_explained(bundle, options),
        None => Classifier::new(bundle, options),
    }
    .with_context(|| format!("preparing the {} image model", args.precision))?;
    if let Some(list) = args.species_list() {
        classifier
            .restrict(&list, DEFAULT_BLANK_LABEL)
            .context("--allow / --exclude")?;
    }
    Ok(classifier)
}

/// The string a record is keyed by (and `--resume` matches on).
fn key(input: &Input) -> String {
    input.path().to_string_lossy().into_owned()
}

/// What the outputs say about the run.
pub fn run_info(classifier: &Classifier, top_k: usize) -> RunInfo {
    let manifest = classifier.bundle().manifest();
    RunInfo {
        classifier: format!("xrvlm {} {}", manifest.model.name, manifest.model.version),
        labels: manifest.labels().map(str::to_string).collect(),
        descriptions: manifest.classes.iter().map(describe).collect(),
        top_k: top_k.min(manifest.classes.len()),
        open_world: classifier.open_world().cloned(),
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

/// A bar of `len` images on standard error, hidden with `quiet` or when it is not a terminal.
pub fn progress_bar(len: u64, quiet: bool) -> ProgressBar {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        args: ClassifyArgs,
    }

    fn parse(words: &[&str]) -> Result<ClassifyArgs, String> {
        Command::try_parse_from(std::iter::once("classify").chain(words.iter().copied()))
            .map(|c| c.args)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn detections_replace_paths_and_default_to_the_megadetector_format() {
        let args = parse(&["--detections", "md.json"]).unwrap();
        assert_eq!(
            args.detections.as_deref(),
            Some(std::path::Path::new("md.json"))
        );
        assert_eq!(args.format(), Format::Megadetector);
        assert_eq!(args.min_detection_conf(), DEFAULT_MIN_DETECTION_CONF);
        let args = parse(&["--detections", "md.json", "--format", "csv"]).unwrap();
        assert_eq!(args.format(), Format::Csv);
        assert_eq!(parse(&["a.jpg"]).unwrap().format(), Format::Jsonl);
        assert!(parse(&["a.jpg", "--detections", "md.json"])
            .unwrap_err()
            .contains("cannot be used with"));
        assert!(parse(&[]).unwrap_err().contains("required"));
    }

    #[test]
    fn image_dir_and_min_detection_conf_are_for_detections_only() {
        let args = parse(&[
            "--detections",
            "md.json",
            "--image-dir",
            "photos",
            "--min-detection-conf",
            "0.5",
        ])
        .unwrap();
        assert_eq!(args.min_detection_conf(), 0.5);
        assert_eq!(
            args.image_dir.as_deref(),
            Some(std::path::Path::new("photos"))
        );
        for words in [
            ["a.jpg", "--image-dir", "photos"],
            ["a.jpg", "--min-detection-conf", "0.5"],
        ] {
            let err = parse(&words).unwrap_err();
            assert!(
                err.contains("'[PATHS]...' cannot be used with '--"),
                "{err}"
            );
        }
    }

    #[test]
    fn explain_takes_a_folder_and_is_for_whole_frames_only() {
        let args = parse(&["a.jpg", "--explain", "maps"]).unwrap();
        assert_eq!(args.explain.as_deref(), Some(std::path::Path::new("maps")));
        assert_eq!(parse(&["a.jpg"]).unwrap().explain, None);
        let err = parse(&["--detections", "md.json", "--explain", "maps"]).unwrap_err();
        assert!(err.contains("cannot be used with"), "{err}");
        assert!(
            parse(&["a.jpg", "--explain"]).is_err(),
            "the folder is required"
        );
    }

    #[test]
    fn min_detection_conf_is_a_fraction() {
        for bad in ["1.5", "-0.1", "NaN", "high"] {
            let flag = format!("--min-detection-conf={bad}");
            let err = parse(&["--detections", "md.json", &flag]).unwrap_err();
            assert!(
                err.contains("expected a number from 0 to 1"),
                "{bad}: {err}"
            );
        }
        let args = parse(&["--detections", "md.json", "--min-detection-conf", "0"]).unwrap();
        assert_eq!(args.min_detection_conf(), 0.0);
    }
}
