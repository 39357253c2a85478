//! open_clip's checkpoint layout, which real ModifiedResNet CLIPs (OpenAI's RN50, RN101, …) are
//! published in, for our ResNet checkpoints:
//!
//! - `open_clip_config.json`: `{"model_cfg": {"embed_dim", "quick_gelu", "vision_cfg":
//!   {"image_size", "layers", "width", "head_width"}, "text_cfg": {"context_length",
//!   "vocab_size", "width", "heads", "layers", "mlp_ratio"}}, "preprocess_cfg": {"mean", "std"}}`,
//!   the keys of open_clip's `RN50.json` (so `open_clip.create_model` reads it);
//! - `open_clip_model.safetensors`: OpenAI's state-dict names: `visual.*` ([`super::resnet`]),
//!   `token_embedding.weight`, `positional_embedding`, `transformer.resblocks.{i}.*` (attention
//!   with one fused `in_proj`), `ln_final.*`, `text_projection` (`width × D`, applied as `x · P`)
//!   and `logit_scale`.
//!
//! The image tower's checkpoint alone (`pretrain-vision`'s) has no `text_cfg` and no text
//! tensors. On load the text tensors are renamed to transformers' names ([`text_to_hf`]: the
//! fused `in_proj` split into q, k, v, the projection transposed), so that one text tower runs
//! both layouts; [`text_to_openai`] is its inverse, for writing. The text tower finds the
//! end-of-text feature at the largest token id, as open_clip's `argmax` pooling does (our
//! tokenizers, like OpenAI's, give `<|endoftext|>` the last id).

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;
use serde_json::{json, Value};

use super::config::{Activation, ClipConfig, ImageConfig, TextConfig};
use super::resnet::ResNetConfig;
use super::ClipError;

/// The config file (open_clip's name).
pub const CONFIG_FILE: &str = "open_clip_config.json";
/// The weights file (open_clip's name).
pub const MODEL_FILE: &str = "open_clip_model.safetensors";
/// open_clip's default attention-pool head width (`CLIPVisionCfg.head_width`).
const HEAD_WIDTH: usize = 64;
/// open_clip's MLP ratio of the text blocks.
const MLP_RATIO: usize = 4;

/// The towers an `open_clip_config.json` describes.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenClipConfig {
    /// The image tower (with the joint embedding size).
    pub vision: ResNetConfig,
    /// The text tower, absent from an image-tower checkpoint.
    pub text: Option<TextConfig>,
    /// CLIP's mean and std per channel.
    pub mean: [f32; 3],
    /// See `mean`.
    pub std: [f32; 3],
}

/// Whether `dir` holds an open_clip-layout checkpoint.
pub fn is_open_clip(dir: &Path) -> bool {
    dir.join(CONFIG_FILE).is_file()
}

