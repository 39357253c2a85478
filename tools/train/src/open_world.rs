//! The export's open-world step: the chosen score of a bundle's known-species images, through
//! the runtime's frame path at fp32, and the threshold that keeps the target share of them
//! ([`xrvlm_runtime::open_world::calibrate`]), as the manifest's `[open_world]` section. For the
//! `part_prototype` score the same images also make the class prototypes, and each image is
//! scored against the prototypes made without it, so that the threshold is chosen on scores
//! of images the prototypes never saw ([`calibrate_section`]).
//!
//! `xrvlm-train export` runs it on its evaluation set; `xrvlm-train calibrate-open-world` runs
//! it on an existing bundle, touching only its manifest and `open_world.safetensors`
//! ([`install`]); `xrvlm-train open-world-scores` writes every candidate score of a folder for
//! `tools/eval_open_world.py`, which measures them ([`score_dataset`]).

use std::path::{Path, PathBuf};

use xrvlm_runtime::bundle::integrity::digest_file;
use xrvlm_runtime::bundle::manifest::{FileEntry, FileRole, Manifest, OpenWorld, MANIFEST_FILE};
use xrvlm_runtime::bundle::Bundle;
use xrvlm_runtime::classifier::{CandidateFrame, Classifier};
use xrvlm_runtime::open_world::{
    calibrate, CalibrationError, PartPrototypes, PrototypeBuilder, PrototypesError, ScoreKind,
    PROTOTYPES_FILE,
};
use xrvlm_runtime::preprocess::Preprocess;

use crate::data::{Dataset, Sample};
use crate::export::bundle::images::preprocess_files;
use crate::export::bundle::BundleError;

/// The score bundles reject by unless told otherwise: on the demo it separates held-out species
/// from known ones with an AUROC above 0.90 (the logit scores stay below 0.85) and, unlike the
/// nearest class's prototype, puts every real camera-trap photo far below the threshold
/// (`BENCHMARKS.md`, "Unknown species").
pub const DEFAULT_SCORE: ScoreKind = ScoreKind::PartPrototype;
/// The share of known-species frames the threshold keeps unless told otherwise.
pub const DEFAULT_TARGET_RECALL: f64 = 0.95;
/// The label of the no-animal class of the synthetic world (`synth`'s empty frames).
pub const DEFAULT_BLANK_LABEL: &str = "blank";

/// Images per run of the image model.
const BATCH: usize = 32;

/// How to calibrate.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenWorldOptions {
    /// The score compared.
    pub score: ScoreKind,
    /// The share of known-species frames to keep, in (0, 1].
    pub target_recall: f64,
    /// The no-animal class (never rejected, and not a known species); ignored when the bundle
    /// has no such class.
    pub blank_label: String,
}

impl Default for OpenWorldOptions {
    fn default() -> Self {
        Self {
            score: DEFAULT_SCORE,
            target_recall: DEFAULT_TARGET_RECALL,
            blank_label: DEFAULT_BLANK_LABEL.into(),
        }
    }
}

/// Why the open-world step failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenWorldError {
    /// A folder class the bundle does not know.
    #[error(
        "{set}: class {class:?} is not a class of the bundle; calibration needs images of its \
         known classes"
    )]
    UnknownClass {
        /// The data set.
        set: String,
        /// The folder's class.
        class: String,
    },
    /// The prototypes could not be made.
    #[error("{set}: {problem}")]
    Prototypes {
        /// The data set.
        set: String,
        /// Why.
        problem: PrototypesError,
    },
    /// No threshold could be computed.
    #[error("{set}: {problem}")]
    Calibration {
        /// The data set.
        set: String,
        /// Why.
        problem: CalibrationError,
    },
    /// Images could not be read or the image model failed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The manifest could not be rewritten.
    #[error("{}: {message}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// One image of a data set through the frame path.
#[derive(Clone, Debug)]
pub struct ScoredImage {
    /// The sample (its label indexes the data set's classes).
    pub sample: Sample,
    /// The prediction (top-1), every candidate score and the parts.
    pub frame: CandidateFrame,
}

