//! `xrvlm classify --detections md.json`: classify the crops of a detector's animal boxes, the
//! way MegaDetector's classification pipelines (its `run_md_and_speciesnet.py`, AddaxAI,
//! Timelapse's imports) expect: the detector has run, its batch-output file says where the
//! animals are, and each animal detection above the threshold gets `classifications`.
//!
//! Each box is cut with [`CropRule::DETECTION`], the crop rule training's images were cut with,
//! and the crops go through the model `--batch-size` at a time. Images are taken
//! `--batch-size` at a time in the file's order; an image is read only when it has a detection
//! to classify. As in `classify`, the next images are read, cut and preprocessed on
//! `--decode-threads` threads while the model runs ([`prefetch::in_batches`]).
//!
//! What goes wrong with one image never stops the run (exit code 2 at the end):
//!
//! - An image that cannot be read or decoded gets a `failure` (the error, naming the path); its
//!   detections are kept, unclassified.
//! - A box that cannot be cut (outside the image, no area) leaves that detection unclassified.
//!   The format has no place for a per-detection error, so: when no detection of the image
//!   could be classified, the reasons become the image's `failure`; when others were, the
//!   image is written with those and the box is reported on standard error (and as an error row
//!   in JSONL and CSV).
//!
//! A detection file that is not MegaDetector's format is refused before the bundle is loaded
//! ([`xrvlm_runtime::detection_file`]).

use std::path::Path;

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use xrvlm_runtime::classifier::Classifier;
use xrvlm_runtime::crop::{CropRule, NormalizedBox};
use xrvlm_runtime::field::decision::Decider;
use xrvlm_runtime::image_io::load_rgb;
use xrvlm_runtime::prefetch;

use super::classify::{default_threads, load_classifier, progress_bar, run_info, ClassifyArgs};
use super::output::{self, ClassifiedDetection, DetectionRecord, Layout, SkippedDetection};
use super::Status;
use xrvlm_runtime::detection_file::{DetectionFile, DetectionImage, Target};

/// Runs `classify --detections detections`.
pub fn run(args: &ClassifyArgs, detections: &Path) -> Result<Status> {
    let min_conf = args.min_detection_conf();
    let DetectionFile {
        document,
        images,
        replaced_classifier,
    } = DetectionFile::read(detections, args.image_dir.as_deref(), min_conf)?;
    refuse_overwriting(detections, args.output.as_deref())?;
    if let Some(earlier) = replaced_classifier {
        eprintln!(
            "xrvlm: warning: {} already holds classifications (by {earlier}); this run \
             replaces them",
            detections.display()
        );
    }
    let classifier = load_classifier(args)?;
    let info = run_info(&classifier, args.top_k.get());
    let decider = args.decider();
    let layout = Layout::Detections {
        document,
        min_detection_conf: min_conf,
    };
    let (mut sink, done) = output::open(
        args.format(),
        args.output.as_deref(),
        args.resume,
        &info,
        layout,
    )?;
    let todo: Vec<&DetectionImage> = images
        .iter()
        .filter(|image| !done.contains(&image.file))
        .collect();
    let progress = progress_bar(todo.len() as u64, args.quiet);
    let (batch, k) = (args.batch_size, info.top_k);
    let decoders = args.decode_threads.unwrap_or_else(default_threads);
    let mut tally = Tally::default();
    prefetch::in_batches(
        &todo,
        decoders,
        batch,
        |image| prepare(&classifier, image),
        |_, prepared| -> Result<()> {
            for record in classify_chunk(&classifier, &decider, prepared, batch.get(), k)? {
                tally.add(&record, &progress);
                sink.write_detections(&record)?;
                progress.inc(1);
            }
            Ok(())
        },
    )?;
    progress.finish_and_clear();
    sink.finish()?;
    Ok(tally.status(todo.len()))
}

/// Refuses an output that is the detection file itself: the output is saved while the run goes
/// on, holding only the images done so far, and a killed run would have lost the rest.
fn refuse_overwriting(detections: &Path, output: Option<&Path>) -> Result<()> {
    let Some(output) = output else {
        return Ok(());
    };
    if let (Ok(a), Ok(b)) = (detections.canonicalize(), output.canonicalize()) {
        if a == b {
            bail!(
                "--output {} is the detection file itself: write the results to another file \
                 (the output is saved as the run goes, holding only the images done so far)",
                output.display()
            );
        }
    }
    Ok(())
}

