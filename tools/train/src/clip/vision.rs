//! CLIP's image tower (`CLIPVisionTransformer` + `visual_projection`) with the two token streams
//! XR-VLM reads (`xrvlm-method.md` §2.1):
//! - `X`: the output of block L−2, not layer-normed, every token (UnA's attention source);
//! - `F`: every token after the last block, `post_layernorm` and `visual_projection` (UnA's values).
//!
//! Standard CLIP applies `post_layernorm` and the projection to the CLS token only; that token of
//! `F` is therefore `get_image_features`.

use candle_core::{Result, Tensor};

use super::config::VisionConfig;
use super::layers::{load_layers, BlockShape, EncoderLayer, LayerNorm, Linear};
use super::weights::Weights;
use super::ClipError;

/// The two token streams of §2.1 (§2.2 for a ResNet), and the tower's pooled image feature.
pub struct VisionStreams {
    /// Block L−2 output `(B, N, width)` (a ResNet's last map, one token per location).
    pub x: Tensor,
    /// All tokens after `post_layernorm` and the projection `(B, N, D)` (a ResNet's value path).
    pub f: Tensor,
    /// `get_image_features` `(B, D)`: the projected CLS token (a ResNet's attention pool).
    pub pooled: Tensor,
}

/// The frozen image tower.
#[derive(Clone)]
pub struct VisionTower {
    config: VisionConfig,
    /// Patch embedding as a matrix `(width, 3·p·p)` (a stride-p conv is a matmul over patches).
    patch: Tensor,
    class_embedding: Tensor,
    position: Tensor,
    pre_ln: LayerNorm,
    layers: Vec<EncoderLayer>,
    post_ln: LayerNorm,
    projection: Linear,
}

impl VisionTower {
    /// Loads `vision_model.*` and `visual_projection.weight`.
    pub fn new(
        w: &Weights,
        c: &VisionConfig,
        projection_dim: usize,
    ) -> std::result::Result<Self, ClipError> {
        let width = c.hidden_size;
        let p = c.patch_size;
        let patch = w
            .get(
                "vision_model.embeddings.patch_embedding.weight",
                &[width, c.num_channels, p, p],
            )?
            .reshape((width, c.num_channels * p * p))?;
        let shape = BlockShape {
            width,
            intermediate: c.intermediate_size,
            heads: c.num_attention_heads,
            act: c.hidden_act,
            eps: c.layer_norm_eps,
        };
        Ok(Self {
            config: c.clone(),
            patch,
            class_embedding: w.get("vision_model.embeddings.class_embedding", &[width])?,
            position: w.get(
                "vision_model.embeddings.position_embedding.weight",
                &[c.num_tokens(), width],
            )?,
            // HF's spelling "pre_layrnorm" is the checkpoint key.
            pre_ln: LayerNorm::load(w, "vision_model.pre_layrnorm", width, c.layer_norm_eps)?,
            layers: load_layers(w, "vision_model.encoder.layers", c.num_hidden_layers, shape)?,
            post_ln: LayerNorm::load(w, "vision_model.post_layernorm", width, c.layer_norm_eps)?,
            projection: Linear::load(w, "visual_projection", width, projection_dim, false)?,
        })
    }

    /// The tower's configuration.
    pub fn config(&self) -> &VisionConfig {
        &self.config
    }

    fn check_input(&self, pixels: &Tensor) -> std::result::Result<(), ClipError> {
        let c = &self.config;
        let want = [c.num_channels, c.image_size, c.image_size];
        match pixels.dims() {
            [_, rest @ ..] if rest == want => Ok(()),
            dims => Err(ClipError::Input(format!(
                "pixel_values has shape {dims:?}, expected (N, {}, {}, {})",
                want[0], want[1], want[2]
            ))),
        }
    }

    /// Patch + class + position embeddings, then `pre_layrnorm`: `(B, N, width)`.
    fn embed(&self, pixels: &Tensor) -> Result<Tensor> {
        let c = &self.config;
        let (b, ch, _, _) = pixels.dims4()?;
        let (g, p) = (c.grid(), c.patch_size);
        // (B, C, g, p, g, p) → (B, g, g, C, p, p) → (B, g·g, C·p·p): row-major patch order,
        // as the conv's flatten(2).transpose(1, 2) gives.
        let patches = pixels
            .reshape((b, ch, g, p, g, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((b, g * g, ch * p * p))?;
        let tokens = patches.broadcast_matmul(&self.patch.t()?)?;
        let width = c.hidden_size;
        let cls = self
            .class_embedding
            .reshape((1, 1, width))?
            .broadcast_as((b, 1, width))?;
        let x = Tensor::cat(&[&cls, &tokens], 1)?.broadcast_add(&self.position)?;
        self.pre_ln.forward(&x)
    }

    /// Runs the tower and returns both token streams (§2.1).
    pub fn streams(&self, pixels: &Tensor) -> std::result::Result<VisionStreams, ClipError> {
        self.check_input(pixels)?;
        let split = self.layers.len() - 2;
        let mut h = self.embed(pixels)?;
        let mut x = None;
        for (i, layer) in self.layers.iter().enumerate() {
            if i == split {
                x = Some(h.clone());
            }
            h = layer.forward(&h, None)?;
        }
        let x = x.ok_or_else(|| ClipError::Input("vision tower has fewer than 2 blocks".into()))?;
        let f = self.projection.forward(&self.post_ln.forward(&h)?)?;
        let pooled = f.narrow(1, 0, 1)?.squeeze(1)?;
        Ok(VisionStreams { x, f, pooled })
    }

    /// `get_image_features`: the projected CLS token `(B, D)`, not normalised.
    pub fn image_features(&self, pixels: &Tensor) -> std::result::Result<Tensor, ClipError> {
        self.check_input(pixels)?;
        let mut h = self.embed(pixels)?;
        for layer in &self.layers {
            h = layer.forward(&h, None)?;
        }
        let cls = h.narrow(1, 0, 1)?.squeeze(1)?;
        Ok(self.projection.forward(&self.post_ln.forward(&cls)?)?)
    }
}
