//! Small valid bundles for tests: the tiny ONNX model(s), random CRM weights, two golden
//! images with logits computed without tract, and a manifest listing every file.

use std::fs;
use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use xrvlm_runtime::bundle::integrity::digest_file;
use xrvlm_runtime::bundle::manifest::{
    Activation, Architecture, Backbone, ClassInfo, FileEntry, FileRole, Head, HeadKind, Manifest,
    ModelInfo, ModelPrecision, Provenance, FORMAT_VERSION, MANIFEST_FILE,
};
use xrvlm_runtime::preprocess::Preprocess;
use xrvlm_runtime::scoring::{CrmDims, CrmWeights, UnfoldedCrm};

use super::onnx_model::TinyModel;
use super::rng::Rng;
use super::weights::random_weights;

/// Sizes of a test bundle.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Class labels.
    pub labels: Vec<String>,
    /// M, P, D, D', H.
    pub parts: usize,
    pub prompts: usize,
    pub embed: usize,
    pub crm: usize,
    pub hidden: usize,
    /// S.
    pub image_size: u32,
    /// Whether to write `visual.int8.onnx`.
    pub int8: bool,
}

impl Spec {
    /// Five classes, M = 3, P = 2, D = 8, D' = 6, H = 10, S = 16, with an int8 model.
    pub fn small() -> Self {
        Self {
            labels: ["wren", "robin", "finch", "tit", "owl"]
                .map(String::from)
                .to_vec(),
            parts: 3,
            prompts: 2,
            embed: 8,
            crm: 6,
            hidden: 10,
            image_size: 16,
            int8: true,
        }
    }

    /// The CRM sizes.
    pub fn dims(&self) -> CrmDims {
        CrmDims::new(
            self.labels.len(),
            self.parts,
            self.prompts,
            self.embed,
            self.crm,
            self.hidden,
        )
        .unwrap()
    }
}

/// What was written, for the tests' own expectations.
pub struct Written {
    /// The bundle directory.
    pub dir: PathBuf,
    /// The image model's weights.
    pub model: TinyModel,
    /// The CRM weights.
    pub weights: CrmWeights,
    /// The preprocessing of the manifest.
    pub preprocess: Preprocess,
}

/// Golden image file names.
pub const GOLDEN_IMAGES: [&str; 2] = ["wren_01.png", "owl_02.png"];

/// Writes a valid bundle of `spec` into `dir` (created if needed).
pub fn write_bundle(dir: &Path, spec: &Spec, seed: u64) -> Written {
    fs::create_dir_all(dir.join("golden")).unwrap();
    let s = spec.image_size as usize;
    let model = TinyModel::random(s, spec.parts, spec.embed, seed);
    fs::write(dir.join("visual.onnx"), model.fp32_onnx(Some("N"))).unwrap();
    if spec.int8 {
        fs::write(dir.join("visual.int8.onnx"), model.int8_onnx(seed + 1)).unwrap();
    }
    let weights = random_weights(spec.dims(), seed + 2);
    fs::write(dir.join("prompts.safetensors"), safetensors_bytes(&weights)).unwrap();
    let preprocess = Preprocess::for_image_size(spec.image_size);
    let golden = golden_json(dir, spec, &model, &weights, &preprocess, seed + 3);
    fs::write(dir.join("golden/golden.json"), golden).unwrap();
    let manifest = manifest(dir, spec, &preprocess);
    fs::write(dir.join(MANIFEST_FILE), manifest.to_toml().unwrap()).unwrap();
    Written {
        dir: dir.to_path_buf(),
        model,
        weights,
        preprocess,
    }
}

