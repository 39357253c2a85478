//! `xrvlm-train export`: a trained XR-VLM run written as a model bundle (`models/BUNDLE.md`)
//! and proved through the runtime before it is handed over.
//!
//! In order: the fp32 and int8 image graphs ([`super::visual`], [`super::int8`], calibrated on
//! training images), `prompts.safetensors` ([`prompts`]), `golden/` ([`golden`]) and
//! `manifest.toml` are written into `<out>.partial/`; the runtime then opens that directory
//! (verifying hashes and shapes), the golden images are run through tract at fp32 against the
//! training crate's logits, and an evaluation set through fp32 and int8 ([`verify`]); the
//! figures go into `[metrics]`, the evaluation set's known-species images calibrate the
//! unknown-species threshold of `[open_world]` ([`crate::open_world`]), the bundle is opened
//! once more, and only then is the directory renamed to `<out>`. A failed export leaves no bundle behind that looks finished.

pub mod golden;
pub mod images;
pub mod prompts;
pub mod verify;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use candle_core::{Device, Tensor};
use xrvlm_runtime::bundle::integrity::digest_file;
use xrvlm_runtime::bundle::manifest::{
    Activation, Architecture, Backbone, ClassInfo, FileEntry, FileRole, Head, HeadKind, Manifest,
    ModelInfo, ModelPrecision, Provenance, FORMAT_VERSION, GOLDEN_JSON, MANIFEST_FILE,
};
use xrvlm_runtime::engine::Precision;
use xrvlm_runtime::preprocess::Preprocess;
use xrvlm_runtime::timestamp::rfc3339_utc;

use super::int8::{write_int8, Int8Options, QuantReport};
use super::una::PART_MAPS;
use super::visual::write_fp32;
use super::ExportError;
use crate::clip::config::Activation as ClipActivation;
use crate::clip::resnet::config::DOWNSAMPLING;
use crate::clip::ImageConfig;
use crate::data::image_folder::load_image_folder;
use crate::data::Dataset;
use crate::model::classifier::Head as ModelHead;
use crate::model::{HeadKind as TrainHeadKind, Model, ModelError};
use crate::open_world::{calibrate_section, install, OpenWorldError, OpenWorldOptions};
use crate::taxonomy_file::{self, TaxonomyFileError};
use crate::train::run::{resolve, RunConfig};
use crate::train::trainer::load_trained;
use images::{pick_per_class, preprocess_files};

/// File names of the two image models.
pub const VISUAL_FP32: &str = "visual.onnx";
/// The int8 image model.
pub const VISUAL_INT8: &str = "visual.int8.onnx";

/// What to export and how.
#[derive(Clone, Debug)]
pub struct BundleOptions {
    /// The run's `checkpoint.safetensors`.
    pub checkpoint: PathBuf,
    /// The bundle directory to create.
    pub out: PathBuf,
    /// `[model] name` (default: the directory's name).
    pub name: Option<String>,
    /// `[model] description`.
    pub description: Option<String>,
    /// ImageFolder of calibration images (default: the run's training images).
    pub calibration: Option<PathBuf>,
    /// Calibration images used (classes in turn).
    pub calibration_images: usize,
    /// How the int8 graph is made.
    pub int8: Int8Options,
    /// ImageFolder measured for `[metrics]` (default: the run's evaluation set).
    pub eval: Option<PathBuf>,
    /// Golden images copied into the bundle.
    pub golden: usize,
    /// tract threads while measuring.
    pub threads: usize,
    /// Replace an existing bundle at `out`.
    pub overwrite: bool,
    /// How `[open_world]` is calibrated on the evaluation set.
    pub open_world: OpenWorldOptions,
    /// The classes' taxonomies (species.json or CSV, [`crate::taxonomy_file`]), if any.
    pub taxonomy: Option<PathBuf>,
}

