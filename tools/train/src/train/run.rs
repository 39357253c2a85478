//! A training run's full configuration (what a checkpoint records and a resume must match), and
//! the resolution of its data source into a training set and an evaluation set.
//!
//! Splits: CUB-200-2011 uses its official train/test split; an ImageFolder with `train/` and
//! `test/` (or `val/`) sub-trees uses those; a single ImageFolder tree or a COCO Camera Traps file
//! needs `--shots`, and the images not drawn become the evaluation set. With `--shots`, k images
//! per class are drawn from the training split with the shot seed (the same seed gives the same
//! shots).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::schedule::Schedule;
use super::sgd::SgdConfig;
use crate::data::coco_camera_traps::{load_coco_camera_traps, load_coco_camera_traps_boxes};
use crate::data::cub::{is_cub_root, load_cub, Split};
use crate::data::image_folder::{image_folder_splits, load_image_folder};
use crate::data::kshot::k_shot;
use crate::data::{DataError, Dataset};
use crate::device::Precision;
use crate::model::HeadConfig;

/// Where the labelled images come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DataSource {
    /// An ImageFolder tree (`root/<class>/…`, or `root/{train,test}/<class>/…`), or the
    /// CUB-200-2011 layout when `root` holds `images.txt` and `classes.txt`.
    Folder {
        /// The root directory.
        root: PathBuf,
    },
    /// A COCO Camera Traps JSON with its image root.
    CocoCameraTraps {
        /// The JSON file.
        json: PathBuf,
        /// The directory `file_name`s are relative to.
        images: PathBuf,
        /// One sample per annotated box, the box's crop (the runtime's crop rule), instead of
        /// one per image.
        #[serde(default)]
        boxes: bool,
    },
}

/// The data of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// The source.
    pub source: DataSource,
    /// Shots per class drawn from the training split (`None`: all of it).
    pub shots: Option<usize>,
    /// Seed of the shot draw.
    pub shot_seed: u64,
    /// A separate ImageFolder to evaluate on, overriding the source's own evaluation split.
    pub eval_folder: Option<PathBuf>,
}

/// Everything that defines a run. Stored in every checkpoint; a resume reuses it as is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The frozen CLIP checkpoint directory (HF layout).
    pub clip: PathBuf,
    /// The head.
    pub head: HeadConfig,
    /// The data.
    pub data: DataConfig,
    /// Epochs.
    pub epochs: usize,
    /// Images per batch.
    pub batch_size: usize,
    /// Optimiser.
    pub sgd: SgdConfig,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Seed of shuffling and augmentation.
    pub seed: u64,
    /// Random-resized-crop + flip augmentation (§6); off means the eval preprocessing.
    pub augment: bool,
    /// Evaluate every this many epochs (0: only at the end).
    pub eval_every: usize,
    /// Tower precision.
    pub precision: Precision,
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Fingerprint of the training set (provenance).
    pub train_fingerprint: String,
}

/// The resolved training and evaluation sets.
pub struct Splits {
    /// Training images (k-shot if requested).
    pub train: Dataset,
    /// Evaluation images, if the source has any.
    pub eval: Option<Dataset>,
    /// Notes for the user (short classes, skipped COCO images).
    pub notes: Vec<String>,
}

/// Errors resolving a run's data.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Listing a dataset failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The data settings do not fit together.
    #[error("{0}")]
    Config(String),
}

/// Lists the data of `cfg` and draws the shots.
pub fn resolve(cfg: &DataConfig) -> Result<Splits, RunError> {
    let mut notes = Vec::new();
    let (train, eval) = match &cfg.source {
        DataSource::Folder { root } if is_cub_root(root) => (
            load_cub(root, Split::Train)?,
            Some(load_cub(root, Split::Test)?),
        ),
        DataSource::Folder { root } => match image_folder_splits(root)? {
            Some((train, test)) => (train, Some(test)),
            None => (load_image_folder(root)?, None),
        },
        DataSource::CocoCameraTraps {
            json,
            images,
            boxes,
        } => {
            let (ds, summary) = match boxes {
                true => load_coco_camera_traps_boxes(json, images)?,
                false => load_coco_camera_traps(json, images)?,
            };
            notes.push(summary.to_string());
            (ds, None)
        }
    };
    let (train, mut eval) = match cfg.shots {
        Some(k) => {
            let draw = k_shot(&train, k, cfg.shot_seed);
            for (class, n) in &draw.short_classes {
                notes.push(format!(
                    "class {class:?} has only {n} images for {k} shots; all are used"
                ));
            }
            let eval = eval.or_else(|| (!draw.rest.is_empty()).then_some(draw.rest));
            (draw.train, eval)
        }
        None => (train, eval),
    };
    if let Some(dir) = &cfg.eval_folder {
        let ds = load_image_folder(dir)?;
        if ds.classes != train.classes {
            return Err(RunError::Config(format!(
                "{}: its classes {:?} differ from the training classes {:?}",
                dir.display(),
                ds.classes,
                train.classes
            )));
        }
        eval = Some(ds);
    }
    Ok(Splits { train, eval, notes })
}