/// A calibrated `[open_world]` section, with the part prototypes its score needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibrated {
    /// The section.
    pub section: OpenWorld,
    /// The prototypes, for the `part_prototype` score.
    pub prototypes: Option<PartPrototypes>,
}

/// Every readable image of `samples` through `classifier`, in batches.
pub fn score_samples(
    classifier: &Classifier,
    samples: &[Sample],
) -> Result<Vec<ScoredImage>, BundleError> {
    let preprocess: &Preprocess = classifier.preprocess();
    let mut scored = Vec::with_capacity(samples.len());
    for chunk in samples.chunks(BATCH) {
        let (pixels, kept) = preprocess_files(chunk, preprocess)?;
        if kept.is_empty() {
            continue;
        }
        let results = classifier
            .classify_with_candidates(&pixels, 1)
            .map_err(|e| BundleError::Runtime(e.to_string()))?;
        scored.extend(
            kept.into_iter()
                .zip(results)
                .map(|(sample, frame)| ScoredImage { sample, frame }),
        );
    }
    Ok(scored)
}

/// Every readable image of `ds` through `classifier`.
pub fn score_dataset(
    classifier: &Classifier,
    ds: &Dataset,
) -> Result<Vec<ScoredImage>, BundleError> {
    score_samples(classifier, &ds.samples)
}

/// The `[open_world]` section for `classifier`'s bundle, calibrated on the known-species images
/// of `ds` (every class of `ds` must be a class of the bundle; the blank class's images are
/// not known species and only make the blank class's prototype). A frame whose top class is
/// blank counts as kept, as the runtime's rule keeps it, so the section's `recall` is what the
/// runtime does on these images (with a prototype score, against prototypes made without each
/// image).
pub fn calibrate_section(
    classifier: &Classifier,
    ds: &Dataset,
    options: &OpenWorldOptions,
) -> Result<Calibrated, OpenWorldError> {
    let manifest = classifier.bundle().manifest();
    let blank = manifest.labels().position(|l| l == options.blank_label);
    // Every sample, labelled with its class in the bundle.
    let mut samples = Vec::with_capacity(ds.samples.len());
    for sample in &ds.samples {
        let class = &ds.classes[sample.label];
        let index = manifest.labels().position(|l| l == class).ok_or_else(|| {
            OpenWorldError::UnknownClass {
                set: ds.name.clone(),
                class: class.clone(),
            }
        })?;
        samples.push(Sample {
            label: index,
            ..sample.clone()
        });
    }
    let scored = score_samples(classifier, &samples)?;
    let (scores, prototypes) = known_scores(classifier, &scored, options.score).map_err(|e| {
        OpenWorldError::Prototypes {
            set: ds.name.clone(),
            problem: e,
        }
    })?;
    let known: Vec<f32> = scored
        .iter()
        .zip(scores)
        .filter(|(s, _)| Some(s.sample.label) != blank)
        .map(|(s, score)| match s.frame.prediction.best() {
            best if Some(best) == blank => f32::INFINITY,
            _ => score,
        })
        .collect();
    let calibration = calibrate(&known, options.target_recall).map_err(|problem| {
        OpenWorldError::Calibration {
            set: ds.name.clone(),
            problem,
        }
    })?;
    let section = OpenWorld {
        score: options.score,
        threshold: calibration.threshold,
        target_recall: options.target_recall,
        recall: calibration.recall,
        calibration_set: ds.name.clone(),
        calibration_images: calibration.images as u64,
        blank_label: blank.map(|_| options.blank_label.clone()),
    };
    Ok(Calibrated {
        section,
        prototypes,
    })
}