/// What an export wrote and measured.
pub struct BundleReport {
    /// The final manifest (with `[metrics]`).
    pub manifest: Manifest,
    /// The int8 graph's calibration report.
    pub quant: QuantReport,
}

/// Everything that can stop an export. Messages name the file or set concerned.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// `out` exists and `--overwrite` was not given.
    #[error("{} already exists; pass --overwrite to replace it", .0.display())]
    Exists(PathBuf),
    /// The run cannot be exported.
    #[error("{0}")]
    Run(String),
    /// Images for calibration, golden or evaluation are missing or unusable.
    #[error("{0}")]
    Data(String),
    /// A file could not be written or copied.
    #[error("{}: {message}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The runtime refused or failed on the written bundle.
    #[error("the runtime rejected the written bundle: {0}")]
    Runtime(String),
    /// The open-world threshold could not be calibrated.
    #[error("calibrating the open-world threshold: {0}")]
    OpenWorld(String),
    /// The taxonomy file could not be read or does not cover the classes.
    #[error(transparent)]
    Taxonomy(#[from] TaxonomyFileError),
    /// Writing an image graph failed.
    #[error(transparent)]
    Graph(#[from] ExportError),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl BundleError {
    fn io(path: &Path, e: std::io::Error) -> Self {
        Self::Write {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }

    fn runtime(e: impl std::fmt::Display) -> Self {
        Self::Runtime(e.to_string())
    }
}

/// Exports the run of `opts.checkpoint` as a verified bundle at `opts.out`.
pub fn export_bundle(opts: &BundleOptions) -> Result<BundleReport, BundleError> {
    if opts.out.exists() && !opts.overwrite {
        return Err(BundleError::Exists(opts.out.clone()));
    }
    if let Some(path) = &opts.taxonomy {
        // Refused before the export's minutes of work rather than after.
        taxonomy_file::read(path)?;
    }
    let device = Device::Cpu;
    let (run, model) =
        load_trained(&opts.checkpoint, &device).map_err(|e| BundleError::Run(format!("{e:#}")))?;
    if model.config.kind != TrainHeadKind::Xrvlm {
        return Err(BundleError::Run(format!(
            "{}: a bundle holds an XR-VLM head, this run trained {:?}",
            opts.checkpoint.display(),
            model.config.kind
        )));
    }
    let (train, eval) = datasets(&run, opts)?;
    let preprocess = Preprocess::for_image_size(model.clip.config.vision.image_size() as u32);
    let staging = staging_dir(&opts.out)?;
    let quant = write_files(&model, &train, &eval, &preprocess, opts, &staging)?;
    let mut manifest = build_manifest(&model, &run, &train, &preprocess, opts, &staging)?;
    write_manifest(&manifest, &staging)?;
    let fp32 = verify::classifier(&staging, Precision::Fp32, opts.threads)?;
    let int8 = verify::classifier(&staging, Precision::Int8, opts.threads)?;
    manifest.metrics = Some(verify::measure(&fp32, &int8, &eval)?);
    write_manifest(&manifest, &staging)?;
    let open_world = |e: OpenWorldError| BundleError::OpenWorld(e.to_string());
    let calibrated = calibrate_section(&fp32, &eval, &opts.open_world).map_err(open_world)?;
    let mut manifest = install(&staging, calibrated).map_err(open_world)?;
    if let Some(path) = &opts.taxonomy {
        manifest = taxonomy_file::install(&staging, path, &opts.open_world.blank_label)?;
    }
    publish(&staging, &opts.out)?;
    Ok(BundleReport { manifest, quant })
}

/// The calibration and evaluation sets: the options' folders, else the run's own data.
fn datasets(run: &RunConfig, opts: &BundleOptions) -> Result<(Dataset, Dataset), BundleError> {
    let folder = |p: &Path| load_image_folder(p).map_err(|e| BundleError::Data(e.to_string()));
    let splits = match (&opts.calibration, &opts.eval) {
        (Some(_), Some(_)) => None,
        _ => Some(resolve(&run.data).map_err(|e| BundleError::Data(e.to_string()))?),
    };
    let train = match &opts.calibration {
        Some(p) => folder(p)?,
        None => splits.as_ref().expect("resolved").train.clone(),
    };
    let eval = match &opts.eval {
        Some(p) => folder(p)?,
        None => splits.and_then(|s| s.eval).ok_or_else(|| {
            BundleError::Data("the run has no evaluation set; pass --eval DIR".into())
        })?,
    };
    Ok((train, eval))
}

/// A fresh `<out>.partial` directory.
fn staging_dir(out: &Path) -> Result<PathBuf, BundleError> {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    let staging = out.with_file_name(name);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| BundleError::io(&staging, e))?;
    }
    std::fs::create_dir_all(&staging).map_err(|e| BundleError::io(&staging, e))?;
    Ok(staging)
}

