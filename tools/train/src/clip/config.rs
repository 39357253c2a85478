//! The CLIP `config.json` of a Hugging Face checkpoint: the two tower configs, the activation and
//! the projection size, with presets for the published ViT sizes.
//!
//! Mirrors `CLIPConfig`, `CLIPTextConfig` and `CLIPVisionConfig` of transformers
//! (`models/clip/configuration_clip.py`); unknown keys are ignored because real checkpoints carry
//! many fields we do not use (`architectures`, `torch_dtype`, …).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::resnet::ResNetConfig;
use super::ClipError;

/// The MLP activation of a tower, as named in `config.json` (`hidden_act`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x · sigmoid(1.702 x)`, OpenAI CLIP's activation.
    QuickGelu,
    /// The exact (erf) GELU, `torch.nn.functional.gelu`.
    Gelu,
}

impl Activation {
    fn parse(name: &str, file: &Path, field: &str) -> Result<Self, ClipError> {
        match name {
            "quick_gelu" => Ok(Self::QuickGelu),
            "gelu" => Ok(Self::Gelu),
            other => Err(ClipError::Config {
                path: file.to_path_buf(),
                msg: format!(
                    "{field}: unknown activation {other:?}; expected \"quick_gelu\" or \"gelu\""
                ),
            }),
        }
    }
}

/// The text tower's settings (`text_config`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    /// Vocabulary size of the token embedding.
    pub vocab_size: usize,
    /// Transformer width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Attention heads per block.
    pub num_attention_heads: usize,
    /// Context length (77 for CLIP).
    pub max_position_embeddings: usize,
    /// MLP activation.
    pub hidden_act: Activation,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// End-of-text id. transformers treats the legacy value 2 as "take the EOT feature at the
    /// argmax of the token ids"; any other value means "at the first position holding this id".
    pub eos_token_id: u32,
    /// Padding id written by the reference when it pads (not used for the result: the causal mask
    /// hides padding from the EOT position).
    pub pad_token_id: u32,
}

/// The image tower's settings (`vision_config`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VisionConfig {
    /// Transformer width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Attention heads per block.
    pub num_attention_heads: usize,
    /// Input image side in pixels.
    pub image_size: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Input channels (3).
    pub num_channels: usize,
    /// MLP activation.
    pub hidden_act: Activation,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
}

impl VisionConfig {
    /// Patches per side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Tokens per image: the patches plus the class token.
    pub fn num_tokens(&self) -> usize {
        self.grid() * self.grid() + 1
    }
}

/// The image tower of a checkpoint: a ViT (Hugging Face `config.json`) or a ModifiedResNet
/// (open_clip's `open_clip_config.json`, [`super::open_clip`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageConfig {
    /// A vision transformer.
    Vit(VisionConfig),
    /// CLIP's ModifiedResNet.
    ResNet(ResNetConfig),
}

impl ImageConfig {
    /// Input side in pixels.
    pub fn image_size(&self) -> usize {
        match self {
            Self::Vit(v) => v.image_size,
            Self::ResNet(r) => r.image_size,
        }
    }

    /// Width of the attention-source tokens `X` UnA reads (§2.1, §2.2).
    pub fn token_width(&self) -> usize {
        match self {
            Self::Vit(v) => v.hidden_size,
            Self::ResNet(r) => r.feature_channels(),
        }
    }

    /// The ViT's settings, when the tower is one.
    pub fn vit(&self) -> Option<&VisionConfig> {
        match self {
            Self::Vit(v) => Some(v),
            Self::ResNet(_) => None,
        }
    }
}

/// A whole CLIP checkpoint's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClipConfig {
    /// Text tower.
    pub text: TextConfig,
    /// Image tower.
    pub vision: ImageConfig,
    /// Joint embedding size D.
    pub projection_dim: usize,
}

impl ClipConfig {
    /// Reads and checks `config.json`.
    pub fn load(path: &Path) -> Result<Self, ClipError> {
        Self::parse(&super::read_text(path)?, path)
    }

