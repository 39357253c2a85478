//! The numbers the image graph is made of, read out of a [`Model`] in eval form: the frozen
//! image tower (a ViT's tensors by their Hugging Face names, exactly the ones
//! [`crate::clip::VisionTower`] runs; a ModifiedResNet as [`ResNetTower::folded`] gives it) and
//! UnA with its batch norms as eval-mode affines ([`BatchNorm::eval_affine`]).
//!
//! The rewrites here are all exact up to f32 rounding. ViT: the patch convolution becomes a
//! matrix over flattened patches (as the tower computes it), and q, k and v are stacked into
//! one `(3·W, W)` projection with the attention scale `head_dim^-½` folded into q's rows, so the
//! three projections read their shared input once (one matmul, and in the int8 graph one
//! quantization). ResNet: every batch norm is folded into its convolution, and the value path
//! (`v_proj` then `c_proj`, after the position embedding) is one linear layer plus a per-token
//! bias.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use xrvlm_runtime::engine::ModelShape;

use super::linear::LinearId;
use super::ExportError;
use crate::clip::resnet::{FoldedConv, ResNetConfig, ResNetTower};
use crate::clip::{ImageTower, VisionConfig, Weights};
use crate::model::batch_norm::BatchNorm;
use crate::model::params::ParamStore;
use crate::model::{Head, Model};

/// A row-major f32 matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// `rows · cols` values, row after row.
    pub data: Vec<f32>,
}

impl Matrix {
    fn from_tensor(t: &Tensor) -> candle_core::Result<Self> {
        let (rows, cols) = t.dims2()?;
        let data = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        Ok(Self { rows, cols, data })
    }

    /// The transpose.
    pub fn transposed(&self) -> Matrix {
        let mut data = vec![0f32; self.data.len()];
        for r in 0..self.rows {
            for c in 0..self.cols {
                data[c * self.rows + r] = self.data[r * self.cols + c];
            }
        }
        Matrix {
            rows: self.cols,
            cols: self.rows,
            data,
        }
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// As a candle tensor on the CPU.
    pub fn to_tensor(&self) -> candle_core::Result<Tensor> {
        Tensor::from_slice(&self.data, (self.rows, self.cols), &Device::Cpu)
    }
}

/// A dense layer `y = x Wᵀ + b` with PyTorch's weight layout `(out, in)`.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearWeights {
    /// `(out, in)`.
    pub weight: Matrix,
    /// `(out)`, if the layer has a bias.
    pub bias: Option<Vec<f32>>,
}

impl LinearWeights {
    /// Input features.
    pub fn inputs(&self) -> usize {
        self.weight.cols
    }

    /// Output features.
    pub fn outputs(&self) -> usize {
        self.weight.rows
    }
}

/// LayerNorm's affine parameters and epsilon.
#[derive(Clone, Debug, PartialEq)]
pub struct NormWeights {
    /// γ.
    pub weight: Vec<f32>,
    /// β.
    pub bias: Vec<f32>,
    /// Added to the variance.
    pub eps: f64,
}

/// An eval-mode batch norm `y = x · scale + shift`.
#[derive(Clone, Debug, PartialEq)]
pub struct Affine {
    /// γ / √(running_var + eps).
    pub scale: Vec<f32>,
    /// β − running_mean · scale.
    pub shift: Vec<f32>,
}

/// One pre-norm transformer block.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockWeights {
    /// `layer_norm1`.
    pub ln1: NormWeights,
    /// q, k, v stacked `(3·W, W)`, q pre-scaled by `head_dim^-½`.
    pub qkv: LinearWeights,
    /// `out_proj`.
    pub out: LinearWeights,
    /// `layer_norm2`.
    pub ln2: NormWeights,
    /// `mlp.fc1`.
    pub fc1: LinearWeights,
    /// `mlp.fc2`.
    pub fc2: LinearWeights,
}

/// UnA in eval mode (`xrvlm-method.md` §2.3).
#[derive(Clone, Debug, PartialEq)]
pub struct UnaWeights {
    /// BN over the attention-source width Cx.
    pub bn_x: Affine,
    /// W_φ `(M+1, Cx)`.
    pub queries: Matrix,
    /// BN over the M+1 maps.
    pub bn_maps: Affine,
    /// Softmax temperature multiplier τ.
    pub tau: f64,
    /// Visual parts M (the last of the M+1 maps is dropped).
    pub parts: usize,
}