fn config_err(path: &Path, msg: impl Into<String>) -> ClipError {
    ClipError::Config {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// A non-negative integer field of a JSON object, named `section.key` in errors.
fn count(v: &Value, section: &str, key: &str, path: &Path) -> Result<usize, ClipError> {
    v.get(key)
        .and_then(Value::as_u64)
        .map(|n| n as usize)
        .ok_or_else(|| config_err(path, format!("{section}.{key} is missing or not a count")))
}

fn triple(v: &Value, key: &str, path: &Path) -> Result<[f32; 3], ClipError> {
    let values: Option<Vec<f32>> = v[key]
        .as_array()
        .map(|a| a.iter().map(|x| x.as_f64().map(|f| f as f32)).collect())
        .and_then(|x: Option<Vec<f32>>| x);
    values.and_then(|x| x.try_into().ok()).ok_or_else(|| {
        config_err(
            path,
            format!("preprocess_cfg.{key}: expected three numbers"),
        )
    })
}

impl OpenClipConfig {
    /// Reads and checks `open_clip_config.json`.
    pub fn load(path: &Path) -> Result<Self, ClipError> {
        Self::parse(&super::read_text(path)?, path)
    }

    /// Parses the text of an `open_clip_config.json`; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ClipError> {
        let json: Value = serde_json::from_str(text)
            .map_err(|e| config_err(path, format!("not valid JSON: {e}")))?;
        let model = &json["model_cfg"];
        if !model.is_object() {
            return Err(config_err(path, "model_cfg is missing or not an object"));
        }
        let v = &model["vision_cfg"];
        let layers: [usize; 4] = v["layers"]
            .as_array()
            .and_then(|a| a.iter().map(|x| x.as_u64().map(|n| n as usize)).collect())
            .and_then(|l: Vec<usize>| l.try_into().ok())
            .ok_or_else(|| {
                config_err(
                    path,
                    "model_cfg.vision_cfg.layers: expected four stage counts (a ModifiedResNet)",
                )
            })?;
        let width = count(v, "model_cfg.vision_cfg", "width", path)?;
        let head_width = match v.get("head_width") {
            None | Some(Value::Null) => HEAD_WIDTH,
            Some(_) => count(v, "model_cfg.vision_cfg", "head_width", path)?,
        };
        let vision = ResNetConfig {
            image_size: count(v, "model_cfg.vision_cfg", "image_size", path)?,
            layers,
            width,
            heads: (width * 32 / head_width.max(1)).max(1),
            embed_dim: count(model, "model_cfg", "embed_dim", path)?,
        };
        vision
            .validate()
            .map_err(|m| config_err(path, format!("model_cfg.vision_cfg: {m}")))?;
        let act = if model["quick_gelu"].as_bool().unwrap_or(false) {
            Activation::QuickGelu
        } else {
            Activation::Gelu
        };
        let text = match model.get("text_cfg") {
            None | Some(Value::Null) => None,
            Some(t) => Some(text_config(t, act, path)?),
        };
        let pre = &json["preprocess_cfg"];
        let (mean, std) = if pre.is_object() {
            (triple(pre, "mean", path)?, triple(pre, "std", path)?)
        } else {
            (CLIP_MEAN, CLIP_STD)
        };
        Ok(Self {
            vision,
            text,
            mean,
            std,
        })
    }

    /// The whole CLIP's config; an image-tower checkpoint (no `text_cfg`) is an error.
    pub fn clip_config(&self, path: &Path) -> Result<ClipConfig, ClipError> {
        let text = self.text.clone().ok_or_else(|| {
            config_err(
                path,
                "has no model_cfg.text_cfg: this is an image tower alone (pretrain-vision); \
                 align a text tower to it with `xrvlm-train pretrain --lock-image`",
            )
        })?;
        Ok(ClipConfig {
            text,
            vision: ImageConfig::ResNet(self.vision.clone()),
            projection_dim: self.vision.embed_dim,
        })
    }

    /// The file's JSON, in open_clip's keys.
    pub fn to_json(&self) -> Value {
        let v = &self.vision;
        let mut model = json!({
            "embed_dim": v.embed_dim,
            "vision_cfg": {
                "image_size": v.image_size,
                "layers": v.layers,
                "width": v.width,
                "head_width": v.feature_channels() / v.heads,
            },
        });
        if let Some(t) = &self.text {
            model["quick_gelu"] = json!(t.hidden_act == Activation::QuickGelu);
            model["text_cfg"] = json!({
                "context_length": t.max_position_embeddings,
                "vocab_size": t.vocab_size,
                "width": t.hidden_size,
                "heads": t.num_attention_heads,
                "layers": t.num_hidden_layers,
                "mlp_ratio": t.intermediate_size / t.hidden_size.max(1),
            });
        }
        json!({
            "model_cfg": model,
            "preprocess_cfg": {"mean": self.mean, "std": self.std, "interpolation": "bilinear"},
        })
    }
}

/// CLIP's normalisation (OpenAI's `_transform`).
const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// See [`CLIP_MEAN`].
const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

fn text_config(t: &Value, act: Activation, path: &Path) -> Result<TextConfig, ClipError> {
    let s = "model_cfg.text_cfg";
    let vocab_size = count(t, s, "vocab_size", path)?;
    let width = count(t, s, "width", path)?;
    let heads = count(t, s, "heads", path)?;
    let mlp_ratio = match t.get("mlp_ratio") {
        None | Some(Value::Null) => MLP_RATIO,
        Some(r) => r
            .as_f64()
            .filter(|r| r.fract() == 0.0 && *r >= 1.0)
            .map(|r| r as usize)
            .ok_or_else(|| config_err(path, format!("{s}.mlp_ratio: expected a whole number")))?,
    };
    if vocab_size == 0 || heads == 0 || !width.is_multiple_of(heads) {
        return Err(config_err(
            path,
            format!("{s}: width {width} must be a multiple of heads {heads}, vocab_size positive"),
        ));
    }
    // The end-of-text token has the largest id: its first occurrence is open_clip's argmax.
    let eot = (vocab_size - 1) as u32;
    Ok(TextConfig {
        vocab_size,
        hidden_size: width,
        intermediate_size: mlp_ratio * width,
        num_hidden_layers: count(t, s, "layers", path)?,
        num_attention_heads: heads,
        max_position_embeddings: count(t, s, "context_length", path)?,
        hidden_act: act,
        layer_norm_eps: 1e-5,
        eos_token_id: eot,
        // Padding never reaches the EOT feature (causal mask); EOT pads, as our tokenizers do.
        pad_token_id: eot,
    })
}

/// Per-block renames, OpenAI (`transformer.resblocks.{i}.`) → transformers
/// (`text_model.encoder.layers.{i}.`); the fused `attn.in_proj_*` is handled apart.
const BLOCK_NAMES: [(&str, &str); 5] = [
    ("ln_1", "layer_norm1"),
    ("ln_2", "layer_norm2"),
    ("attn.out_proj", "self_attn.out_proj"),
    ("mlp.c_fc", "mlp.fc1"),
    ("mlp.c_proj", "mlp.fc2"),
];
/// Whole-tower renames, OpenAI → transformers; `text_projection` is handled apart.
const TOP_NAMES: [(&str, &str); 4] = [
    (
        "token_embedding.weight",
        "text_model.embeddings.token_embedding.weight",
    ),
    (
        "positional_embedding",
        "text_model.embeddings.position_embedding.weight",
    ),
    ("ln_final.weight", "text_model.final_layer_norm.weight"),
    ("ln_final.bias", "text_model.final_layer_norm.bias"),
];
const OPENAI_BLOCKS: &str = "transformer.resblocks.";
const HF_BLOCKS: &str = "text_model.encoder.layers.";
const QKV: [&str; 3] = ["q_proj", "k_proj", "v_proj"];

/// Renames OpenAI's text-tower tensors to transformers' names; every other tensor (`visual.*`,
/// `logit_scale`) passes unchanged.
pub fn text_to_hf(
    tensors: HashMap<String, Tensor>,
) -> candle_core::Result<HashMap<String, Tensor>> {
    let mut out = HashMap::with_capacity(tensors.len() + 8);
    for (name, t) in tensors {
        if name == "text_projection" {
            out.insert("text_projection.weight".into(), t.t()?.contiguous()?);
        } else if let Some((_, hf)) = TOP_NAMES.iter().find(|(oa, _)| *oa == name) {
            out.insert((*hf).to_string(), t);
        } else if let Some(rest) = name.strip_prefix(OPENAI_BLOCKS) {
            let (block, field) = rest.split_once('.').unwrap_or((rest, ""));
            let hf = format!("{HF_BLOCKS}{block}.");
            if let Some(kind) = field.strip_prefix("attn.in_proj_") {
                let rows = t.dim(0)? / 3;
                for (i, qkv) in QKV.iter().enumerate() {
                    let part = t.narrow(0, i * rows, rows)?.contiguous()?;
                    out.insert(format!("{hf}self_attn.{qkv}.{kind}"), part);
                }
            } else {
                let renamed = BLOCK_NAMES
                    .iter()
                    .find_map(|(oa, h)| field.strip_prefix(oa).map(|tail| format!("{h}{tail}")))
                    .unwrap_or_else(|| field.to_string());
                out.insert(format!("{hf}{renamed}"), t);
            }
        } else {
            out.insert(name, t);
        }
    }
    Ok(out)
}

/// The inverse of [`text_to_hf`]: transformers' text names back to OpenAI's (q, k, v fused into
/// `in_proj`); every other tensor passes unchanged. Sorted by name.
pub fn text_to_openai(
    tensors: Vec<(String, Tensor)>,
) -> candle_core::Result<Vec<(String, Tensor)>> {
    let mut out: HashMap<String, Tensor> = HashMap::with_capacity(tensors.len());
    let mut qkv: HashMap<String, [Option<Tensor>; 3]> = HashMap::new();
    for (name, t) in tensors {
        if name == "text_projection.weight" {
            out.insert("text_projection".into(), t.t()?.contiguous()?);
        } else if let Some((oa, _)) = TOP_NAMES.iter().find(|(_, hf)| *hf == name) {
            out.insert((*oa).to_string(), t);
        } else if let Some(rest) = name.strip_prefix(HF_BLOCKS) {
            let (block, field) = rest.split_once('.').unwrap_or((rest, ""));
            let oa = format!("{OPENAI_BLOCKS}{block}.");
            let fused = field.strip_prefix("self_attn.").and_then(|f| {
                let (proj, kind) = f.split_once('.')?;
                Some((QKV.iter().position(|q| *q == proj)?, kind))
            });
            if let Some((i, kind)) = fused {
                qkv.entry(format!("{oa}attn.in_proj_{kind}")).or_default()[i] = Some(t);
            } else {
                let renamed = BLOCK_NAMES
                    .iter()
                    .find_map(|(o, h)| field.strip_prefix(h).map(|tail| format!("{o}{tail}")))
                    .unwrap_or_else(|| field.to_string());
                out.insert(format!("{oa}{renamed}"), t);
            }
        } else {
            out.insert(name, t);
        }
    }
    for (name, parts) in qkv {
        let parts: Vec<Tensor> = parts.into_iter().flatten().collect();
        if parts.len() != 3 {
            candle_core::bail!("{name}: q, k and v must all be present to fuse them");
        }
        out.insert(name, Tensor::cat(&parts, 0)?);
    }
    let mut sorted: Vec<_> = out.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(sorted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn rn(embed_dim: usize) -> ResNetConfig {
        ResNetConfig {
            image_size: 96,
            layers: [1, 1, 1, 1],
            width: 16,
            heads: 8,
            embed_dim,
        }
    }

    #[test]
    fn config_round_trips_and_reads_rn50() {
        let text = TextConfig {
            vocab_size: 300,
            hidden_size: 64,
            intermediate_size: 256,
            num_hidden_layers: 3,
            num_attention_heads: 4,
            max_position_embeddings: 32,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
            eos_token_id: 299,
            pad_token_id: 299,
        };
        let cfg = OpenClipConfig {
            vision: rn(128),
            text: Some(text),
            mean: CLIP_MEAN,
            std: CLIP_STD,
        };
        let path = Path::new("open_clip_config.json");
        let back = OpenClipConfig::parse(&cfg.to_json().to_string(), path).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(back.clip_config(path).unwrap().vision.token_width(), 512);
        // open_clip's own RN50.json (no head_width: 64 by default, so 32 heads).
        let rn50 = r#"{"model_cfg": {"embed_dim": 1024, "quick_gelu": true,
            "vision_cfg": {"image_size": 224, "layers": [3, 4, 6, 3], "width": 64, "patch_size": null},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12}}}"#;
        let c = OpenClipConfig::parse(rn50, path).unwrap();
        assert_eq!((c.vision.heads, c.vision.feature_channels()), (32, 2048));
        let t = c.text.unwrap();
        assert_eq!(
            (t.eos_token_id, t.hidden_act),
            (49407, Activation::QuickGelu)
        );
    }

    #[test]
    fn bad_fields_are_named_and_a_tower_alone_has_no_clip() {
        let path = Path::new("/ckpt/open_clip_config.json");
        let bad = r#"{"model_cfg": {"embed_dim": 128, "vision_cfg": {"image_size": 96, "layers": [1, 1, 1], "width": 16}}}"#;
        let err = OpenClipConfig::parse(bad, path).unwrap_err().to_string();
        assert!(
            err.contains("vision_cfg.layers") && err.contains("/ckpt"),
            "{err}"
        );
        let alone = OpenClipConfig {
            vision: rn(128),
            text: None,
            mean: CLIP_MEAN,
            std: CLIP_STD,
        };
        let err = alone.clip_config(path).unwrap_err().to_string();
        assert!(err.contains("text_cfg"), "{err}");
        assert!(OpenClipConfig::parse("{", path)
            .unwrap_err()
            .to_string()
            .contains("not valid JSON"));
    }

    #[test]
    fn text_names_round_trip_and_in_proj_splits_into_q_k_v() {
        let dev = Device::Cpu;
        let w = 4;
        let t = |rows: usize, cols: usize, base: f32| {
            let v: Vec<f32> = (0..rows * cols).map(|i| base + i as f32).collect();
            Tensor::from_vec(v, (rows, cols), &dev).unwrap()
        };
        let openai: HashMap<String, Tensor> = [
            (
                "transformer.resblocks.0.attn.in_proj_weight",
                t(3 * w, w, 0.0),
            ),
            (
                "transformer.resblocks.0.attn.in_proj_bias",
                t(3 * w, 1, 100.0).flatten_all().unwrap(),
            ),
            ("transformer.resblocks.0.mlp.c_fc.weight", t(4 * w, w, 0.0)),
            (
                "transformer.resblocks.0.ln_2.bias",
                t(w, 1, 0.0).flatten_all().unwrap(),
            ),
            ("text_projection", t(w, 2, 0.0)),
            ("positional_embedding", t(8, w, 0.0)),
            ("visual.conv1.weight", t(2, 2, 0.0)),
            ("logit_scale", Tensor::new(2.0f32, &dev).unwrap()),
        ]
        .into_iter()
        .map(|(n, t)| (n.to_string(), t))
        .collect();
        let hf = text_to_hf(openai.clone()).unwrap();
        let k = &hf["text_model.encoder.layers.0.self_attn.k_proj.weight"];
        assert_eq!(k.dims(), &[w, w]);
        assert_eq!(k.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0], 16.0);
        let vb = &hf["text_model.encoder.layers.0.self_attn.v_proj.bias"];
        assert_eq!(vb.to_vec1::<f32>().unwrap()[0], 108.0);
        assert_eq!(hf["text_projection.weight"].dims(), &[2, w]);
        for name in [
            "text_model.encoder.layers.0.mlp.fc1.weight",
            "text_model.encoder.layers.0.layer_norm2.bias",
            "text_model.embeddings.position_embedding.weight",
            "visual.conv1.weight",
            "logit_scale",
        ] {
            assert!(hf.contains_key(name), "{name}");
        }
        let back = text_to_openai(hf.into_iter().collect()).unwrap();
        assert_eq!(back.len(), openai.len());
        for (name, t) in back {
            let want = &openai[&name];
            let diff = (t - want).unwrap().abs().unwrap().sum_all().unwrap();
            assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0, "{name}");
        }
    }
}