/// Each image's score of `kind` (`sample.label` is its bundle class), and the prototypes when
/// `kind` needs them (from all the images, one per class of the bundle), each image then
/// scored against the prototypes made without it.
fn known_scores(
    classifier: &Classifier,
    scored: &[ScoredImage],
    kind: ScoreKind,
) -> Result<(Vec<f32>, Option<PartPrototypes>), PrototypesError> {
    if !kind.needs_prototypes() {
        let scores = scored
            .iter()
            .map(|s| s.frame.candidates.get(kind))
            .collect();
        return Ok((scores, None));
    }
    let dims = classifier.bundle().dims();
    let mut builder = PrototypeBuilder::new(dims.classes(), dims.parts(), dims.embed());
    for s in scored {
        builder.add(s.sample.label, &s.frame.parts);
    }
    let prototypes = builder.build()?;
    let scores = scored
        .iter()
        .map(|s| {
            let left_out = builder.without(s.sample.label, &s.frame.parts);
            match kind {
                ScoreKind::NearestPrototype => left_out.nearest(),
                _ => left_out.answered(s.frame.prediction.best()),
            }
        })
        .collect();
    Ok((scores, Some(prototypes)))
}

/// Replaces the `[open_world]` section (and the part prototypes) of the bundle at `dir`,
/// touching no other file: `open_world.safetensors` (removed when the score needs none) and
/// the manifest are each written beside themselves and renamed over, then the bundle is opened
/// again through the runtime. Returns the new manifest.
pub fn install(dir: &Path, calibrated: Calibrated) -> Result<Manifest, OpenWorldError> {
    let path = dir.join(MANIFEST_FILE);
    let write_error = |path: &Path, message: String| OpenWorldError::Write {
        path: path.to_path_buf(),
        message,
    };
    let mut manifest = Manifest::load(&path).map_err(|e| write_error(&path, e.to_string()))?;
    manifest.files.retain(|f| f.role != FileRole::OpenWorld);
    let file = dir.join(PROTOTYPES_FILE);
    if let Some(prototypes) = &calibrated.prototypes {
        write_atomically(&file, &prototypes.to_safetensors())
            .map_err(|e| write_error(&file, e.to_string()))?;
        let (sha256, bytes) = digest_file(&file).map_err(|e| write_error(&file, e.to_string()))?;
        manifest.files.push(FileEntry {
            path: PROTOTYPES_FILE.into(),
            role: FileRole::OpenWorld,
            precision: None,
            sha256,
            bytes,
            part_maps: None,
        });
    }
    manifest.open_world = Some(calibrated.section);
    let text = manifest
        .to_toml()
        .map_err(|e| write_error(&path, e.to_string()))?;
    write_atomically(&path, text.as_bytes()).map_err(|e| write_error(&path, e.to_string()))?;
    if calibrated.prototypes.is_none() && file.exists() {
        // Prototypes of an earlier calibration that the manifest no longer lists.
        std::fs::remove_file(&file).map_err(|e| write_error(&file, e.to_string()))?;
    }
    Bundle::open(dir)
        .map_err(|e| write_error(&path, format!("the rewritten bundle does not open: {e}")))?;
    Ok(manifest)
}

/// Writes `bytes` to `<path>.partial`, then renames it over `path`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, path)
}

/// A share in (0, 1], for the target-recall flags.
pub fn parse_recall(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err(format!(
            "expected a share in (0, 1], e.g. 0.95; got {text:?}"
        )),
    }
}

/// One line on a section, for the commands' output.
pub fn describe(o: &OpenWorld) -> String {
    format!(
        "open world: {} below {:.4} is unknown{}; keeps {:.2} % of the {} known-species images \
         of {} (target {:.2} %)",
        o.score,
        o.threshold,
        o.blank_label
            .as_deref()
            .map(|b| format!(" (unless the top class is {b})"))
            .unwrap_or_default(),
        100.0 * o.recall,
        o.calibration_images,
        o.calibration_set,
        100.0 * o.target_recall
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_flags_take_shares_in_the_half_open_unit_interval() {
        assert_eq!(parse_recall("0.95"), Ok(0.95));
        assert_eq!(parse_recall("1"), Ok(1.0));
        for bad in ["0", "1.01", "-0.5", "NaN", "most"] {
            assert!(parse_recall(bad).unwrap_err().contains("(0, 1]"), "{bad}");
        }
    }
}