/// Everything the image graph computes with.
#[derive(Clone, Debug, PartialEq)]
pub struct VisualSource {
    /// The image tower.
    pub tower: TowerWeights,
    /// Joint embedding size D.
    pub embed_dim: usize,
    /// The UnA head.
    pub una: UnaWeights,
}

/// The image tower of either family.
#[derive(Clone, Debug, PartialEq)]
pub enum TowerWeights {
    /// A vision transformer.
    Vit(VitWeights),
    /// A ModifiedResNet, batch norms folded.
    ResNet(ResNetWeights),
}

/// A convolution with its batch norm folded in, as a matrix over flattened `(c, y, x)` input
/// patches `(out, in·k·k)` plus the bias, then a ReLU when `relu`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvWeights {
    /// The kernel as a matrix, with the bias.
    pub linear: LinearWeights,
    /// Kernel side k.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
    /// Whether a ReLU follows.
    pub relu: bool,
}

impl ConvWeights {
    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.linear.inputs() / (self.kernel * self.kernel)
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.linear.outputs()
    }
}

/// One bottleneck, by index into [`ResNetWeights::convs`].
#[derive(Clone, Debug, PartialEq)]
pub struct BottleneckLayout {
    /// 1×1, 3×3, 1×1.
    pub convs: [usize; 3],
    /// The shortcut's 1×1 projection.
    pub downsample: Option<usize>,
    /// Average-pool side after the 3×3 and on the shortcut (1: none).
    pub stride: usize,
}

/// A ModifiedResNet in eval form.
#[derive(Clone, Debug, PartialEq)]
pub struct ResNetWeights {
    /// Its sizes.
    pub config: ResNetConfig,
    /// Every convolution: the stem's three, then each bottleneck's conv1, conv2, conv3 and
    /// downsample; `LinearId::Conv(i)` is `convs[i]`.
    pub convs: Vec<ConvWeights>,
    /// The bottlenecks.
    pub blocks: Vec<BottleneckLayout>,
    /// The value path `(D, C)`, no bias.
    pub values: LinearWeights,
    /// Its per-token bias `(HW, D)` (position embedding and both biases).
    pub values_bias: Matrix,
    /// The input shape `(C, H, W)` of each of `convs`.
    pub conv_inputs: Vec<[usize; 3]>,
}

/// A ViT in eval form.
#[derive(Clone, Debug, PartialEq)]
pub struct VitWeights {
    /// The image tower's configuration.
    pub vision: VisionConfig,
    /// Patch embedding as a matrix `(W, 3·p·p)` over flattened `(c, y, x)` patches, no bias.
    pub patch: LinearWeights,
    /// `class_embedding` `(W)`.
    pub class_embedding: Vec<f32>,
    /// `position_embedding` `(tokens, W)`.
    pub position: Matrix,
    /// `pre_layrnorm`.
    pub pre_ln: NormWeights,
    /// The encoder blocks.
    pub blocks: Vec<BlockWeights>,
    /// `post_layernorm`.
    pub post_ln: NormWeights,
    /// `visual_projection` `(D, W)`, no bias.
    pub projection: LinearWeights,
}

/// One layer the int8 plan can quantize.
#[derive(Clone, Copy, Debug)]
pub enum Layer<'a> {
    /// A dense layer over the last axis.
    Linear(&'a LinearWeights),
    /// A convolution over `(N, C, H, W)`.
    Conv(&'a ConvWeights),
}

impl<'a> Layer<'a> {
    /// The weights as a matrix `(out, in)` (a convolution's over flattened patches).
    pub fn matrix(&self) -> &'a LinearWeights {
        match self {
            Self::Linear(l) => l,
            Self::Conv(c) => &c.linear,
        }
    }
}

impl VisualSource {
    /// The graph's input side S and `parts` (M, D), as a runtime plan needs them.
    pub fn model_shape(&self) -> ModelShape {
        ModelShape {
            image_size: self.image_size(),
            parts: self.una.parts,
            embed: self.embed_dim,
        }
    }

