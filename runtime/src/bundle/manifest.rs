//! `manifest.toml`: what a bundle is, in the form `models/BUNDLE.md` documents.
//!
//! [`Manifest::parse`] reads `format_version` before anything else, so a manifest from a newer
//! format is refused with the version this runtime reads rather than with a confusing field
//! error. Every table rejects unknown keys. After parsing, [`Manifest::validate`] checks what
//! serde cannot: sizes are positive and agree with each other, the preprocessing is usable,
//! class labels are unique, and the file list names exactly one prompts file, one fp32 image
//! model, at most one image model per precision, and `golden/golden.json`; an `[open_world]`
//! section has a finite threshold, shares in range and a blank label that is a class. Errors
//! name the manifest file and the field.
//!
//! **Versions.** Every field added after format 1 belongs to the format that introduced it
//! ([`Manifest::format_fields`]): format 2 added `[open_world]`, `classes[].taxonomy` and
//! `files[].part_maps`. This runtime reads formats [`OLDEST_FORMAT_VERSION`] to
//! [`FORMAT_VERSION`]; a manifest that uses a field newer than its own `format_version` is
//! refused naming the field, and a newer format is refused as newer, with the versions this
//! runtime reads. [`Manifest::to_toml`] writes the oldest format that holds the manifest's
//! fields, so a bundle without the newer fields stays readable by older runtimes, and an older
//! runtime refuses one with them by its version rather than by a field it does not know.
//!
//! The types also serialize, so the exporter writes manifests with the same definitions.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bundle::integrity::Sha256Digest;
use crate::open_world::ScoreKind;
use crate::preprocess::Preprocess;
use crate::scoring::CrmDims;
use crate::taxonomy::Taxonomy;

/// The newest manifest format this runtime reads.
pub const FORMAT_VERSION: u32 = 2;

/// The oldest manifest format this runtime reads: bundles of every format since load unchanged.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// File name of the manifest inside a bundle directory.
pub const MANIFEST_FILE: &str = "manifest.toml";

/// Path, relative to the bundle, of the golden logits.
pub const GOLDEN_JSON: &str = "golden/golden.json";

/// The parsed `manifest.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format of this manifest, [`OLDEST_FORMAT_VERSION`] to [`FORMAT_VERSION`]; written as
    /// the oldest format that holds the manifest's fields ([`Manifest::to_toml`]).
    pub format_version: u32,
    /// Name, version and description of the model.
    pub model: ModelInfo,
    /// The frozen CLIP image tower the model was built on.
    pub backbone: Backbone,
    /// The XR-VLM head sizes.
    pub head: Head,
    /// Test-time preprocessing, exactly as training evaluated.
    pub preprocess: Preprocess,
    /// Classes in logit order.
    pub classes: Vec<ClassInfo>,
    /// Every file of the bundle except `manifest.toml`.
    pub files: Vec<FileEntry>,
    /// Reference figures measured at export; absent until export has measured them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    /// How a frame of a species the model never saw is answered `unknown`; absent in bundles
    /// made before it existed, which then reject nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_world: Option<OpenWorld>,
    /// Where the model came from.
    pub provenance: Provenance,
}

/// `[model]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    /// Short name, e.g. `demo`.
    pub name: String,
    /// Free-text version.
    pub version: String,
    /// Creation time, RFC 3339.
    pub created: String,
    /// One line on what the model recognises.
    pub description: String,
}

/// `[backbone]`: descriptive; the runtime checks `image_size` and `embed_dim` against the head,
/// the preprocessing and the image model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backbone {
    /// Backbone family.
    pub architecture: Architecture,
    /// S, the square input side.
    pub image_size: u32,
    /// ViT patch side; a ModifiedResNet's total stride (32: one map cell per 32×32 pixels).
    pub patch_size: u32,
    /// Transformer width; a ModifiedResNet's stem width.
    pub width: u32,
    /// Transformer blocks; a ModifiedResNet's bottlenecks.
    pub layers: u32,
    /// Attention heads; a ModifiedResNet's attention-pool heads.
    pub heads: u32,
    /// D, the joint embedding width.
    pub embed_dim: u32,
    /// MLP activation.
    pub activation: Activation,
}

/// Backbone families the bundle format knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Architecture {
    /// CLIP's vision transformer.
    #[serde(rename = "clip-vit")]
    ClipVit,
    /// CLIP's ModifiedResNet (the RN50 family).
    #[serde(rename = "clip-resnet")]
    ClipResnet,
}