/// The image graphs, prompts and golden set.
fn write_files(
    model: &Model,
    train: &Dataset,
    eval: &Dataset,
    preprocess: &Preprocess,
    opts: &BundleOptions,
    dir: &Path,
) -> Result<QuantReport, BundleError> {
    write_fp32(model, &dir.join(VISUAL_FP32))?;
    let calibration = calibration_tensor(train, opts.calibration_images, preprocess)?;
    let prompts_file = dir.join(prompts::PROMPTS_FILE);
    prompts::write_prompts(model, &prompts_file)?;
    let crm = prompts::read_scorer(model, &prompts_file)?;
    let quant = write_int8(
        model,
        &calibration,
        &dir.join(VISUAL_INT8),
        &opts.int8,
        Some(&crm),
    )?;
    golden::write_golden(model, eval, opts.golden, preprocess, dir)?;
    Ok(quant)
}

/// Up to `count` preprocessed training images, classes in turn, `(N, 3, S, S)`.
fn calibration_tensor(
    ds: &Dataset,
    count: usize,
    preprocess: &Preprocess,
) -> Result<Tensor, BundleError> {
    let (pixels, kept) = preprocess_files(&pick_per_class(ds, count), preprocess)?;
    if kept.is_empty() {
        return Err(BundleError::Data(format!(
            "no readable calibration image in {}",
            ds.name
        )));
    }
    let s = preprocess.crop as usize;
    Ok(Tensor::from_vec(
        pixels,
        (kept.len(), 3, s, s),
        &Device::Cpu,
    )?)
}

/// Every file under `dir` (except the manifest) with its role, digest and size, sorted.
fn file_entries(dir: &Path) -> Result<Vec<FileEntry>, BundleError> {
    let mut paths = vec![
        (
            VISUAL_FP32.to_string(),
            FileRole::Visual,
            Some(ModelPrecision::Fp32),
        ),
        (
            VISUAL_INT8.to_string(),
            FileRole::Visual,
            Some(ModelPrecision::Int8),
        ),
        (prompts::PROMPTS_FILE.to_string(), FileRole::Prompts, None),
        (GOLDEN_JSON.to_string(), FileRole::Golden, None),
    ];
    let golden = dir.join("golden");
    let mut images: Vec<String> = std::fs::read_dir(&golden)
        .map_err(|e| BundleError::io(&golden, e))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| format!("golden/{n}") != GOLDEN_JSON)
        .collect();
    images.sort();
    paths.extend(
        images
            .into_iter()
            .map(|n| (format!("golden/{n}"), FileRole::Golden, None)),
    );
    paths
        .into_iter()
        .map(|(path, role, precision)| {
            let full = dir.join(&path);
            let (sha256, bytes) = digest_file(&full).map_err(|e| BundleError::io(&full, e))?;
            Ok(FileEntry {
                part_maps: precision.map(|_| PART_MAPS.to_string()),
                path,
                role,
                precision,
                sha256,
                bytes,
            })
        })
        .collect()
}

