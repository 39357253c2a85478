//! The trainable parameters of a CLIP, named exactly as transformers' `CLIPModel` state dict,
//! initialised as `CLIPPreTrainedModel._init_weights` does (`initializer_factor` 1,
//! `initializer_range` 0.02):
//!
//! | tensor | init |
//! |---|---|
//! | token / position embeddings, patch embedding | N(0, 0.02²) |
//! | class embedding | N(0, width⁻¹) |
//! | q/k/v projections | N(0, width⁻¹ · (2·layers)⁻¹) |
//! | attention output projection | N(0, width⁻¹) |
//! | `fc1` | N(0, (2·width)⁻¹) |
//! | `fc2` | N(0, width⁻¹ · (2·layers)⁻¹) |
//! | `text_projection` / `visual_projection` | N(0, tower width⁻¹) |
//! | LayerNorm | weight 1, bias 0; every bias 0 |
//! | `logit_scale` | ln(1 / 0.07) = 2.6592 |
//!
//! (transformers `models/clip/modeling_clip.py`, `CLIPPreTrainedModel._init_weights`; std given
//! as variance above.) [`tower_weights`] hands the variables to [`crate::clip`]'s towers, which
//! then train: each tensor is the variable itself, so gradients reach it.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Result, Tensor};

use crate::clip::{ClipConfig, ImageConfig, VisionConfig, Weights};
use crate::model::params::ParamStore;

/// The HF name of CLIP's learned log inverse temperature.
pub const LOGIT_SCALE: &str = "logit_scale";
/// transformers' `logit_scale_init_value`, ln(1 / 0.07).
pub const LOGIT_SCALE_INIT: f32 = 2.6592;
/// transformers' `initializer_range`.
const INIT_RANGE: f32 = 0.02;

/// Sizes of one tower's blocks, for [`init_layers`].
struct Tower<'a> {
    prefix: &'a str,
    width: usize,
    intermediate: usize,
    layers: usize,
}

/// Creates every trainable parameter of a CLIP of `config`, drawn from `seed`: both towers of a
/// ViT CLIP; for a ModifiedResNet image tower, which comes trained from `pretrain-vision` and
/// stays locked (LiT), the text tower and the temperature only.
pub fn init_params(config: &ClipConfig, seed: u64, device: &Device) -> Result<ParamStore> {
    let mut s = ParamStore::new(seed, device);
    if let ImageConfig::Vit(v) = &config.vision {
        init_vision(&mut s, v, config.projection_dim)?;
    }
    init_text(&mut s, config)?;
    s.constant(LOGIT_SCALE, (), LOGIT_SCALE_INIT)?;
    Ok(s)
}

fn init_vision(s: &mut ParamStore, v: &VisionConfig, projection_dim: usize) -> Result<()> {
    let w = v.hidden_size;
    let p = v.patch_size;
    let e = "vision_model.embeddings";
    s.normal(&format!("{e}.class_embedding"), w, (w as f32).powf(-0.5))?;
    s.normal(
        &format!("{e}.patch_embedding.weight"),
        (w, v.num_channels, p, p),
        INIT_RANGE,
    )?;
    s.normal(
        &format!("{e}.position_embedding.weight"),
        (v.num_tokens(), w),
        INIT_RANGE,
    )?;
    layer_norm(s, "vision_model.pre_layrnorm", w)?;
    init_layers(
        s,
        &Tower {
            prefix: "vision_model.encoder.layers",
            width: w,
            intermediate: v.intermediate_size,
            layers: v.num_hidden_layers,
        },
    )?;
    layer_norm(s, "vision_model.post_layernorm", w)?;
    s.normal(
        "visual_projection.weight",
        (projection_dim, w),
        (w as f32).powf(-0.5),
    )?;
    Ok(())
}

fn init_text(s: &mut ParamStore, config: &ClipConfig) -> Result<()> {
    let t = &config.text;
    let w = t.hidden_size;
    let e = "text_model.embeddings";
    s.normal(
        &format!("{e}.token_embedding.weight"),
        (t.vocab_size, w),
        INIT_RANGE,
    )?;
    s.normal(
        &format!("{e}.position_embedding.weight"),
        (t.max_position_embeddings, w),
        INIT_RANGE,
    )?;
    init_layers(
        s,
        &Tower {
            prefix: "text_model.encoder.layers",
            width: w,
            intermediate: t.intermediate_size,
            layers: t.num_hidden_layers,
        },
    )?;
    layer_norm(s, "text_model.final_layer_norm", w)?;
    s.normal(
        "text_projection.weight",
        (config.projection_dim, w),
        (w as f32).powf(-0.5),
    )?;
    Ok(())
}

fn layer_norm(s: &mut ParamStore, name: &str, width: usize) -> Result<()> {
    s.constant(&format!("{name}.weight"), width, 1.0)?;
    s.constant(&format!("{name}.bias"), width, 0.0)?;
    Ok(())
}