/// MLP activations of CLIP towers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x·sigmoid(1.702x)`, OpenAI CLIP.
    QuickGelu,
    /// erf GELU.
    Gelu,
    /// ReLU (a ModifiedResNet's convolutions).
    Relu,
}

/// `[head]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// Head kind.
    pub kind: HeadKind,
    /// M, image parts.
    pub parts: u32,
    /// P, prompts per class.
    pub prompts: u32,
    /// D, width of parts and prompt features.
    pub embed_dim: u32,
    /// D', width after ε.
    pub crm_dim: u32,
    /// H, hidden width of the relation MLP.
    pub hidden: u32,
    /// s, the scale of normalised features.
    pub feature_scale: f32,
}

/// Head kinds the runtime scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadKind {
    /// UnA + MPP + CRM.
    Xrvlm,
}

/// One `[[classes]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassInfo {
    /// Unique label, as in the training data.
    pub label: String,
    /// Common name, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    /// Scientific name, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scientific_name: Option<String>,
    /// Genus, family, order and class, where known: what a roll-up answers when no species is
    /// sure ([`crate::taxonomy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taxonomy: Option<Taxonomy>,
}

/// One `[[files]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path relative to the bundle directory, `/`-separated.
    pub path: String,
    /// What the file is.
    pub role: FileRole,
    /// Arithmetic of an image model; only on `visual` files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<ModelPrecision>,
    /// SHA-256 of the content.
    pub sha256: Sha256Digest,
    /// Size in bytes.
    pub bytes: u64,
    /// Only on `visual` files: the name of the tensor in this ONNX file that holds UnA's part
    /// maps, the softmax over the tokens `A1` of shape (N, M+1, T) with the background map
    /// last (`xrvlm classify --explain`; `crate::engine::maps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_maps: Option<String>,
}

/// Roles of bundle files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    /// An ONNX image model.
    Visual,
    /// `prompts.safetensors`.
    Prompts,
    /// `golden/golden.json` or a golden image.
    Golden,
    /// `open_world.safetensors`: the part prototypes of the `part_prototype` and
    /// `nearest_prototype` open-world scores.
    OpenWorld,
}

/// Arithmetic of a stored image model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelPrecision {
    /// Float32 (`visual.onnx`).
    Fp32,
    /// Integer arithmetic in the QOperator form (`visual.int8.onnx`).
    Int8,
}

/// `[metrics]`, written by export after it re-opened the bundle through the runtime.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// What was measured.
    pub eval_set: String,
    /// Images measured.
    pub eval_images: u64,
    /// Top-1 accuracy of the fp32 model.
    pub fp32_top1: f64,
    /// Top-5 accuracy of the fp32 model.
    pub fp32_top5: f64,
    /// Top-1 accuracy of the int8 model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int8_top1: Option<f64>,
    /// Top-5 accuracy of the int8 model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int8_top5: Option<f64>,
    /// Fraction of images where int8 top-1 equals fp32 top-1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int8_agreement: Option<f64>,
    /// Largest |int8 logit − fp32 logit| over the measured images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int8_max_abs_logit_diff: Option<f64>,
    /// Largest |tract fp32 logit − training crate logit| on `golden/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub golden_fp32_max_abs_logit_diff: Option<f64>,
}

/// `[open_world]`, written by export (or `xrvlm-train calibrate-open-world`) after measuring
/// the chosen score on known-species images through the runtime at fp32 ([`crate::open_world`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenWorld {
    /// The score compared (`max_softmax`, `max_logit`, `energy` or `part_prompt`).
    pub score: ScoreKind,
    /// A frame whose score is below it is `unknown`, unless its top class is `blank_label`.
    pub threshold: f64,
    /// The share of known-species frames the threshold was chosen to keep.
    pub target_recall: f64,
    /// The share it keeps of the calibration images (at least `target_recall`).
    pub recall: f64,
    /// What it was calibrated on (a name, like `metrics.eval_set`).
    pub calibration_set: String,
    /// Known-species images calibrated on.
    pub calibration_images: u64,
    /// The no-animal class, never answered `unknown`; a class label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blank_label: Option<String>,
}

