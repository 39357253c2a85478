//! The one path of a frame: bundle, preprocessing, image-model plan, CRM scoring, ranking and
//! the bundle's open-world rule ([`crate::open_world`]), an image in, a prediction out
//! ([`Classifier::classify`]). The field station, `check`,
//! `bench`, `classify` and the export's verification all go through it.
//!
//! [`Classifier::classify_files`] isolates failures per file: an image that cannot be read or
//! preprocessed becomes an `Err` in its slot while the rest of the batch runs. Only a failure
//! of the image model itself (which no single file causes) fails the whole call.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::RgbImage;

use crate::allowed::{AllowedClasses, AllowedError, SpeciesList};
use crate::bundle::Bundle;
use crate::engine::{EngineError, PartMaps, Plan, PlanOptions};
use crate::image_io::{load_rgb, ImageLoadError};
use crate::open_world::{CandidateScores, OpenWorldRule, OpenWorldVerdict, Scorer};
use crate::preprocess::{Preprocess, PreprocessError};
use crate::ranking;
use crate::scoring::probs::softmax;
use crate::scoring::{FoldedCrm, Logits};
use crate::taxonomy::{best_taxa, TaxonScore};

/// A class with its probability.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassScore {
    /// Index in the manifest's class list (logit order).
    pub index: usize,
    /// The class label.
    pub label: String,
    /// Softmax probability over all classes.
    pub probability: f32,
}

/// What the classifier says about one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The k most probable classes the classifier may answer (all, unless a species list
    /// restricts them: [`Classifier::restrict`]), best first ([`ranking`]'s order of the
    /// logits); never empty.
    pub top: Vec<ClassScore>,
    /// Raw logits, one per class, in the manifest's class order (a species list does not
    /// change them).
    pub logits: Vec<f32>,
    /// The open-world rule's verdict: whether the frame is a species the model does not know.
    /// `None` when the bundle has no `[open_world]` section.
    pub open_world: Option<OpenWorldVerdict>,
    /// The most probable taxon at each rank above the species, finest first, over the classes
    /// that may be answered ([`crate::taxonomy::best_taxa`]); empty when the bundle's classes
    /// have no taxonomy.
    pub taxa: Vec<TaxonScore>,
}

impl Prediction {
    /// The class ranked first among those that may be answered.
    pub fn best(&self) -> usize {
        self.top[0].index
    }

    /// 0-based rank of `class` among all classes.
    pub fn rank_of(&self, class: usize) -> usize {
        ranking::rank_of(&self.logits, class)
    }

    /// Whether the open-world rule answers `unknown` for the frame.
    pub fn is_unknown(&self) -> bool {
        self.open_world.is_some_and(|v| v.unknown)
    }
}

/// Where one frame's time went (decoding is the caller's).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageTimes {
    /// Resize, crop, normalise.
    pub preprocess: Duration,
    /// The image model.
    pub model: Duration,
    /// CRM scoring and ranking.
    pub scoring: Duration,
}

/// Why a decoded image could not be classified.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// The image could not be preprocessed.
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
    /// The image model failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Why one image could not be classified.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file could not be read or decoded.
    #[error(transparent)]
    Load(#[from] ImageLoadError),
    /// The decoded image could not be preprocessed.
    #[error("{}: {source}", path.display())]
    Preprocess {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: PreprocessError,
    },
}

/// A ready-to-run classifier.
#[derive(Debug)]
pub struct Classifier {
    bundle: Bundle,
    plan: Plan,
    crm: FoldedCrm,
    allowed: AllowedClasses,
    /// The bundle's `[open_world]` rule, if it has one.
    open_world: Option<OpenWorldRule>,
    /// Computes the open-world scores (prompts and the bundle's part prototypes at hand).
    scorer: Scorer,
}

/// One image with everything the open-world step looks at: the prediction, every candidate
/// score, and the image parts (M, D).
#[derive(Clone, Debug, PartialEq)]
pub struct CandidateFrame {
    /// What the classifier says.
    pub prediction: Prediction,
    /// Every candidate open-world score.
    pub candidates: CandidateScores,
    /// The image model's parts, (M, D) row-major.
    pub parts: Vec<f32>,
}

/// One image's prediction and where each of its parts looked.
#[derive(Clone, Debug, PartialEq)]
pub struct Explained {
    /// What the classifier says.
    pub prediction: Prediction,
    /// UnA's maps of the image, one per part.
    pub maps: PartMaps,
}