fn linear(s: &mut ParamStore, name: &str, input: usize, output: usize, std: f32) -> Result<()> {
    s.normal(&format!("{name}.weight"), (output, input), std)?;
    s.constant(&format!("{name}.bias"), output, 0.0)?;
    Ok(())
}

/// The blocks of one tower (`CLIPEncoderLayer`s).
fn init_layers(s: &mut ParamStore, t: &Tower) -> Result<()> {
    let w = t.width;
    let width_std = (w as f32).powf(-0.5);
    let depth = (2.0 * t.layers as f32).powf(-0.5);
    for i in 0..t.layers {
        let b = format!("{}.{i}", t.prefix);
        layer_norm(s, &format!("{b}.layer_norm1"), w)?;
        for proj in ["q_proj", "k_proj", "v_proj"] {
            linear(s, &format!("{b}.self_attn.{proj}"), w, w, width_std * depth)?;
        }
        linear(s, &format!("{b}.self_attn.out_proj"), w, w, width_std)?;
        layer_norm(s, &format!("{b}.layer_norm2"), w)?;
        let fc1_std = (2.0 * w as f32).powf(-0.5);
        linear(s, &format!("{b}.mlp.fc1"), w, t.intermediate, fc1_std)?;
        linear(
            s,
            &format!("{b}.mlp.fc2"),
            t.intermediate,
            w,
            width_std * depth,
        )?;
    }
    Ok(())
}

/// Sets `logit_scale` to ln(1 / `temperature`) (CLIP starts at temperature 0.07).
pub fn set_temperature(store: &ParamStore, temperature: f64) -> Result<()> {
    let var = store
        .get(LOGIT_SCALE)
        .ok_or_else(|| candle_core::Error::Msg(format!("no {LOGIT_SCALE} parameter")))?;
    let value = (1.0 / temperature).ln() as f32;
    var.set(&Tensor::new(value, store.device())?)
}

/// Whether AdamW's weight decay applies to parameter `name` of rank `rank`: weight matrices
/// and the patch convolution yes; gains, biases, embedding tables and the temperature no.
pub fn decays(name: &str, rank: usize) -> bool {
    rank >= 2
        && !name.ends_with("token_embedding.weight")
        && !name.ends_with("position_embedding.weight")
}

/// The variables as tower weights: each tensor *is* its variable (same id), so the towers built
/// from them are trainable. `path` names the weights in errors.
pub fn tower_weights(store: &ParamStore, path: &Path) -> Weights {
    let tensors: HashMap<String, Tensor> = store
        .named()
        .into_iter()
        .map(|(name, var)| (name, var.as_tensor().clone()))
        .collect();
    Weights::from_tensors(path, tensors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::{TextTower, VisionTower};
    use crate::pretrain::ModelSize;

    fn std_of(store: &ParamStore, name: &str) -> f32 {
        let v = store.get(name).unwrap().flatten_all().unwrap();
        v.sqr()
            .unwrap()
            .mean_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            .sqrt()
    }

    #[test]
    fn params_load_into_both_towers_with_transformers_init() {
        let cfg = ModelSize::default().clip_config(300, 16, 299).unwrap();
        let store = init_params(&cfg, 3, &Device::Cpu).unwrap();
        let w = tower_weights(&store, Path::new("init"));
        let vit = cfg.vision.vit().unwrap();
        VisionTower::new(&w, vit, cfg.projection_dim).unwrap();
        TextTower::new(&w, &cfg.text, cfg.projection_dim).unwrap();
        // 16 tensors per block; embeddings, norms and projections; the temperature.
        let (lv, lt) = (vit.num_hidden_layers, cfg.text.num_hidden_layers);
        assert_eq!(
            store.named().len(),
            (3 + 4 + 1 + 16 * lv) + (2 + 2 + 1 + 16 * lt) + 1
        );
        let width = vit.hidden_size as f32;
        let layers = vit.num_hidden_layers as f32;
        let q = std_of(
            &store,
            "vision_model.encoder.layers.0.self_attn.q_proj.weight",
        );
        let want = width.powf(-0.5) * (2.0 * layers).powf(-0.5);
        assert!((q / want - 1.0).abs() < 0.05, "q std {q} vs {want}");
        let tok = std_of(&store, "text_model.embeddings.token_embedding.weight");
        assert!((tok / INIT_RANGE - 1.0).abs() < 0.05, "{tok}");
        let scale = store.get(LOGIT_SCALE).unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(scale, LOGIT_SCALE_INIT);
        assert!(decays("visual_projection.weight", 2));
        assert!(!decays("text_model.embeddings.token_embedding.weight", 2));
        assert!(!decays("vision_model.post_layernorm.weight", 1));
    }
}