    /// Reads the image path of `model`; the head must have UnA (xrvlm, alignment or
    /// vision-only).
    pub fn from_model(model: &Model) -> Result<Self, ExportError> {
        let una = match &model.head {
            Head::Xrvlm { una, .. }
            | Head::Alignment { una, .. }
            | Head::VisionOnly { una, .. } => una,
            Head::Coop { .. } | Head::ZeroShot { .. } => {
                return Err(ExportError::NoParts(model.config.kind))
            }
        };
        let embed_dim = model.clip.config.projection_dim;
        let tower = match &model.clip.vision {
            ImageTower::Vit(_) => TowerWeights::Vit(VitWeights::from_model(model)?),
            ImageTower::ResNet(r) => TowerWeights::ResNet(ResNetWeights::from_tower(r)?),
        };
        let una = UnaReader { model }.read(tower.token_width(), una.parts())?;
        Ok(Self {
            tower,
            embed_dim,
            una,
        })
    }

    /// Input side S.
    pub fn image_size(&self) -> usize {
        match &self.tower {
            TowerWeights::Vit(v) => v.vision.image_size,
            TowerWeights::ResNet(r) => r.config.image_size,
        }
    }

    /// Every quantizable layer, in graph order.
    pub fn linear_ids(&self) -> Vec<LinearId> {
        match &self.tower {
            TowerWeights::Vit(v) => v.linear_ids(),
            TowerWeights::ResNet(r) => r.linear_ids(),
        }
    }

    /// The weights of layer `id`, if the tower has it.
    pub fn layer(&self, id: LinearId) -> Option<Layer<'_>> {
        match &self.tower {
            TowerWeights::Vit(v) => v.linear(id).map(Layer::Linear),
            TowerWeights::ResNet(r) => r.layer(id),
        }
    }

    /// The shape of layer `id`'s input without the batch axis: `(rows, in)` for a dense layer,
    /// `(C, H, W)` for a convolution.
    pub fn input_dims(&self, id: LinearId) -> Option<Vec<usize>> {
        match &self.tower {
            TowerWeights::Vit(v) => v.linear(id).map(|l| vec![v.linear_tokens(id), l.inputs()]),
            TowerWeights::ResNet(r) => r.input_dims(id),
        }
    }
}

impl TowerWeights {
    /// Width of UnA's attention-source tokens X.
    pub fn token_width(&self) -> usize {
        match self {
            Self::Vit(v) => v.vision.hidden_size,
            Self::ResNet(r) => r.config.feature_channels(),
        }
    }
}

impl VitWeights {
    fn from_model(model: &Model) -> Result<Self, ExportError> {
        let frozen: HashMap<String, Tensor> = model
            .clip
            .frozen_tensors()
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        let w = Weights::from_tensors(&model.clip.dir.join("model.safetensors"), frozen);
        let vision =
            model
                .clip
                .config
                .vision
                .vit()
                .cloned()
                .ok_or_else(|| ExportError::Tensor {
                    name: "vision".into(),
                    msg: "the image tower is not a ViT".into(),
                })?;
        let tower = TowerReader {
            w: &w,
            c: &vision,
            embed_dim: model.clip.config.projection_dim,
        };
        Ok(Self {
            patch: tower.patch()?,
            class_embedding: tower.vector(
                "vision_model.embeddings.class_embedding",
                vision.hidden_size,
            )?,
            position: tower.matrix(
                "vision_model.embeddings.position_embedding.weight",
                vision.num_tokens(),
                vision.hidden_size,
            )?,
            pre_ln: tower.norm("vision_model.pre_layrnorm")?,
            blocks: (0..vision.num_hidden_layers)
                .map(|i| tower.block(i))
                .collect::<Result<_, _>>()?,
            post_ln: tower.norm("vision_model.post_layernorm")?,
            projection: tower.linear(
                "visual_projection",
                vision.hidden_size,
                tower.embed_dim,
                false,
            )?,
            vision,
        })
    }

    /// Tokens per image (patches plus the class token).
    pub fn tokens(&self) -> usize {
        self.vision.num_tokens()
    }