/// `[provenance]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Trainer name and version.
    pub trainer: String,
    /// SHA-256 of the training checkpoint.
    pub checkpoint_sha256: Sha256Digest,
    /// Backbone name.
    pub backbone: String,
    /// SHA-256 over the sorted (relative path, SHA-256) of the training images.
    pub dataset_fingerprint: String,
}

/// Why a manifest was refused. Every variant names the manifest file.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The manifest file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax, a missing or unknown key, or a value of the wrong type; the message
    /// from the TOML parser names the key and the line.
    #[error("{}: {message}", path.display())]
    Syntax {
        /// The manifest file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// No `format_version` at the top level.
    #[error(
        "{}: format_version is missing (this runtime reads format_version {oldest} to {newest})",
        path.display(),
        oldest = OLDEST_FORMAT_VERSION,
        newest = FORMAT_VERSION
    )]
    MissingFormatVersion {
        /// The manifest file.
        path: PathBuf,
    },
    /// A format version this runtime does not read.
    #[error(
        "{}: format_version {found} is {}; this runtime reads format_version {oldest} to {newest}{}",
        path.display(),
        if *found > i64::from(FORMAT_VERSION) { "newer than this runtime" } else { "not a valid version" },
        if *found > i64::from(FORMAT_VERSION) { " (update xrvlm to open this bundle)" } else { "" },
        oldest = OLDEST_FORMAT_VERSION,
        newest = FORMAT_VERSION
    )]
    UnsupportedFormat {
        /// The manifest file.
        path: PathBuf,
        /// The version found.
        found: i64,
    },
    /// A value that parses but is not acceptable.
    #[error("{}: {field}: {problem}", path.display())]
    Invalid {
        /// The manifest file.
        path: PathBuf,
        /// The field, as written in TOML (`head.parts`, `files[2].precision`).
        field: String,
        /// What is wrong.
        problem: String,
    },
}

impl ClassInfo {
    /// A class known only by its training label; the common name is the label with `_` as
    /// spaces (`bartail_finch` → `bartail finch`).
    pub fn from_label(label: &str) -> Self {
        Self {
            label: label.to_string(),
            common_name: Some(label.replace('_', " ")),
            scientific_name: None,
            taxonomy: None,
        }
    }
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates manifest text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ManifestError> {
        check_format_version(text, path)?;
        let manifest: Manifest = toml::from_str(text).map_err(|e| syntax(path, &e))?;
        manifest.validate(path)?;
        Ok(manifest)
    }