/// The manifest of the files in `dir`, without `[metrics]`.
fn build_manifest(
    model: &Model,
    run: &RunConfig,
    train: &Dataset,
    preprocess: &Preprocess,
    opts: &BundleOptions,
    dir: &Path,
) -> Result<Manifest, BundleError> {
    let ModelHead::Xrvlm { crm, .. } = &model.head else {
        return Err(BundleError::Run("a bundle holds an XR-VLM head".into()));
    };
    let shape = crm.shape();
    let u = |x: usize| x as u32;
    let name = opts.name.clone().unwrap_or_else(|| {
        opts.out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "bundle".into())
    });
    let (checkpoint_sha256, _) =
        digest_file(&opts.checkpoint).map_err(|e| BundleError::io(&opts.checkpoint, e))?;
    Ok(Manifest {
        format_version: FORMAT_VERSION,
        model: ModelInfo {
            name,
            version: "1".into(),
            created: rfc3339_utc(SystemTime::now()),
            description: opts.description.clone().unwrap_or_else(|| {
                format!(
                    "XR-VLM on {} ({} classes)",
                    run.clip.display(),
                    model.num_classes()
                )
            }),
        },
        backbone: backbone(&model.clip.config.vision, model.clip.config.projection_dim),
        head: Head {
            kind: HeadKind::Xrvlm,
            parts: u(shape.parts),
            prompts: u(shape.prompts),
            embed_dim: u(shape.dim),
            crm_dim: u(shape.crm_dim),
            hidden: u(shape.hidden),
            feature_scale: shape.scale as f32,
        },
        preprocess: preprocess.clone(),
        classes: model
            .classes
            .iter()
            .map(|label| ClassInfo::from_label(label))
            .collect(),
        files: file_entries(dir)?,
        metrics: None,
        open_world: None,
        provenance: Provenance {
            trainer: format!("xrvlm-train {}", env!("CARGO_PKG_VERSION")),
            checkpoint_sha256,
            backbone: run.clip.display().to_string(),
            dataset_fingerprint: train.fingerprint(),
        },
    })
}

fn write_manifest(manifest: &Manifest, dir: &Path) -> Result<(), BundleError> {
    let path = dir.join(MANIFEST_FILE);
    let text = manifest.to_toml().map_err(|e| BundleError::Write {
        path: path.clone(),
        message: e.to_string(),
    })?;
    std::fs::write(&path, text).map_err(|e| BundleError::io(&path, e))
}

/// Moves the verified staging directory to `out`, replacing an old bundle there.
fn publish(staging: &Path, out: &Path) -> Result<(), BundleError> {
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| BundleError::io(out, e))?;
    }
    std::fs::rename(staging, out).map_err(|e| BundleError::io(out, e))
}

/// `[backbone]` of an image tower (descriptive; see `models/BUNDLE.md`).
fn backbone(vision: &ImageConfig, embed_dim: usize) -> Backbone {
    let u = |x: usize| x as u32;
    match vision {
        ImageConfig::Vit(v) => Backbone {
            architecture: Architecture::ClipVit,
            image_size: u(v.image_size),
            patch_size: u(v.patch_size),
            width: u(v.hidden_size),
            layers: u(v.num_hidden_layers),
            heads: u(v.num_attention_heads),
            embed_dim: u(embed_dim),
            activation: match v.hidden_act {
                ClipActivation::QuickGelu => Activation::QuickGelu,
                ClipActivation::Gelu => Activation::Gelu,
            },
        },
        ImageConfig::ResNet(r) => Backbone {
            architecture: Architecture::ClipResnet,
            image_size: u(r.image_size),
            patch_size: u(DOWNSAMPLING),
            width: u(r.width),
            layers: u(r.layers.iter().sum()),
            heads: u(r.heads),
            embed_dim: u(embed_dim),
            activation: Activation::Relu,
        },
    }
}