    /// Transformer width W.
    pub fn width(&self) -> usize {
        self.vision.hidden_size
    }

    /// The block whose input is UnA's attention source X (block L−2 in 1-based counting).
    pub fn split_block(&self) -> usize {
        self.blocks.len() - 2
    }

    /// Every linear layer, in graph order.
    pub fn linear_ids(&self) -> Vec<LinearId> {
        let mut ids = vec![LinearId::Patch];
        for i in 0..self.blocks.len() {
            ids.extend([
                LinearId::Qkv(i),
                LinearId::AttnOut(i),
                LinearId::Fc1(i),
                LinearId::Fc2(i),
            ]);
        }
        ids.push(LinearId::Projection);
        ids
    }

    /// The weights of layer `id`, if the tower has it.
    pub fn linear(&self, id: LinearId) -> Option<&LinearWeights> {
        let block = |i: usize| self.blocks.get(i);
        match id {
            LinearId::Patch => Some(&self.patch),
            LinearId::Qkv(i) => block(i).map(|b| &b.qkv),
            LinearId::AttnOut(i) => block(i).map(|b| &b.out),
            LinearId::Fc1(i) => block(i).map(|b| &b.fc1),
            LinearId::Fc2(i) => block(i).map(|b| &b.fc2),
            LinearId::Projection => Some(&self.projection),
            LinearId::Conv(_) | LinearId::Values => None,
        }
    }

    /// Rows (tokens) per image that layer `id` sees.
    pub fn linear_tokens(&self, id: LinearId) -> usize {
        match id {
            LinearId::Patch => self.vision.grid() * self.vision.grid(),
            _ => self.tokens(),
        }
    }
}

impl ResNetWeights {
    fn from_tower(tower: &ResNetTower) -> Result<Self, ExportError> {
        let folded = tower.folded()?;
        let config = tower.config().clone();
        let mut convs = Vec::new();
        let mut conv_inputs = Vec::new();
        let mut push = |c: &FoldedConv, input: [usize; 3]| -> Result<usize, ExportError> {
            convs.push(conv_weights(c)?);
            conv_inputs.push(input);
            Ok(convs.len() - 1)
        };
        let mut side = config.image_size;
        let mut channels = 3;
        for (i, c) in folded.stem.iter().enumerate() {
            push(c, [channels, side, side])?;
            channels = c.weight.dim(0)?;
            if i == 0 {
                side /= c.stride;
            }
        }
        side /= 2; // the stem's average pool
        let mut blocks = Vec::new();
        for b in &folded.blocks {
            let planes = b.conv1.weight.dim(0)?;
            let c1 = push(&b.conv1, [channels, side, side])?;
            let c2 = push(&b.conv2, [planes, side, side])?;
            let pooled = side / b.stride;
            let c3 = push(&b.conv3, [planes, pooled, pooled])?;
            let downsample = match &b.downsample {
                Some(d) => Some(push(d, [channels, pooled, pooled])?),
                None => None,
            };
            blocks.push(BottleneckLayout {
                convs: [c1, c2, c3],
                downsample,
                stride: b.stride,
            });
            channels = b.conv3.weight.dim(0)?;
            side = pooled;
        }
        Ok(Self {
            config,
            convs,
            blocks,
            values: LinearWeights {
                weight: Matrix::from_tensor(&folded.values_weight)?,
                bias: None,
            },
            values_bias: Matrix::from_tensor(&folded.values_bias)?,
            conv_inputs,
        })
    }

    /// Side of the last map.
    pub fn grid(&self) -> usize {
        self.config.grid()
    }

    fn linear_ids(&self) -> Vec<LinearId> {
        let mut ids: Vec<LinearId> = (0..self.convs.len()).map(LinearId::Conv).collect();
        ids.push(LinearId::Values);
        ids
    }

    fn layer(&self, id: LinearId) -> Option<Layer<'_>> {
        match id {
            LinearId::Conv(i) => self.convs.get(i).map(Layer::Conv),
            LinearId::Values => Some(Layer::Linear(&self.values)),
            _ => None,
        }
    }

    fn input_dims(&self, id: LinearId) -> Option<Vec<usize>> {
        match id {
            LinearId::Conv(i) => self.conv_inputs.get(i).map(|d| d.to_vec()),
            LinearId::Values => Some(vec![self.config.tokens(), self.values.inputs()]),
            _ => None,
        }
    }
}