impl Classifier {
    /// Builds the image-model plan for `options` and folds the CRM; every class may be
    /// answered.
    pub fn new(bundle: Bundle, options: PlanOptions) -> Result<Self, EngineError> {
        let plan = Plan::load(&bundle, options)?;
        Ok(Self::with_plan(bundle, plan))
    }

    /// [`Classifier::new`] on a plan that also gives the part maps ([`Plan::load_explained`]),
    /// for [`Classifier::explain_preprocessed`]; its predictions are bit for bit `new`'s.
    pub fn new_explained(bundle: Bundle, options: PlanOptions) -> Result<Self, EngineError> {
        let plan = Plan::load_explained(&bundle, options)?;
        Ok(Self::with_plan(bundle, plan))
    }

    /// The classifier of `bundle` on `plan`, every class answerable.
    fn with_plan(bundle: Bundle, plan: Plan) -> Self {
        let crm = FoldedCrm::new(bundle.weights());
        let allowed = AllowedClasses::all(bundle.manifest().classes.len());
        let open_world = OpenWorldRule::of(bundle.manifest());
        let scorer = Scorer::new(bundle.weights(), bundle.prototypes().cloned());
        Self {
            bundle,
            plan,
            crm,
            allowed,
            open_world,
            scorer,
        }
    }

    /// Answers only the classes `list` allows (a site's species; blank always), the others at
    /// probability 0 and the rest renormalised.
    pub fn restrict(&mut self, list: &SpeciesList, blank: &str) -> Result<(), AllowedError> {
        self.allowed = AllowedClasses::new(&self.bundle.manifest().classes, list, blank)?;
        Ok(())
    }

    /// The verified bundle.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }
    /// The image-model plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
    /// The folded CRM scorer.
    pub fn scorer(&self) -> &FoldedCrm {
        &self.crm
    }
    /// The bundle's open-world rule, if it has one.
    pub fn open_world(&self) -> Option<&OpenWorldRule> {
        self.open_world.as_ref()
    }
    /// The bundle's preprocessing.
    pub fn preprocess(&self) -> &Preprocess {
        &self.bundle.manifest().preprocess
    }

    /// Reads and preprocesses one image file into (3, S, S).
    pub fn load_image(&self, path: &Path) -> Result<Vec<f32>, ImageError> {
        let image = load_rgb(path)?;
        self.preprocess()
            .apply(&image)
            .map_err(|source| ImageError::Preprocess {
                path: path.to_path_buf(),
                source,
            })
    }

    /// Logits (N, C) of preprocessed images (N, 3, S, S).
    pub fn logits(&self, images: &[f32]) -> Result<Logits, EngineError> {
        self.logits_and_parts(images).map(|(logits, _)| logits)
    }

    /// Classifies one decoded frame, keeping the `k` best classes.
    pub fn classify(&self, image: &RgbImage, k: usize) -> Result<Prediction, ClassifyError> {
        self.classify_timed(image, k).map(|(p, _)| p)
    }

    /// [`Classifier::classify`], with the time of each stage.
    pub fn classify_timed(
        &self,
        image: &RgbImage,
        k: usize,
    ) -> Result<(Prediction, StageTimes), ClassifyError> {
        let t0 = Instant::now();
        let input = self.preprocess().apply(image)?;
        let t1 = Instant::now();
        let parts = self.plan.run(&input)?;
        let t2 = Instant::now();
        let logits = self
            .crm
            .score(&parts)
            .expect("the plan checked the parts shape");
        let row = logits.rows().next().expect("one image, one row");
        let prediction = self.predict(row, &parts, k);
        let times = StageTimes {
            preprocess: t1 - t0,
            model: t2 - t1,
            scoring: t2.elapsed(),
        };
        Ok((prediction, times))
    }

    /// The prediction for one image's logits (C) and parts (M, D), keeping the `k` best classes
    /// of those that may be answered (at least one: `k` is raised to 1), with the open-world
    /// verdict when the bundle has a rule.
    pub fn predict(&self, logits: &[f32], parts: &[f32], k: usize) -> Prediction {
        let restricted = self.allowed.restrict(logits);
        let probabilities = softmax(&restricted);
        let labels = &self.bundle.manifest().classes;
        let top = ranking::top_k(&restricted, k.max(1))
            .into_iter()
            .filter(|r| self.allowed.allows(r.class))
            .map(|r| ClassScore {
                index: r.class,
                label: labels[r.class].label.clone(),
                probability: probabilities[r.class],
            })
            .collect::<Vec<_>>();
        let open_world = self.open_world.as_ref().map(|rule| {
            let score = self.scorer.score(rule.kind, logits, parts, top[0].index);
            rule.verdict(score, top[0].index)
        });
        let taxonomies: Vec<_> = labels.iter().map(|c| c.taxonomy.as_ref()).collect();
        Prediction {
            top,
            logits: logits.to_vec(),
            open_world,
            taxa: best_taxa(&probabilities, &taxonomies),
        }
    }