/// The weights as `prompts.safetensors` bytes.
pub fn safetensors_bytes(weights: &CrmWeights) -> Vec<u8> {
    let specs = CrmWeights::tensor_specs(weights.dims());
    let tensors = tensor_data(weights);
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView<'_>)> = specs
        .into_iter()
        .zip(&bytes)
        .map(|((name, shape), data)| (name, TensorView::new(Dtype::F32, shape, data).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// The tensors of `weights` in [`CrmWeights::tensor_specs`] order.
fn tensor_data(w: &CrmWeights) -> Vec<Vec<f32>> {
    let mut out = vec![w.prompt_features().to_vec()];
    for e in [w.eps_v(), w.eps_t()] {
        out.extend([
            e.bn_in.scale.clone(),
            e.bn_in.shift.clone(),
            e.proj_weight.clone(),
            e.proj_bias.clone(),
            e.bn_out.scale.clone(),
            e.bn_out.shift.clone(),
        ]);
    }
    out.extend([
        w.bn_r().scale.clone(),
        w.bn_r().shift.clone(),
        w.fc1_weight().to_vec(),
        w.fc1_bias().to_vec(),
        w.bn_h().scale.clone(),
        w.bn_h().shift.clone(),
        w.fc2_weight().to_vec(),
    ]);
    out
}

/// A random RGB image.
pub fn random_image(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut rng = Rng::new(seed);
    RgbImage::from_fn(width, height, |_, _| {
        let v = rng.next_u64();
        Rgb([v as u8, (v >> 8) as u8, (v >> 16) as u8])
    })
}

/// Expected logits of an image file, computed without tract: the hand-written model, then
/// the unfolded CRM.
pub fn reference_logits(written: &Written, image: &Path) -> Vec<f32> {
    let rgb = xrvlm_runtime::image_io::load_rgb(image).unwrap();
    let input = written.preprocess.apply(&rgb).unwrap();
    let parts = written.model.parts(&input);
    let crm = UnfoldedCrm::new(written.weights.clone());
    crm.score(&parts).unwrap().row(0).to_vec()
}

fn golden_json(
    dir: &Path,
    spec: &Spec,
    model: &TinyModel,
    weights: &CrmWeights,
    preprocess: &Preprocess,
    seed: u64,
) -> String {
    let crm = UnfoldedCrm::new(weights.clone());
    let entries: Vec<serde_json::Value> = GOLDEN_IMAGES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let image = random_image(23 + i as u32 * 5, 19, seed + i as u64);
            image.save(dir.join("golden").join(name)).unwrap();
            let input = preprocess.apply(&image).unwrap();
            let logits = crm.score(&model.parts(&input)).unwrap();
            let label = &spec.labels[if i == 0 { 0 } else { spec.labels.len() - 1 }];
            serde_json::json!({ "file": name, "label": label, "logits": logits.row(0) })
        })
        .collect();
    serde_json::to_string_pretty(&entries).unwrap()
}

fn manifest(dir: &Path, spec: &Spec, preprocess: &Preprocess) -> Manifest {
    let mut files = vec![entry(
        dir,
        "visual.onnx",
        FileRole::Visual,
        Some(ModelPrecision::Fp32),
    )];
    if spec.int8 {
        files.push(entry(
            dir,
            "visual.int8.onnx",
            FileRole::Visual,
            Some(ModelPrecision::Int8),
        ));
    }
    files.push(entry(dir, "prompts.safetensors", FileRole::Prompts, None));
    files.push(entry(dir, "golden/golden.json", FileRole::Golden, None));
    for name in GOLDEN_IMAGES {
        files.push(entry(
            dir,
            &format!("golden/{name}"),
            FileRole::Golden,
            None,
        ));
    }
    Manifest {
        format_version: FORMAT_VERSION,
        model: ModelInfo {
            name: "tiny".into(),
            version: "1".into(),
            created: "2026-01-01T00:00:00Z".into(),
            description: "test bundle".into(),
        },
        backbone: Backbone {
            architecture: Architecture::ClipVit,
            image_size: spec.image_size,
            patch_size: 4,
            width: 8,
            layers: 1,
            heads: 1,
            embed_dim: spec.embed as u32,
            activation: Activation::QuickGelu,
        },
        head: Head {
            kind: HeadKind::Xrvlm,
            parts: spec.parts as u32,
            prompts: spec.prompts as u32,
            embed_dim: spec.embed as u32,
            crm_dim: spec.crm as u32,
            hidden: spec.hidden as u32,
            feature_scale: 64.0,
        },
        preprocess: preprocess.clone(),
        classes: spec
            .labels
            .iter()
            .map(|label| ClassInfo::from_label(label))
            .collect(),
        files,
        metrics: None,
        open_world: None,
        provenance: Provenance {
            trainer: "tests".into(),
            checkpoint_sha256: "0".repeat(64).parse().unwrap(),
            backbone: "none".into(),
            dataset_fingerprint: "none".into(),
        },
    }
}

fn entry(dir: &Path, path: &str, role: FileRole, precision: Option<ModelPrecision>) -> FileEntry {
    let (sha256, bytes) = digest_file(&dir.join(path)).unwrap();
    FileEntry {
        path: path.into(),
        role,
        precision,
        sha256,
        bytes,
        part_maps: None,
    }
}

/// Rewrites the manifest's size and digest of `path` after a test changed the file on
/// purpose, so that only the intended problem remains.
pub fn refresh_digest(dir: &Path, path: &str) {
    let manifest_path = dir.join(MANIFEST_FILE);
    let text = fs::read_to_string(&manifest_path).unwrap();
    let mut manifest: Manifest = toml::from_str(&text).unwrap();
    let (sha256, bytes) = digest_file(&dir.join(path)).unwrap();
    let entry = manifest.files.iter_mut().find(|f| f.path == path).unwrap();
    entry.sha256 = sha256;
    entry.bytes = bytes;
    fs::write(manifest_path, manifest.to_toml().unwrap()).unwrap();
}