    /// Parses the text of a `config.json`; `path` is used in error messages only.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ClipError> {
        let raw: serde_json::Value = serde_json::from_str(text).map_err(|e| ClipError::Config {
            path: path.to_path_buf(),
            msg: format!("not valid JSON: {e}"),
        })?;
        let fields = Fields { raw: &raw, path };
        let text_cfg = fields.section("text_config")?;
        let vision_cfg = fields.section("vision_config")?;
        let config = Self {
            text: text_cfg.text()?,
            vision: ImageConfig::Vit(vision_cfg.vision()?),
            projection_dim: fields.usize_or("projection_dim", 512)?,
        };
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ClipError> {
        let bad = |msg: String| {
            Err(ClipError::Config {
                path: path.to_path_buf(),
                msg,
            })
        };
        let ImageConfig::Vit(v) = &self.vision else {
            return bad("config.json describes a ViT image tower".into());
        };
        let t = &self.text;
        if v.patch_size == 0 || !v.image_size.is_multiple_of(v.patch_size) {
            return bad(format!(
                "vision_config.image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        if v.num_hidden_layers < 2 {
            return bad(format!(
                "vision_config.num_hidden_layers is {}; XR-VLM needs at least 2 (it reads block L-2)",
                v.num_hidden_layers
            ));
        }
        for (name, width, heads) in [
            ("vision_config", v.hidden_size, v.num_attention_heads),
            ("text_config", t.hidden_size, t.num_attention_heads),
        ] {
            if heads == 0 || !width.is_multiple_of(heads) {
                return bad(format!(
                    "{name}.hidden_size {width} is not divisible by num_attention_heads {heads}"
                ));
            }
        }
        if self.projection_dim == 0 {
            return bad("projection_dim must be positive".into());
        }
        Ok(())
    }

    /// ViT-B/32 (`openai/clip-vit-base-patch32`).
    pub fn vit_base_patch32() -> Self {
        Self::openai(768, 12, 12, 224, 32, 512, 512, 8)
    }

    /// ViT-B/16 (`openai/clip-vit-base-patch16`).
    pub fn vit_base_patch16() -> Self {
        Self::openai(768, 12, 12, 224, 16, 512, 512, 8)
    }

    /// ViT-L/14 (`openai/clip-vit-large-patch14`).
    pub fn vit_large_patch14() -> Self {
        Self::openai(1024, 24, 16, 224, 14, 768, 768, 12)
    }

    #[allow(clippy::too_many_arguments)]
    fn openai(
        v_width: usize,
        v_layers: usize,
        v_heads: usize,
        image_size: usize,
        patch: usize,
        t_width: usize,
        projection_dim: usize,
        t_heads: usize,
    ) -> Self {
        Self {
            text: TextConfig {
                vocab_size: 49408,
                hidden_size: t_width,
                intermediate_size: 4 * t_width,
                num_hidden_layers: 12,
                num_attention_heads: t_heads,
                max_position_embeddings: 77,
                hidden_act: Activation::QuickGelu,
                layer_norm_eps: 1e-5,
                eos_token_id: 2,
                pad_token_id: 1,
            },
            vision: ImageConfig::Vit(VisionConfig {
                hidden_size: v_width,
                intermediate_size: 4 * v_width,
                num_hidden_layers: v_layers,
                num_attention_heads: v_heads,
                image_size,
                patch_size: patch,
                num_channels: 3,
                hidden_act: Activation::QuickGelu,
                layer_norm_eps: 1e-5,
            }),
            projection_dim,
        }
    }

    /// Serialises the config as a Hugging Face `config.json` that [`ClipConfig::parse`] and
    /// transformers both read; a ResNet tower has no such layout (it is written as open_clip's).
    pub fn to_hf_json(&self) -> Result<serde_json::Value, ClipError> {
        let act = |a: Activation| match a {
            Activation::QuickGelu => "quick_gelu",
            Activation::Gelu => "gelu",
        };
        let t = &self.text;
        let ImageConfig::Vit(v) = &self.vision else {
            return Err(ClipError::Input(
                "a ResNet image tower has no Hugging Face config.json; it is written in \
                 open_clip's layout"
                    .into(),
            ));
        };
        Ok(serde_json::json!({
            "architectures": ["CLIPModel"],
            "model_type": "clip",
            "projection_dim": self.projection_dim,
            "logit_scale_init_value": 2.6592,
            "text_config": {
                "model_type": "clip_text_model",
                "vocab_size": t.vocab_size, "hidden_size": t.hidden_size,
                "intermediate_size": t.intermediate_size, "num_hidden_layers": t.num_hidden_layers,
                "num_attention_heads": t.num_attention_heads,
                "max_position_embeddings": t.max_position_embeddings,
                "hidden_act": act(t.hidden_act), "layer_norm_eps": t.layer_norm_eps,
                "eos_token_id": t.eos_token_id, "pad_token_id": t.pad_token_id,
                "bos_token_id": t.eos_token_id.saturating_sub(1),
                "projection_dim": self.projection_dim,
            },
            "vision_config": {
                "model_type": "clip_vision_model",
                "hidden_size": v.hidden_size, "intermediate_size": v.intermediate_size,
                "num_hidden_layers": v.num_hidden_layers, "num_attention_heads": v.num_attention_heads,
                "image_size": v.image_size, "patch_size": v.patch_size, "num_channels": v.num_channels,
                "hidden_act": act(v.hidden_act), "layer_norm_eps": v.layer_norm_eps,
                "projection_dim": self.projection_dim,
            },
        }))
    }
}

/// Typed access to one JSON object of `config.json`, with errors that name the field.
struct Fields<'a> {
    raw: &'a serde_json::Value,
    path: &'a Path,
}

impl<'a> Fields<'a> {
    fn err(&self, msg: String) -> ClipError {
        ClipError::Config {
            path: self.path.to_path_buf(),
            msg,
        }
    }