    /// The manifest as TOML text, as the exporter writes it: `format_version` is the oldest
    /// format that holds its fields, whatever the field says.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        let written = Manifest {
            format_version: self.required_format().0,
            ..self.clone()
        };
        toml::to_string(&written)
    }

    /// Every field this manifest uses that came after format 1, with the format that added it
    /// (as written in TOML: `open_world`, `classes[3].taxonomy`).
    pub fn format_fields(&self) -> Vec<(String, u32)> {
        let mut fields = Vec::new();
        if self.open_world.is_some() {
            fields.push(("open_world".to_string(), 2));
        }
        for (i, class) in self.classes.iter().enumerate() {
            if class.taxonomy.is_some() {
                fields.push((format!("classes[{i}].taxonomy"), 2));
            }
        }
        for (i, file) in self.files.iter().enumerate() {
            if file.part_maps.is_some() {
                fields.push((format!("files[{i}].part_maps"), 2));
            }
        }
        fields
    }

    /// The oldest format that holds this manifest's fields, and the first field that needs
    /// it (`None` for format 1).
    pub fn required_format(&self) -> (u32, Option<String>) {
        self.format_fields().into_iter().fold(
            (OLDEST_FORMAT_VERSION, None),
            |(version, field), (name, needs)| {
                if needs > version {
                    (needs, Some(name))
                } else {
                    (version, field)
                }
            },
        )
    }

    /// Checks everything serde cannot; `path` names the file in errors.
    pub fn validate(&self, path: &Path) -> Result<(), ManifestError> {
        let invalid = |field: &str, problem: String| ManifestError::Invalid {
            path: path.to_path_buf(),
            field: field.to_string(),
            problem,
        };
        if let (needed, Some(field)) = self.required_format() {
            if needed > self.format_version {
                return Err(invalid(
                    &field,
                    format!(
                        "came with format_version {needed}, but this manifest says \
                         format_version {}: write format_version = {needed}",
                        self.format_version
                    ),
                ));
            }
        }
        if self.model.name.trim().is_empty() {
            return Err(invalid("model.name", "must not be empty".into()));
        }
        validate_classes(&self.classes).map_err(|(f, p)| invalid(&f, p))?;
        self.crm_dims()
            .map_err(|e| invalid(&format!("head.{}", e.name), "must be at least 1".into()))?;
        let scale = self.head.feature_scale;
        if !(scale.is_finite() && scale > 0.0) {
            return Err(invalid(
                "head.feature_scale",
                format!("must be finite and > 0, got {scale}"),
            ));
        }
        if self.head.embed_dim != self.backbone.embed_dim {
            return Err(invalid(
                "head.embed_dim",
                format!(
                    "{} differs from backbone.embed_dim {}",
                    self.head.embed_dim, self.backbone.embed_dim
                ),
            ));
        }
        self.preprocess
            .validate()
            .map_err(|e| invalid("preprocess", e.to_string()))?;
        if self.preprocess.crop != self.backbone.image_size {
            return Err(invalid(
                "preprocess.crop",
                format!(
                    "{} differs from backbone.image_size {}: the crop is the model input",
                    self.preprocess.crop, self.backbone.image_size
                ),
            ));
        }
        validate_files(&self.files).map_err(|(f, p)| invalid(&f, p))?;
        if let Some(open_world) = &self.open_world {
            validate_open_world(open_world, &self.classes).map_err(|(f, p)| invalid(&f, p))?;
        }
        let needs_prototypes = self
            .open_world
            .as_ref()
            .is_some_and(|o| o.score.needs_prototypes());
        match (needs_prototypes, self.open_world_file().is_some()) {
            (true, false) => {
                return Err(invalid(
                    "files",
                    "[open_world] score = \"part_prototype\" (or nearest_prototype) needs a file \
                     of role open_world (the part prototypes)"
                        .into(),
                ))
            }
            (false, true) => {
                return Err(invalid(
                    "files",
                    "a file of role open_world is listed without [open_world] score = \
                     \"part_prototype\" or nearest_prototype"
                        .into(),
                ))
            }
            _ => {}
        }
        Ok(())
    }

    /// The CRM sizes (C from the class list, the rest from `[head]`).
    pub fn crm_dims(&self) -> Result<CrmDims, crate::scoring::ZeroDimError> {
        let h = &self.head;
        CrmDims::new(
            self.classes.len(),
            h.parts as usize,
            h.prompts as usize,
            h.embed_dim as usize,
            h.crm_dim as usize,
            h.hidden as usize,
        )
    }

    /// The image model of `precision`, if the bundle has one.
    pub fn visual_file(&self, precision: ModelPrecision) -> Option<&FileEntry> {
        self.files
            .iter()
            .find(|f| f.role == FileRole::Visual && f.precision == Some(precision))
    }

    /// The part prototypes file, if the bundle has one (a validated manifest has one exactly
    /// when `[open_world]` scores by a prototype score).
    pub fn open_world_file(&self) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.role == FileRole::OpenWorld)
    }

    /// The prompts file (a validated manifest has exactly one).
    pub fn prompts_file(&self) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.role == FileRole::Prompts)
    }

    /// The class labels in logit order.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.classes.iter().map(|c| c.label.as_str())
    }
}

/// Reads `format_version` alone, so that a newer format is reported as such.
fn check_format_version(text: &str, path: &Path) -> Result<(), ManifestError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| syntax(path, &e))?;
    let found = match table.get("format_version") {
        None => {
            return Err(ManifestError::MissingFormatVersion {
                path: path.to_path_buf(),
            })
        }
        Some(toml::Value::Integer(v)) => *v,
        Some(other) => {
            return Err(ManifestError::Invalid {
                path: path.to_path_buf(),
                field: "format_version".into(),
                problem: format!("must be an integer, got {other}"),
            })
        }
    };
    if !(i64::from(OLDEST_FORMAT_VERSION)..=i64::from(FORMAT_VERSION)).contains(&found) {
        return Err(ManifestError::UnsupportedFormat {
            path: path.to_path_buf(),
            found,
        });
    }
    Ok(())
}

fn syntax(path: &Path, e: &toml::de::Error) -> ManifestError {
    ManifestError::Syntax {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    }
}