    /// Classifies `paths` as one batch; each slot is that file's prediction or why it failed.
    pub fn classify_files(
        &self,
        paths: &[PathBuf],
        k: usize,
    ) -> Result<Vec<Result<Prediction, ImageError>>, EngineError> {
        let loaded = paths.iter().map(|p| self.load_image(p)).collect();
        self.classify_loaded(loaded, k)
    }

    /// Classifies the images [`Classifier::load_image`] read, as one batch, in order; one that
    /// failed to load stays its error. What [`Classifier::classify_files`] does once the files
    /// are read, for callers that read them elsewhere (on other threads, ahead of the model).
    pub fn classify_loaded(
        &self,
        loaded: Vec<Result<Vec<f32>, ImageError>>,
        k: usize,
    ) -> Result<Vec<Result<Prediction, ImageError>>, EngineError> {
        let batch: Vec<f32> = loaded
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .flatten()
            .copied()
            .collect();
        let mut predictions = if batch.is_empty() {
            Vec::new()
        } else {
            self.classify_preprocessed(&batch, k)?
        }
        .into_iter();
        Ok(loaded
            .into_iter()
            .map(|r| r.map(|_| predictions.next().expect("one prediction per image")))
            .collect())
    }

    /// Classifies preprocessed images (N, 3, S, S) as one batch, keeping the `k` best classes
    /// of each: the model's part of [`Classifier::classify_files`], for callers that prepare
    /// their own inputs (the crops of `classify --detections`).
    pub fn classify_preprocessed(
        &self,
        images: &[f32],
        k: usize,
    ) -> Result<Vec<Prediction>, EngineError> {
        let (logits, parts) = self.logits_and_parts(images)?;
        let per_image = self.crm.dims().parts_len();
        Ok(logits
            .rows()
            .zip(parts.chunks_exact(per_image))
            .map(|(row, parts)| self.predict(row, parts, k))
            .collect())
    }

    /// [`Classifier::classify_preprocessed`] with every candidate open-world score and the
    /// parts of each image, whatever the bundle's rule: what the export calibrates on and
    /// `BENCHMARKS.md` compares.
    pub fn classify_with_candidates(
        &self,
        images: &[f32],
        k: usize,
    ) -> Result<Vec<CandidateFrame>, EngineError> {
        let (logits, parts) = self.logits_and_parts(images)?;
        let per_image = self.crm.dims().parts_len();
        Ok(logits
            .rows()
            .zip(parts.chunks_exact(per_image))
            .map(|(row, parts)| {
                let prediction = self.predict(row, parts, k);
                let answered = prediction.best();
                CandidateFrame {
                    candidates: self.scorer.candidates(row, parts, answered),
                    prediction,
                    parts: parts.to_vec(),
                }
            })
            .collect())
    }

    /// Classifies one preprocessed image (3, S, S) as [`Classifier::classify_preprocessed`]
    /// does, and gives its part maps; needs a classifier made by
    /// [`Classifier::new_explained`] (otherwise [`EngineError::NotExplained`]).
    pub fn explain_preprocessed(&self, image: &[f32], k: usize) -> Result<Explained, EngineError> {
        let (parts, maps) = self.plan.run_explained(image)?;
        let logits = self
            .crm
            .score(&parts)
            .expect("the plan checked the parts shape");
        let row = logits.rows().next().expect("one image, one row");
        Ok(Explained {
            prediction: self.predict(row, &parts, k),
            maps,
        })
    }

    /// Logits (N, C) and parts (N, M, D) of preprocessed images (N, 3, S, S).
    fn logits_and_parts(&self, images: &[f32]) -> Result<(Logits, Vec<f32>), EngineError> {
        let parts = self.plan.run(images)?;
        let logits = self
            .crm
            .score(&parts)
            .expect("the plan checked the parts shape");
        Ok((logits, parts))
    }
}