fn conv_weights(c: &FoldedConv) -> Result<ConvWeights, ExportError> {
    let (out, input, k, k2) = c.weight.dims4()?;
    if k != k2 {
        return Err(ExportError::Tensor {
            name: "convolution".into(),
            msg: format!("kernel {k}×{k2} is not square"),
        });
    }
    let matrix = c.weight.reshape((out, input * k * k))?;
    Ok(ConvWeights {
        linear: LinearWeights {
            weight: Matrix::from_tensor(&matrix)?,
            bias: Some(c.bias.to_dtype(DType::F32)?.to_vec1::<f32>()?),
        },
        kernel: k,
        stride: c.stride,
        padding: c.padding,
        relu: c.relu,
    })
}

/// Reads the tower's tensors by HF name, shapes checked by [`Weights::get`].
struct TowerReader<'a> {
    w: &'a Weights,
    c: &'a VisionConfig,
    embed_dim: usize,
}

impl TowerReader<'_> {
    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, ExportError> {
        Ok(self.w.get(name, &[len])?.to_vec1::<f32>()?)
    }

    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix, ExportError> {
        Ok(Matrix::from_tensor(&self.w.get(name, &[rows, cols])?)?)
    }

    fn norm(&self, name: &str) -> Result<NormWeights, ExportError> {
        let width = self.c.hidden_size;
        Ok(NormWeights {
            weight: self.vector(&format!("{name}.weight"), width)?,
            bias: self.vector(&format!("{name}.bias"), width)?,
            eps: self.c.layer_norm_eps,
        })
    }

    fn linear(
        &self,
        name: &str,
        input: usize,
        output: usize,
        bias: bool,
    ) -> Result<LinearWeights, ExportError> {
        Ok(LinearWeights {
            weight: self.matrix(&format!("{name}.weight"), output, input)?,
            bias: if bias {
                Some(self.vector(&format!("{name}.bias"), output)?)
            } else {
                None
            },
        })
    }

    fn patch(&self) -> Result<LinearWeights, ExportError> {
        let (width, ch, p) = (self.c.hidden_size, self.c.num_channels, self.c.patch_size);
        let conv = self
            .w
            .get(
                "vision_model.embeddings.patch_embedding.weight",
                &[width, ch, p, p],
            )?
            .reshape((width, ch * p * p))?;
        Ok(LinearWeights {
            weight: Matrix::from_tensor(&conv)?,
            bias: None,
        })
    }

    fn block(&self, i: usize) -> Result<BlockWeights, ExportError> {
        let prefix = format!("vision_model.encoder.layers.{i}");
        let (w, inter) = (self.c.hidden_size, self.c.intermediate_size);
        let attn = |n: &str| self.linear(&format!("{prefix}.self_attn.{n}"), w, w, true);
        let head_dim = w / self.c.num_attention_heads;
        let scale = (head_dim as f64).powf(-0.5) as f32;
        Ok(BlockWeights {
            ln1: self.norm(&format!("{prefix}.layer_norm1"))?,
            qkv: stack_qkv(attn("q_proj")?, attn("k_proj")?, attn("v_proj")?, scale),
            out: attn("out_proj")?,
            ln2: self.norm(&format!("{prefix}.layer_norm2"))?,
            fc1: self.linear(&format!("{prefix}.mlp.fc1"), w, inter, true)?,
            fc2: self.linear(&format!("{prefix}.mlp.fc2"), inter, w, true)?,
        })
    }
}