    fn section(&self, key: &str) -> Result<Section<'a>, ClipError> {
        match self.raw.get(key) {
            Some(v) if v.is_object() => Ok(Section {
                name: key.to_string(),
                fields: Fields {
                    raw: v,
                    path: self.path,
                },
            }),
            Some(_) => Err(self.err(format!("{key} must be a JSON object"))),
            None => Err(self.err(format!("missing {key}; a CLIP config.json has both towers"))),
        }
    }

    fn usize_or(&self, key: &str, default: usize) -> Result<usize, ClipError> {
        match self.raw.get(key) {
            None | Some(serde_json::Value::Null) => Ok(default),
            Some(v) => v
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| self.err(format!("{key} must be a non-negative integer, got {v}"))),
        }
    }

    fn f64_or(&self, key: &str, default: f64) -> Result<f64, ClipError> {
        match self.raw.get(key) {
            None | Some(serde_json::Value::Null) => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.err(format!("{key} must be a number, got {v}"))),
        }
    }

    fn str_or(&self, key: &str, default: &'a str) -> Result<&'a str, ClipError> {
        match self.raw.get(key) {
            None | Some(serde_json::Value::Null) => Ok(default),
            Some(v) => v
                .as_str()
                .ok_or_else(|| self.err(format!("{key} must be a string, got {v}"))),
        }
    }
}

/// One tower section, read with transformers' defaults for absent keys.
struct Section<'a> {
    name: String,
    fields: Fields<'a>,
}

impl Section<'_> {
    fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.name)
    }

    fn usize_or(&self, key: &str, default: usize) -> Result<usize, ClipError> {
        self.fields.usize_or(key, default).map_err(|_| {
            self.fields
                .err(format!("{} must be a non-negative integer", self.key(key)))
        })
    }

    fn act(&self) -> Result<Activation, ClipError> {
        let name = self.fields.str_or("hidden_act", "quick_gelu")?;
        Activation::parse(name, self.fields.path, &self.key("hidden_act"))
    }

    fn text(&self) -> Result<TextConfig, ClipError> {
        Ok(TextConfig {
            vocab_size: self.usize_or("vocab_size", 49408)?,
            hidden_size: self.usize_or("hidden_size", 512)?,
            intermediate_size: self.usize_or("intermediate_size", 2048)?,
            num_hidden_layers: self.usize_or("num_hidden_layers", 12)?,
            num_attention_heads: self.usize_or("num_attention_heads", 8)?,
            max_position_embeddings: self.usize_or("max_position_embeddings", 77)?,
            hidden_act: self.act()?,
            layer_norm_eps: self.fields.f64_or("layer_norm_eps", 1e-5)?,
            eos_token_id: self.usize_or("eos_token_id", 49407)? as u32,
            pad_token_id: self.usize_or("pad_token_id", 1)? as u32,
        })
    }

    fn vision(&self) -> Result<VisionConfig, ClipError> {
        Ok(VisionConfig {
            hidden_size: self.usize_or("hidden_size", 768)?,
            intermediate_size: self.usize_or("intermediate_size", 3072)?,
            num_hidden_layers: self.usize_or("num_hidden_layers", 12)?,
            num_attention_heads: self.usize_or("num_attention_heads", 12)?,
            image_size: self.usize_or("image_size", 224)?,
            patch_size: self.usize_or("patch_size", 32)?,
            num_channels: self.usize_or("num_channels", 3)?,
            hidden_act: self.act()?,
            layer_norm_eps: self.fields.f64_or("layer_norm_eps", 1e-5)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_round_trip_through_hf_json() {
        for cfg in [
            ClipConfig::vit_base_patch32(),
            ClipConfig::vit_base_patch16(),
            ClipConfig::vit_large_patch14(),
        ] {
            let text = cfg.to_hf_json().unwrap().to_string();
            let back = ClipConfig::parse(&text, Path::new("config.json")).unwrap();
            assert_eq!(back, cfg);
        }
        let b16 = ClipConfig::vit_base_patch16();
        assert_eq!(b16.vision.vit().unwrap().num_tokens(), 197);
    }

    #[test]
    fn unknown_activation_names_file_and_field() {
        let mut json = ClipConfig::vit_base_patch32().to_hf_json().unwrap();
        json["vision_config"]["hidden_act"] = "swish".into();
        let err = ClipConfig::parse(&json.to_string(), Path::new("/ckpt/config.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/ckpt/config.json"), "{err}");
        assert!(err.contains("vision_config.hidden_act"), "{err}");
        assert!(err.contains("swish"), "{err}");
    }

    #[test]
    fn missing_tower_and_bad_sizes_are_errors() {
        let err = ClipConfig::parse("{\"text_config\": {}}", Path::new("c.json")).unwrap_err();
        assert!(err.to_string().contains("vision_config"), "{err}");
        let mut json = ClipConfig::vit_base_patch32().to_hf_json().unwrap();
        json["vision_config"]["patch_size"] = 30.into();
        let err = ClipConfig::parse(&json.to_string(), Path::new("c.json")).unwrap_err();
        assert!(err.to_string().contains("patch_size"), "{err}");
        let err = ClipConfig::parse("not json", Path::new("c.json")).unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
    }
}