/// Labels present, non-empty and unique. Errors are (field, problem).
fn validate_classes(classes: &[ClassInfo]) -> Result<(), (String, String)> {
    if classes.is_empty() {
        return Err(("classes".into(), "at least one class is required".into()));
    }
    let mut seen = HashSet::new();
    for (i, class) in classes.iter().enumerate() {
        if class.label.trim().is_empty() {
            return Err((format!("classes[{i}].label"), "must not be empty".into()));
        }
        if !seen.insert(class.label.as_str()) {
            return Err((
                format!("classes[{i}].label"),
                format!("{:?} appears twice", class.label),
            ));
        }
    }
    Ok(())
}

/// A finite threshold, shares in range, a blank label that is a class. Errors are
/// (field, problem).
fn validate_open_world(
    open_world: &OpenWorld,
    classes: &[ClassInfo],
) -> Result<(), (String, String)> {
    let field = |name: &str| format!("open_world.{name}");
    if !open_world.threshold.is_finite() {
        return Err((field("threshold"), "must be a finite number".into()));
    }
    let target = open_world.target_recall;
    if !(target > 0.0 && target <= 1.0) {
        return Err((
            field("target_recall"),
            format!("must be in (0, 1], got {target}"),
        ));
    }
    let recall = open_world.recall;
    if !(0.0..=1.0).contains(&recall) {
        return Err((field("recall"), format!("must be in [0, 1], got {recall}")));
    }
    if let Some(blank) = &open_world.blank_label {
        if !classes.iter().any(|c| &c.label == blank) {
            return Err((field("blank_label"), format!("{blank:?} is not a class")));
        }
    }
    Ok(())
}

/// Paths safe and unique, roles and precisions consistent, the required files present.
fn validate_files(files: &[FileEntry]) -> Result<(), (String, String)> {
    let mut paths = HashSet::new();
    let mut visual = HashSet::new();
    let mut prompts = 0;
    let mut open_world = 0;
    for (i, file) in files.iter().enumerate() {
        let field = |name: &str| format!("files[{i}].{name}");
        check_relative_path(&file.path).map_err(|p| (field("path"), p))?;
        if !paths.insert(file.path.as_str()) {
            return Err((field("path"), format!("{:?} is listed twice", file.path)));
        }
        match (file.role, file.precision) {
            (FileRole::Visual, None) => {
                return Err((field("precision"), "required on a visual file".into()))
            }
            (FileRole::Visual, Some(p)) if !visual.insert(p) => {
                return Err((
                    field("precision"),
                    format!("a second visual file of precision {p:?}"),
                ))
            }
            (FileRole::Visual, Some(_)) => {}
            (_, Some(_)) => {
                return Err((
                    field("precision"),
                    "only visual files have a precision".into(),
                ))
            }
            (FileRole::Prompts, None) => prompts += 1,
            (FileRole::OpenWorld, None) => open_world += 1,
            (FileRole::Golden, None) if !file.path.starts_with("golden/") => {
                return Err((field("path"), "golden files live under golden/".into()))
            }
            (FileRole::Golden, None) => {}
        }
        match (&file.part_maps, file.role) {
            (Some(_), role) if role != FileRole::Visual => {
                return Err((
                    field("part_maps"),
                    "only an image model (role visual) has part maps".into(),
                ))
            }
            (Some(name), _) if name.trim().is_empty() => {
                return Err((field("part_maps"), "must not be empty".into()))
            }
            _ => {}
        }
    }
    if !visual.contains(&ModelPrecision::Fp32) {
        return Err(("files".into(), "no visual file of precision fp32".into()));
    }
    if open_world > 1 {
        return Err((
            "files".into(),
            format!("at most one file of role open_world is allowed, found {open_world}"),
        ));
    }
    if prompts != 1 {
        return Err((
            "files".into(),
            format!("exactly one file of role prompts is required, found {prompts}"),
        ));
    }
    let golden_json = files
        .iter()
        .any(|f| f.role == FileRole::Golden && f.path == GOLDEN_JSON);
    if !golden_json {
        return Err((
            "files".into(),
            format!("{GOLDEN_JSON} (role golden) is required"),
        ));
    }
    Ok(())
}

/// A bundle path: relative, `/`-separated, no `.`/`..`/empty components, not the manifest.
fn check_relative_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.starts_with('/') || path.contains('\\') {
        return Err(format!(
            "{path:?} must be a relative path with / separators"
        ));
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(format!(
            "{path:?} must not contain empty, . or .. components"
        ));
    }
    if path == MANIFEST_FILE {
        return Err("the manifest does not list itself".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
