//! A model bundle directory, verified before anything runs (`models/BUNDLE.md`).
//!
//! [`Bundle::open`] checks, in order: the manifest parses and is consistent; every listed
//! file exists with the recorded byte count, and every file but the image models has the
//! recorded SHA-256; each ONNX image model declares the input `image` f32 (N,3,S,S) and the
//! output `parts` f32 (N,M,D) of the manifest, with a symbolic batch axis;
//! `prompts.safetensors` holds every CRM tensor as F32 of the right shape;
//! `golden/golden.json` has one logit per class and names listed images; `open_world.safetensors`
//! (when `[open_world]` scores by part prototypes) holds (C, M, D) finite prototypes. The first problem
//! found is the error, and it names the file. A [`Bundle`] value therefore always describes a
//! verified bundle; it holds the manifest, the CRM weights and the golden entries, but not the
//! image models, which [`crate::engine`] loads per precision.
//!
//! An image model's content is verified when it is read to be run: [`Bundle::image_model`]
//! reads the file once, checks its size and SHA-256 against the manifest, and only then hands
//! out its bytes as an [`ImageModel`], the only form a plan is built from. So the model that
//! runs is hashed, the bytes hashed are the bytes that run (no second read, no window between
//! check and use), and the model of the other precision costs nothing (`BENCHMARKS.md`, "Load
//! time"). [`Bundle::verify_image_models`] hashes them all, for `xrvlm info`, which vouches for
//! the whole bundle.
//!
//! [`Bundle::open_trusted`] opens a bundle under a [`TrustPolicy`] (`signing.rs`): when it
//! requires a signature, the bytes of `manifest.toml` must carry a good signature by a trusted
//! key before they are parsed, the very bytes checked are the ones parsed, and every file,
//! image models included, is hashed before it is parsed, so a byte changed anywhere after
//! signing is refused as a changed file rather than misread. Whatever the policy, every listed
//! file must resolve inside the bundle directory: a symlink out of it is refused (paths with
//! `..` or a leading `/` already fail the manifest's validation).

pub mod golden;
pub mod integrity;
pub mod manifest;
pub mod onnx_signature;
pub mod prompts;
pub mod signing;

use std::fmt;
use std::path::{Path, PathBuf};

use self::golden::{parse_golden, GoldenEntry, GoldenError};
use self::integrity::{digest_file, Sha256Digest};
use self::manifest::{
    FileEntry, FileRole, Manifest, ManifestError, ModelPrecision, GOLDEN_JSON, MANIFEST_FILE,
};
use self::onnx_signature::{
    format_shape, read_signature, Dim, SignatureError, TensorSignature, ELEM_FLOAT,
};
use self::prompts::{parse_prompts, PromptsError};
use self::signing::{Fingerprint, PublicKey, SigningError, TrustPolicy};
use crate::open_world::{PartPrototypes, PrototypesError};
use crate::scoring::{CrmDims, CrmWeights};

/// Name of the image model's input.
pub const IMAGE_INPUT: &str = "image";
/// Name of the image model's output.
pub const PARTS_OUTPUT: &str = "parts";

/// A verified bundle.
#[derive(Clone, Debug)]
pub struct Bundle {
    dir: PathBuf,
    manifest: Manifest,
    dims: CrmDims,
    weights: CrmWeights,
    golden: Vec<GoldenEntry>,
    prototypes: Option<PartPrototypes>,
    /// The key whose signature was checked, when the policy required one.
    signer: Option<PublicKey>,
}

