//! A deterministic synthetic fine-grained world: bird species that share one body plan and differ
//! only in small parts, rendered as camera-trap frames with captions.
//!
//! No real fine-grained dataset can be downloaded where this project is built and tested, yet
//! XR-VLM must be shown to learn part-level differences. `xrvlm-train synth` writes an ImageFolder
//! of such species (and `blank` frames), `captions.jsonl`, `species.json` and `synth.json`; see
//! [`generate`]. Species come from the world seed alone and images from the image seed, so a
//! model can be evaluated on fresh images of the species it was trained on.
//!
//! This crate is the generator alone, so that both the training crate (`xrvlm-train synth`) and
//! the edge runtime (its synthetic frame source) can use it; it depends on neither. The
//! colour-histogram baseline, which reads datasets, stays in `xrvlm-train`.
//!
//! # Layout
//! - [`palette`]: part colours (species attributes) and body colours (per image).
//! - [`species`]: the attribute catalogue, species derivation, names and descriptions.
//! - [`taxonomy`]: genera and families of the species (shared beak and tail; shared beak).
//! - [`render`]: the anti-aliased rasteriser (ellipses, polygons, thick lines, part labels).
//! - [`affine`]: similarity transforms from local model units to pixels.
//! - [`bird`]: the shared body plan and how each part is drawn.
//! - [`backdrop`]: sky or forest gradients and clutter (foliage, rocks, branches, leaves, berries).
//! - [`scene`]: one frame: pose, perch, occlusion and part visibility.
//! - [`lighting`]: exposure, sensor noise and the night (infrared) look.
//! - [`scenes`]: large camera-trap frames with several birds and their ground-truth boxes, and
//!   bursts of one fixed scene into which a bird arrives.
//! - [`captions`]: captions of the visible parts and of empty frames.
//! - [`random`]: keyed ChaCha8 streams and small distributions.
//! - `output`: writing a whole dataset, in parallel and byte-for-byte reproducibly.
//! - `scene_output`: writing a scene set (large JPEG frames and sequences) with its ground truth,
//!   see [`generate_scenes`]; `truth_files`: that ground truth as MegaDetector batch output,
//!   COCO Camera Traps and one JSON line per box.
#![warn(missing_docs)]

pub mod affine;
pub mod backdrop;
pub mod bird;
pub mod captions;
pub mod lighting;
mod output;
pub mod palette;
pub mod random;
pub mod render;
pub mod scene;
mod scene_output;
pub mod scenes;
pub mod species;
pub mod taxonomy;
mod truth_files;

use std::path::PathBuf;

use serde::Serialize;

pub use output::{generate, SynthSummary, BLANK_STREAM, GENERATOR_VERSION};
pub use scene::Framing;
pub use scene_output::{
    generate_scenes, parse_sizes, SceneConfig, ScenesSummary, CAMERA_SIZES,
    DEFAULT_SCENE_EMPTY_FRACTION, DEFAULT_SEQUENCE_LENGTH, JPEG_QUALITY, MAX_FRAMES, MAX_SEQUENCES,
    MAX_SEQUENCE_LENGTH, SCENE_SIDE,
};
pub use species::{derive_species, Attributes, Species};
pub use truth_files::{GROUND_TRUTH_DETECTOR, MD_FORMAT_VERSION};

/// Default world seed.
pub const DEFAULT_WORLD: u64 = 1;
/// Default image side: the demo model's Resize(73) + CenterCrop(64) keeps almost all of it.
pub const DEFAULT_SIZE: u32 = 72;
/// Default fraction of night (infrared) frames.
pub const DEFAULT_NIGHT_FRACTION: f64 = 0.25;
/// Default number of empty frames, as a fraction of the bird frames.
pub const DEFAULT_EMPTY_FRACTION: f64 = 0.05;
/// Default fraction of captions that name the species.
pub const DEFAULT_NAME_FRACTION: f64 = 0.3;
/// Smallest and largest supported image side.
pub const MIN_SIZE: u32 = 32;
/// Largest supported image side.
pub const MAX_SIZE: u32 = 512;
/// Most species per world (names and distinct attribute sets stay cheap to find).
pub const MAX_CLASSES: usize = 1000;
/// Most images per class (file names have five digits).
pub const MAX_PER_CLASS: usize = 99_999;
/// Class folder of empty frames.
pub const BLANK_CLASS: &str = "blank";

/// Everything that determines a generated dataset; written to `synth.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SynthConfig {
    /// World seed: which species exist.
    pub world: u64,
    /// Image seed: which images of them are drawn.
    pub seed: u64,
    /// Number of species.
    pub classes: usize,
    /// Bird images per species.
    pub per_class: usize,
    /// Image side in pixels.
    pub size: u32,
    /// Fraction of frames rendered at night (infrared grey).
    pub night_fraction: f64,
    /// Empty frames, as a fraction of the bird frames (`blank` class).
    pub empty_fraction: f64,
    /// Fraction of captions that name the species.
    pub name_fraction: f64,
    /// Whole camera frames or detector crops.
    pub framing: Framing,
}

impl SynthConfig {
    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<(), SynthError> {
        let bad = |name: &'static str, value: String, expected: &'static str| {
            Err(SynthError::InvalidParameter {
                name,
                value,
                expected,
            })
        };
        if !(1..=MAX_CLASSES).contains(&self.classes) {
            return bad("classes", self.classes.to_string(), "1 to 1000");
        }
        if !(1..=MAX_PER_CLASS).contains(&self.per_class) {
            return bad("per-class", self.per_class.to_string(), "1 to 99999");
        }
        if !(MIN_SIZE..=MAX_SIZE).contains(&self.size) {
            return bad("size", self.size.to_string(), "32 to 512 pixels");
        }
        for (name, f) in [
            ("night-fraction", self.night_fraction),
            ("empty-fraction", self.empty_fraction),
            ("name-fraction", self.name_fraction),
        ] {
            if !(0.0..=1.0).contains(&f) {
                return bad(name, f.to_string(), "a fraction between 0 and 1");
            }
        }
        Ok(())
    }

    /// Number of empty frames: `empty_fraction` of all bird frames, rounded, and at least one
    /// whenever the fraction is positive (so `blank` exists exactly when it is).
    pub fn blank_images(&self) -> usize {
        if self.empty_fraction <= 0.0 {
            return 0;
        }
        let n = self.empty_fraction * (self.per_class * self.classes) as f64;
        (n.round() as usize).max(1)
    }
}

/// Why a dataset could not be generated. Every variant names the file or parameter.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A parameter out of range.
    #[error("--{name} {value} is out of range; expected {expected}")]
    InvalidParameter {
        /// The flag name.
        name: &'static str,
        /// The given value.
        value: String,
        /// The accepted range.
        expected: &'static str,
    },
    /// The output folder already holds files.
    #[error(
        "{} is not empty; expected a new or empty folder (remove it or choose another --out)",
        path.display()
    )]
    OutputNotEmpty {
        /// The output folder.
        path: PathBuf,
    },
    /// Reading or writing a file or folder failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Encoding a PNG failed.
    #[error("{}: cannot encode PNG: {source}", path.display())]
    Png {
        /// The image file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
    /// Encoding a JPEG failed.
    #[error("{}: cannot encode JPEG: {source}", path.display())]
    Jpeg {
        /// The image file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
    /// Serialising a JSON file failed.
    #[error("{}: cannot write JSON: {source}", path.display())]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A rendering thread panicked (a bug).
    #[error("a rendering thread panicked while writing into {}", path.display())]
    WorkerPanicked {
        /// The output folder.
        path: PathBuf,
    },
}