/// Stacks q (scaled by `scale`, weight and bias, as `CLIPAttention` scales the projected
/// queries), k and v into one `(3·W, W)` layer.
fn stack_qkv(q: LinearWeights, k: LinearWeights, v: LinearWeights, scale: f32) -> LinearWeights {
    let mut data: Vec<f32> = q.weight.data.iter().map(|x| x * scale).collect();
    data.extend_from_slice(&k.weight.data);
    data.extend_from_slice(&v.weight.data);
    let bias_of = |l: &LinearWeights| l.bias.clone().unwrap_or_else(|| vec![0.0; l.outputs()]);
    let mut bias: Vec<f32> = bias_of(&q).iter().map(|x| x * scale).collect();
    bias.extend(bias_of(&k));
    bias.extend(bias_of(&v));
    LinearWeights {
        weight: Matrix {
            rows: 3 * q.weight.rows,
            cols: q.weight.cols,
            data,
        },
        bias: Some(bias),
    }
}

/// Reads UnA's parameters and buffers by name from the model's stores.
struct UnaReader<'a> {
    model: &'a Model,
}

impl UnaReader<'_> {
    fn read(&self, width: usize, parts: usize) -> Result<UnaWeights, ExportError> {
        let queries = self.param("una.queries")?;
        if queries.dims() != [parts + 1, width] {
            return Err(ExportError::Tensor {
                name: "una.queries".into(),
                msg: format!(
                    "has shape {:?}, expected [{}, {width}]",
                    queries.dims(),
                    parts + 1
                ),
            });
        }
        Ok(UnaWeights {
            bn_x: self.affine("una.bn_x", width)?,
            queries: Matrix::from_tensor(&queries)?,
            bn_maps: self.affine("una.bn_maps", parts + 1)?,
            tau: self.model.config.una_tau,
            parts,
        })
    }

    fn param(&self, name: &str) -> Result<Tensor, ExportError> {
        let store = if name.contains(".running_") {
            &self.model.buffers
        } else {
            &self.model.params
        };
        store
            .get(name)
            .map(|v| v.as_tensor().clone())
            .ok_or_else(|| ExportError::Tensor {
                name: name.to_string(),
                msg: "missing from the model's parameters and buffers".into(),
            })
    }

    /// The eval-mode affine of batch norm `name`: a [`BatchNorm`] is rebuilt around copies of
    /// the model's four tensors, so the formula and its epsilon are batch_norm.rs's own.
    fn affine(&self, name: &str, channels: usize) -> Result<Affine, ExportError> {
        let device = Device::Cpu;
        let mut params = ParamStore::new(0, &device);
        let mut buffers = ParamStore::new(0, &device);
        let bn = BatchNorm::new(&mut params, &mut buffers, name, channels)?;
        for suffix in ["weight", "bias", "running_mean", "running_var"] {
            let key = format!("{name}.{suffix}");
            let value = self.param(&key)?.to_dtype(DType::F32)?.to_device(&device)?;
            let store = if suffix.starts_with("running_") {
                &buffers
            } else {
                &params
            };
            let var = store.get(&key).ok_or_else(|| ExportError::Tensor {
                name: key.clone(),
                msg: "not created by BatchNorm::new".into(),
            })?;
            if var.dims() != value.dims() {
                return Err(ExportError::Tensor {
                    name: key,
                    msg: format!("has shape {:?}, expected [{channels}]", value.dims()),
                });
            }
            var.set(&value)?;
        }
        let (scale, shift) = bn.eval_affine()?;
        Ok(Affine {
            scale: scale.to_vec1::<f32>()?,
            shift: shift.to_vec1::<f32>()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_and_qkv_stacking() {
        let m = Matrix {
            rows: 2,
            cols: 3,
            data: vec![1., 2., 3., 4., 5., 6.],
        };
        let t = m.transposed();
        assert_eq!((t.rows, t.cols), (3, 2));
        assert_eq!(t.data, vec![1., 4., 2., 5., 3., 6.]);
        assert_eq!(t.transposed(), m);
        let lin = |v: f32| LinearWeights {
            weight: Matrix {
                rows: 1,
                cols: 2,
                data: vec![v, v],
            },
            bias: Some(vec![v]),
        };
        let s = stack_qkv(lin(2.0), lin(3.0), lin(4.0), 0.5);
        assert_eq!((s.weight.rows, s.weight.cols), (3, 2));
        assert_eq!(s.weight.data, vec![1., 1., 3., 3., 4., 4.]);
        assert_eq!(s.bias, Some(vec![1., 3., 4.]));
    }
}