/// An image model's bytes, read once and found to match the manifest's size and SHA-256
/// ([`Bundle::image_model`]): the form a plan is built from, so a plan runs verified bytes.
pub struct ImageModel {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl ImageModel {
    /// The file the bytes were read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The verified ONNX bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for ImageModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageModel")
            .field("path", &self.path)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// Why a bundle was refused. Every variant names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The bundle path is not a directory.
    #[error("{}: not a bundle directory", dir.display())]
    NotADirectory {
        /// The path given.
        dir: PathBuf,
    },
    /// `manifest.toml` is missing, unreadable, of another format or inconsistent.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A listed file (or the manifest) resolves, through a symlink, outside the bundle.
    #[error(
        "{}: resolves to {} outside the bundle directory; a bundle's files must live inside it",
        file.display(),
        target.display()
    )]
    OutsideBundle {
        /// The file.
        file: PathBuf,
        /// Where it resolves to.
        target: PathBuf,
    },
    /// The signature policy refused the bundle.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// A file of a bundle whose signature is good differs from the signed manifest.
    #[error("{source}: changed after the bundle was signed by {signer}")]
    ChangedAfterSigning {
        /// The signer.
        signer: Fingerprint,
        /// The mismatch (it names the file).
        #[source]
        source: Box<BundleError>,
    },
    /// A listed file does not exist.
    #[error("{}: listed in the manifest but missing", file.display())]
    MissingFile {
        /// The file.
        file: PathBuf,
    },
    /// A listed file could not be read.
    #[error("{}: cannot read: {source}", file.display())]
    Unreadable {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file's size differs from the manifest.
    #[error("{}: size mismatch (manifest {expected} bytes, file {actual} bytes)", file.display())]
    SizeMismatch {
        /// The file.
        file: PathBuf,
        /// Bytes recorded in the manifest.
        expected: u64,
        /// Bytes on disk.
        actual: u64,
    },
    /// A file's content differs from the manifest.
    #[error("{}: sha256 mismatch (manifest {expected}, file {actual})", file.display())]
    DigestMismatch {
        /// The file.
        file: PathBuf,
        /// Digest recorded in the manifest.
        expected: Sha256Digest,
        /// Digest of the file.
        actual: Sha256Digest,
    },
    /// An ONNX file could not be read as ONNX.
    #[error(transparent)]
    Onnx(#[from] SignatureError),
    /// An ONNX file's declared inputs or outputs disagree with the manifest.
    #[error("{}: {problem}", file.display())]
    ModelSignature {
        /// The file.
        file: PathBuf,
        /// What disagrees.
        problem: String,
    },
    /// `prompts.safetensors` does not hold the CRM the manifest describes.
    #[error(transparent)]
    Prompts(#[from] PromptsError),
    /// `golden/golden.json` does not fit the manifest.
    #[error(transparent)]
    Golden(#[from] GoldenError),
    /// `open_world.safetensors` does not hold prototypes of the manifest's parts.
    #[error("{}: {problem}", file.display())]
    Prototypes {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        problem: PrototypesError,
    },
    /// A golden entry names an image the manifest does not list.
    #[error("{}: golden image {image} is not listed in the manifest", file.display())]
    GoldenImageNotListed {
        /// `golden.json`.
        file: PathBuf,
        /// The entry's `file`.
        image: String,
    },
}

impl Bundle {
    /// Opens and verifies the bundle in `dir`, with no signature required.
    pub fn open(dir: &Path) -> Result<Self, BundleError> {
        Self::open_trusted(dir, &TrustPolicy::permissive())
    }

    /// Opens and verifies the bundle in `dir` under `policy`: when it requires a signature,
    /// the manifest must be signed by one of its keys and no file may have changed since.
    pub fn open_trusted(dir: &Path, policy: &TrustPolicy) -> Result<Self, BundleError> {
        if !dir.is_dir() {
            return Err(BundleError::NotADirectory {
                dir: dir.to_path_buf(),
            });
        }
        let manifest_path = inside(dir, dir.join(MANIFEST_FILE))?;
        let text =
            std::fs::read_to_string(&manifest_path).map_err(|source| ManifestError::Read {
                path: manifest_path.clone(),
                source,
            })?;
        let signer = policy.check(dir, text.as_bytes())?;
        let manifest = Manifest::parse(&text, &manifest_path)?;
        let opened = Self::verify(dir, manifest, signer.is_some());
        opened
            .map(|bundle| Self { signer, ..bundle })
            .map_err(|e| match (signer, e) {
                (
                    Some(signer),
                    e @ (BundleError::DigestMismatch { .. }
                    | BundleError::SizeMismatch { .. }
                    | BundleError::MissingFile { .. }),
                ) => BundleError::ChangedAfterSigning {
                    signer: signer.fingerprint(),
                    source: Box::new(e),
                },
                (_, e) => e,
            })
    }

    /// Verifies every file against the parsed `manifest`; `hash_models` hashes the image models
    /// before their declarations are read (a signed bundle), instead of when one is run.
    fn verify(dir: &Path, manifest: Manifest, hash_models: bool) -> Result<Self, BundleError> {
        let dims = manifest
            .crm_dims()
            .expect("a validated manifest has non-zero sizes");
        for entry in &manifest.files {
            match entry.role {
                // Hashed when read to be run (`image_model`), so only the one that runs is.
                FileRole::Visual if !hash_models => verify_size(dir, entry)?,
                FileRole::Visual | FileRole::Prompts | FileRole::Golden | FileRole::OpenWorld => {
                    verify_file(dir, entry)?
                }
            }
        }
        for entry in manifest.files.iter().filter(|f| f.role == FileRole::Visual) {
            verify_visual(&dir.join(&entry.path), &manifest, &dims)?;
        }
        let weights = load_weights(dir, &manifest, dims)?;
        let golden = load_golden(dir, &manifest)?;
        let prototypes = load_prototypes(dir, &manifest, &dims)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            dims,
            weights,
            golden,
            prototypes,
            signer: None,
        })
    }

    /// The key whose signature was checked when the bundle was opened; `None` when the policy
    /// did not require one (the bundle may still carry one: see [`signing::status`]).
    pub fn signer(&self) -> Option<&PublicKey> {
        self.signer.as_ref()
    }

    /// The bundle directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// The CRM sizes.
    pub fn dims(&self) -> &CrmDims {
        &self.dims
    }
    /// The CRM weights and cached prompt features.
    pub fn weights(&self) -> &CrmWeights {
        &self.weights
    }
    /// The golden entries.
    pub fn golden(&self) -> &[GoldenEntry] {
        &self.golden
    }
    /// The part prototypes of the `part_prototype` open-world score, if the bundle has them.
    pub fn prototypes(&self) -> Option<&PartPrototypes> {
        self.prototypes.as_ref()
    }
    /// Path of a golden entry's image.
    pub fn golden_image(&self, entry: &GoldenEntry) -> PathBuf {
        self.dir.join("golden").join(&entry.file)
    }
    /// Path of the image model of `precision`, if the bundle has one.
    pub fn visual_path(&self, precision: ModelPrecision) -> Option<PathBuf> {
        self.manifest
            .visual_file(precision)
            .map(|f| self.dir.join(&f.path))
    }

    /// The image model of `precision`, read and verified against the manifest's size and
    /// SHA-256 (`None` if the bundle has none): the bytes a plan is built from.
    pub fn image_model(
        &self,
        precision: ModelPrecision,
    ) -> Option<Result<ImageModel, BundleError>> {
        let entry = self.manifest.visual_file(precision)?;
        Some(read_verified(&self.dir, entry).map(|(path, bytes)| ImageModel { path, bytes }))
    }

    /// Hashes every image model, which [`Bundle::open`] leaves to [`Bundle::image_model`]:
    /// after this, every listed file has matched its size and SHA-256.
    pub fn verify_image_models(&self) -> Result<(), BundleError> {
        self.manifest
            .files
            .iter()
            .filter(|f| f.role == FileRole::Visual)
            .try_for_each(|entry| verify_file(&self.dir, entry))
    }
}

/// The listed file, which must exist inside the bundle directory.
fn existing(dir: &Path, entry: &FileEntry) -> Result<PathBuf, BundleError> {
    let file = dir.join(&entry.path);
    if !file.is_file() {
        return Err(BundleError::MissingFile { file });
    }
    inside(dir, file)
}

/// `file`, which must resolve (symlinks followed) inside `dir`. A missing file passes here
/// and fails where it is read.
fn inside(dir: &Path, file: PathBuf) -> Result<PathBuf, BundleError> {
    let canonical = |path: &Path| {
        std::fs::canonicalize(path).map_err(|source| BundleError::Unreadable {
            file: path.to_path_buf(),
            source,
        })
    };
    if !file.exists() {
        return Ok(file);
    }
    let (root, target) = (canonical(dir)?, canonical(&file)?);
    if !target.starts_with(&root) {
        return Err(BundleError::OutsideBundle { file, target });
    }
    Ok(file)
}

/// The file exists with the manifest's size (its content is checked later).
fn verify_size(dir: &Path, entry: &FileEntry) -> Result<(), BundleError> {
    let file = existing(dir, entry)?;
    let bytes = std::fs::metadata(&file)
        .map_err(|source| BundleError::Unreadable {
            file: file.clone(),
            source,
        })?
        .len();
    matches_manifest(file, entry, bytes, None)
}

/// The file exists with the manifest's size and digest, hashed in one streaming pass.
fn verify_file(dir: &Path, entry: &FileEntry) -> Result<(), BundleError> {
    let file = existing(dir, entry)?;
    let (digest, bytes) = digest_file(&file).map_err(|source| BundleError::Unreadable {
        file: file.clone(),
        source,
    })?;
    matches_manifest(file, entry, bytes, Some(digest))
}

/// The whole file, read once, with the manifest's size and digest.
fn read_verified(dir: &Path, entry: &FileEntry) -> Result<(PathBuf, Vec<u8>), BundleError> {
    let (file, bytes) = read_listed(dir, entry)?;
    let digest = Sha256Digest::of_bytes(&bytes);
    matches_manifest(file.clone(), entry, bytes.len() as u64, Some(digest))?;
    Ok((file, bytes))
}

/// `file` has the manifest's size, and its digest when one is given.
fn matches_manifest(
    file: PathBuf,
    entry: &FileEntry,
    bytes: u64,
    digest: Option<Sha256Digest>,
) -> Result<(), BundleError> {
    if bytes != entry.bytes {
        return Err(BundleError::SizeMismatch {
            file,
            expected: entry.bytes,
            actual: bytes,
        });
    }
    match digest {
        Some(actual) if actual != entry.sha256 => Err(BundleError::DigestMismatch {
            file,
            expected: entry.sha256,
            actual,
        }),
        _ => Ok(()),
    }
}

/// The ONNX file declares `image` f32 (N,3,S,S) → `parts` f32 (N,M,D).
fn verify_visual(file: &Path, manifest: &Manifest, dims: &CrmDims) -> Result<(), BundleError> {
    let signature = read_signature(file)?;
    let problem = |problem: String| BundleError::ModelSignature {
        file: file.to_path_buf(),
        problem,
    };
    let s = i64::from(manifest.backbone.image_size);
    let (m, d) = (dims.parts() as i64, dims.embed() as i64);
    let single = |list: &[TensorSignature], what: &str, name: &str| match list {
        [one] if one.name == name => Ok(one.clone()),
        _ => {
            let names: Vec<&str> = list.iter().map(|t| t.name.as_str()).collect();
            Err(problem(format!(
                "expected one {what} named `{name}`, found {names:?}"
            )))
        }
    };
    let input = single(&signature.inputs, "input", IMAGE_INPUT)?;
    check_tensor(&input, &[3, s, s], "N,3,S,S with S = backbone.image_size").map_err(&problem)?;
    let output = single(&signature.outputs, "output", PARTS_OUTPUT)?;
    check_tensor(
        &output,
        &[m, d],
        "N,M,D with M = head.parts, D = head.embed_dim",
    )
    .map_err(&problem)?;
    Ok(())
}

/// f32 with a symbolic batch axis followed by exactly `rest`.
fn check_tensor(t: &TensorSignature, rest: &[i64], legend: &str) -> Result<(), String> {
    let expected = format!(
        "(N,{})",
        rest.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    if t.elem_type != Some(ELEM_FLOAT) {
        return Err(format!(
            "`{}` has element type {:?}, expected float (1)",
            t.name, t.elem_type
        ));
    }
    let Some(shape) = &t.shape else {
        return Err(format!(
            "`{}` declares no shape, expected {expected} ({legend})",
            t.name
        ));
    };
    let batch_ok = matches!(shape.first(), Some(Dim::Symbolic(_)));
    let rest_ok = shape.len() == rest.len() + 1
        && shape[1..]
            .iter()
            .zip(rest)
            .all(|(dim, want)| *dim == Dim::Fixed(*want));
    if !(batch_ok && rest_ok) {
        return Err(format!(
            "`{}` has shape {}, expected {expected} ({legend}, batch axis symbolic)",
            t.name,
            format_shape(shape)
        ));
    }
    Ok(())
}

/// The whole listed file, which must exist.
fn read_listed(dir: &Path, entry: &FileEntry) -> Result<(PathBuf, Vec<u8>), BundleError> {
    let file = existing(dir, entry)?;
    let bytes = std::fs::read(&file).map_err(|source| BundleError::Unreadable {
        file: file.clone(),
        source,
    })?;
    Ok((file, bytes))
}

fn load_weights(dir: &Path, manifest: &Manifest, dims: CrmDims) -> Result<CrmWeights, BundleError> {
    let entry = manifest
        .prompts_file()
        .expect("a validated manifest lists one prompts file");
    let (file, bytes) = read_listed(dir, entry)?;
    Ok(parse_prompts(
        &bytes,
        &file,
        dims,
        manifest.head.feature_scale,
    )?)
}

fn load_prototypes(
    dir: &Path,
    manifest: &Manifest,
    dims: &CrmDims,
) -> Result<Option<PartPrototypes>, BundleError> {
    let Some(entry) = manifest.open_world_file() else {
        return Ok(None);
    };
    let (file, bytes) = read_listed(dir, entry)?;
    PartPrototypes::from_safetensors(&bytes, dims.classes(), dims.parts(), dims.embed())
        .map(Some)
        .map_err(|problem| BundleError::Prototypes { file, problem })
}

fn load_golden(dir: &Path, manifest: &Manifest) -> Result<Vec<GoldenEntry>, BundleError> {
    let entry = manifest
        .files
        .iter()
        .find(|f| f.role == FileRole::Golden && f.path == GOLDEN_JSON)
        .expect("a validated manifest lists golden/golden.json");
    let (file, bytes) = read_listed(dir, entry)?;
    let labels: Vec<&str> = manifest.labels().collect();
    let golden = parse_golden(&bytes, &file, &labels)?;
    for g in &golden {
        let listed = manifest
            .files
            .iter()
            .any(|f| f.role == FileRole::Golden && f.path == format!("golden/{}", g.file));
        if !listed || g.file == "golden.json" {
            return Err(BundleError::GoldenImageNotListed {
                file,
                image: g.file.clone(),
            });
        }
    }
    Ok(golden)
}