/// The records of a chunk of prepared images, in order.
fn classify_chunk(
    classifier: &Classifier,
    decider: &Decider,
    prepared: Vec<Prepared<'_>>,
    batch: usize,
    k: usize,
) -> Result<Vec<DetectionRecord>> {
    let inputs: Vec<f32> = prepared
        .iter()
        .flat_map(|p| p.crops.iter().flat_map(|(_, input)| input.iter().copied()))
        .collect();
    let per_crop = classifier.preprocess().output_len();
    let mut predictions = Vec::new();
    for part in inputs.chunks(batch * per_crop) {
        predictions.extend(
            classifier
                .classify_preprocessed(part, k)
                .context("running the image model")?,
        );
    }
    let mut predictions = predictions.into_iter();
    Ok(prepared
        .into_iter()
        .map(|p| {
            let classified = p
                .crops
                .iter()
                .map(|(target, _)| {
                    let prediction = predictions.next().expect("one prediction per crop");
                    ClassifiedDetection {
                        index: target.index,
                        bbox: target.bbox,
                        conf: target.conf,
                        answer: decider.decide(&prediction),
                        prediction,
                    }
                })
                .collect();
            DetectionRecord {
                file: p.image.file.clone(),
                entry: p.image.entry.clone(),
                classified,
                skipped: p.skipped,
                failure: p.failure,
            }
        })
        .collect())
}

/// An image's crops, ready for the model, and what could not be made.
struct Prepared<'a> {
    image: &'a DetectionImage,
    /// The targets cut and preprocessed, with their model inputs.
    crops: Vec<(&'a Target, Vec<f32>)>,
    skipped: Vec<SkippedDetection>,
    failure: Option<String>,
}

/// Reads `image` (when it has targets) and cuts and preprocesses its crops.
fn prepare<'a>(classifier: &Classifier, image: &'a DetectionImage) -> Prepared<'a> {
    let mut prepared = Prepared {
        image,
        crops: Vec::new(),
        skipped: Vec::new(),
        failure: None,
    };
    let mut usable: Vec<(&Target, NormalizedBox)> = Vec::new();
    for target in &image.targets {
        match &target.crop_box {
            Ok(bbox) => usable.push((target, *bbox)),
            Err(why) => prepared.skipped.push(skip(target, why.to_string())),
        }
    }
    if usable.is_empty() {
        prepared.fail_if_nothing_classified();
        return prepared;
    }
    let frame = match load_rgb(&image.path) {
        Ok(frame) => frame,
        Err(e) => {
            prepared.failure = Some(e.to_string());
            prepared.skipped.clear();
            return prepared;
        }
    };
    for (target, bbox) in usable {
        let crop = CropRule::DETECTION.cut(&frame, bbox);
        match classifier.preprocess().apply(&crop) {
            Ok(input) => prepared.crops.push((target, input)),
            Err(e) => prepared.skipped.push(skip(target, e.to_string())),
        }
    }
    prepared.fail_if_nothing_classified();
    prepared
}

impl Prepared<'_> {
    /// Turns the skipped detections into the image's failure when no crop was made.
    fn fail_if_nothing_classified(&mut self) {
        if !self.crops.is_empty() || self.skipped.is_empty() {
            return;
        }
        let reasons: Vec<String> = self
            .skipped
            .drain(..)
            .map(|s| format!("detection {}: {}", s.index, s.reason))
            .collect();
        self.failure = Some(format!(
            "no detection could be classified: {}",
            reasons.join("; ")
        ));
    }
}

fn skip(target: &Target, reason: String) -> SkippedDetection {
    SkippedDetection {
        index: target.index,
        bbox: target.bbox,
        conf: target.conf,
        reason,
    }
}

/// What went wrong over the run.
#[derive(Debug, Default)]
struct Tally {
    failed_images: usize,
    skipped_detections: usize,
}

impl Tally {
    /// Counts `record`'s problems and reports its skipped detections on standard error.
    fn add(&mut self, record: &DetectionRecord, progress: &ProgressBar) {
        self.failed_images += usize::from(record.failure.is_some());
        self.skipped_detections += record.skipped.len();
        for s in &record.skipped {
            progress.suspend(|| {
                eprintln!(
                    "xrvlm: warning: {}: detection {} not classified (the image's others \
                     were): {}",
                    record.file, s.index, s.reason
                )
            });
        }
    }

    /// The exit status for a run over `images` images, with its summary on standard error.
    fn status(&self, images: usize) -> Status {
        let mut parts = Vec::new();
        if self.failed_images > 0 {
            parts.push(format!(
                "{} of {images} images failed (recorded in the output)",
                self.failed_images
            ));
        }
        if self.skipped_detections > 0 {
            parts.push(format!(
                "{} detections in images otherwise classified could not be classified \
                 (warned above)",
                self.skipped_detections
            ));
        }
        if parts.is_empty() {
            return Status::Success;
        }
        eprintln!("xrvlm: {}", parts.join("; "));
        Status::SomeInputsFailed
    }
}
