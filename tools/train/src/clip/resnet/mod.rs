//! CLIP's ModifiedResNet image tower (the RN50 family), with OpenAI's tensor names, and the two
//! token streams XR-VLM reads from it (`xrvlm-method.md` §2.2):
//! - `X`: the last stage's map, one token per location `(B, HW, 32·width)`;
//! - `F`: each location through the attention pool's `v_proj` and `c_proj` `(B, HW, D)`.
//!
//! Reference: OpenAI CLIP `clip/model.py` (`ModifiedResNet`, `Bottleneck`, `AttentionPool2d`):
//! a three-convolution stem with an average pool, four stages of bottlenecks whose stride is an
//! average pool after the 3×3 convolution (anti-aliased), and an attention pool instead of a
//! global average pool. Every convolution is bias-free and followed by a batch norm.
//!
//! The convolutions run through [`conv::conv2d`] and the batch norms through
//! [`batch_norm::BatchNorm2d`], both written for CPU training speed; the same tower code trains
//! (`train = true`: batch statistics, running statistics updated) and runs frozen.

pub mod attention_pool;
pub mod batch_norm;
pub mod config;
pub mod conv;

use candle_core::{Result, Tensor};

use self::attention_pool::AttentionPool;
use self::batch_norm::BatchNorm2d;
pub use self::config::ResNetConfig;
use self::config::EXPANSION;
use super::vision::VisionStreams;
use super::weights::Weights;
use super::ClipError;

/// Largest absolute element of a tensor, for the tests' tolerances.
#[cfg(test)]
pub(crate) fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .and_then(|a| a.flatten_all())
        .and_then(|a| a.max(0))
        .and_then(|a| a.to_scalar::<f32>())
        .expect("an f32 tensor")
}

/// The prefix of every image-tower tensor in OpenAI's and open_clip's state dicts.
pub const PREFIX: &str = "visual";

/// A bias-free convolution and the batch norm after it.
#[derive(Clone)]
struct ConvBn {
    weight: Tensor,
    stride: usize,
    padding: usize,
    bn: BatchNorm2d,
}

impl ConvBn {
    fn load(
        w: &Weights,
        conv: &str,
        bn: &str,
        shape: [usize; 4],
        stride: usize,
    ) -> std::result::Result<Self, ClipError> {
        let get = |n: &str| w.get(&format!("{bn}.{n}"), &[shape[0]]);
        Ok(Self {
            weight: w.get(&format!("{conv}.weight"), &shape)?,
            stride,
            padding: shape[2] / 2,
            bn: BatchNorm2d::new(
                get("weight")?,
                get("bias")?,
                get("running_mean")?,
                get("running_var")?,
            ),
        })
    }

    /// The eval-mode batch norm folded into the convolution.
    fn folded(&self, relu: bool) -> Result<FoldedConv> {
        let (scale, shift) = self.bn.eval_affine()?;
        let out = scale.dim(0)?;
        Ok(FoldedConv {
            weight: self.weight.broadcast_mul(&scale.reshape((out, 1, 1, 1))?)?,
            bias: shift,
            stride: self.stride,
            padding: self.padding,
            relu,
        })
    }

    /// Convolution, batch norm, and the ReLU after them when `relu`.
    fn forward(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        let y = conv::conv2d(x, &self.weight, self.stride, self.padding)?;
        self.bn.forward(&y, train, relu)
    }
}

/// `Bottleneck`: 1×1 → 3×3 → (avg pool) → 1×1, plus a pooled 1×1 projection of the input when
/// the shape changes.
#[derive(Clone)]
struct Bottleneck {
    conv1: ConvBn,
    conv2: ConvBn,
    conv3: ConvBn,
    downsample: Option<ConvBn>,
    stride: usize,
}

impl Bottleneck {
    fn load(
        w: &Weights,
        prefix: &str,
        inplanes: usize,
        planes: usize,
        stride: usize,
    ) -> std::result::Result<Self, ClipError> {
        let cb = |i: usize, shape: [usize; 4]| {
            ConvBn::load(
                w,
                &format!("{prefix}.conv{i}"),
                &format!("{prefix}.bn{i}"),
                shape,
                1,
            )
        };
        let out = planes * EXPANSION;
        let downsample = if stride > 1 || inplanes != out {
            Some(ConvBn::load(
                w,
                &format!("{prefix}.downsample.1"),
                &format!("{prefix}.downsample.2"),
                [out, inplanes, 1, 1],
                1,
            )?)
        } else {
            None
        };
        Ok(Self {
            conv1: cb(1, [planes, inplanes, 1, 1])?,
            conv2: cb(2, [planes, planes, 3, 3])?,
            conv3: cb(3, [out, planes, 1, 1])?,
            downsample,
            stride,
        })
    }

    fn pool(&self, x: Tensor) -> Result<Tensor> {
        if self.stride > 1 {
            x.avg_pool2d(self.stride)
        } else {
            Ok(x)
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.conv1.forward(x, train, true)?;
        let h = self.pool(self.conv2.forward(&h, train, true)?)?;
        let h = self.conv3.forward(&h, train, false)?;
        let identity = match &self.downsample {
            Some(d) => d.forward(&self.pool(x.clone())?, train, false)?,
            None => x.clone(),
        };
        (h + identity)?.relu()
    }
}

/// A convolution with its eval-mode batch norm folded in, `conv(x, weight) + bias`, then a
/// ReLU when `relu`: what the exported graph computes, exact up to f32 rounding.
#[derive(Clone, Debug)]
pub struct FoldedConv {
    /// `(out, in, k, k)`.
    pub weight: Tensor,
    /// `(out)`.
    pub bias: Tensor,
    /// Convolution stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
    /// Whether a ReLU follows.
    pub relu: bool,
}

/// A bottleneck in folded form: `relu(conv3(pool(conv2(conv1 x))) + shortcut)`, where the
/// shortcut is `downsample(pool(x))` or `x`, and `pool` an average pool of side `stride`.
#[derive(Clone, Debug)]
pub struct FoldedBottleneck {
    /// 1×1, with ReLU.
    pub conv1: FoldedConv,
    /// 3×3, with ReLU.
    pub conv2: FoldedConv,
    /// 1×1, no ReLU (it follows the sum).
    pub conv3: FoldedConv,
    /// 1×1 projection of the shortcut, no ReLU.
    pub downsample: Option<FoldedConv>,
    /// Average-pool side after `conv2` and on the shortcut (1: none).
    pub stride: usize,
}

/// The tower in eval mode as the export writes it: the stem (three convolutions, then a 2×2
/// average pool), the bottlenecks, and the value path of §2.2 as one layer
/// ([`AttentionPool::folded_values`]).
#[derive(Clone, Debug)]
pub struct FoldedResNet {
    /// The stem's convolutions.
    pub stem: Vec<FoldedConv>,
    /// Every bottleneck, in order.
    pub blocks: Vec<FoldedBottleneck>,
    /// `F = X · values_weightᵀ + values_bias`: `(D, C)`.
    pub values_weight: Tensor,
    /// `(HW, D)`.
    pub values_bias: Tensor,
}

/// The frozen or trainable ModifiedResNet.
#[derive(Clone)]
pub struct ResNetTower {
    config: ResNetConfig,
    stem: [ConvBn; 3],
    stages: Vec<Vec<Bottleneck>>,
    pool: AttentionPool,
}

/// The names of one bottleneck's convolutions and batch norms, `(conv, bn, shape)`, in
/// `visual.layer{stage}.{block}`; shared with the initialiser so that the two cannot disagree.
pub fn bottleneck_tensors(
    stage: usize,
    block: usize,
    inplanes: usize,
    planes: usize,
    stride: usize,
) -> Vec<(String, String, [usize; 4])> {
    let p = format!("{PREFIX}.layer{}.{block}", stage + 1);
    let out = planes * EXPANSION;
    let mut t = vec![
        (
            format!("{p}.conv1"),
            format!("{p}.bn1"),
            [planes, inplanes, 1, 1],
        ),
        (
            format!("{p}.conv2"),
            format!("{p}.bn2"),
            [planes, planes, 3, 3],
        ),
        (
            format!("{p}.conv3"),
            format!("{p}.bn3"),
            [out, planes, 1, 1],
        ),
    ];
    if stride > 1 || inplanes != out {
        t.push((
            format!("{p}.downsample.1"),
            format!("{p}.downsample.2"),
            [out, inplanes, 1, 1],
        ));
    }
    t
}

/// `(stage, block, inplanes, planes, stride)` of every bottleneck, in order.
pub fn bottlenecks(c: &ResNetConfig) -> Vec<(usize, usize, usize, usize, usize)> {
    let mut inplanes = c.width;
    let mut out = Vec::new();
    for (stage, &blocks) in c.layers.iter().enumerate() {
        let planes = c.width << stage;
        for block in 0..blocks {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            out.push((stage, block, inplanes, planes, stride));
            inplanes = planes * EXPANSION;
        }
    }
    out
}

/// The stem's `(conv, bn, shape, stride)`.
pub fn stem_tensors(c: &ResNetConfig) -> [(String, String, [usize; 4], usize); 3] {
    let half = c.width / 2;
    let t = |i: usize, shape, stride| {
        (
            format!("{PREFIX}.conv{i}"),
            format!("{PREFIX}.bn{i}"),
            shape,
            stride,
        )
    };
    [
        t(1, [half, 3, 3, 3], 2),
        t(2, [half, half, 3, 3], 1),
        t(3, [c.width, half, 3, 3], 1),
    ]
}

impl ResNetTower {
    /// Loads `visual.*` (OpenAI names) for a tower of `config`.
    pub fn new(w: &Weights, config: &ResNetConfig) -> std::result::Result<Self, ClipError> {
        config.validate().map_err(ClipError::Input)?;
        let [s1, s2, s3] = stem_tensors(config);
        let stem = |(conv, bn, shape, stride): (String, String, [usize; 4], usize)| {
            ConvBn::load(w, &conv, &bn, shape, stride)
        };
        let stem = [stem(s1)?, stem(s2)?, stem(s3)?];
        let mut stages: Vec<Vec<Bottleneck>> = vec![Vec::new(); config.layers.len()];
        for (stage, block, inplanes, planes, stride) in bottlenecks(config) {
            let prefix = format!("{PREFIX}.layer{}.{block}", stage + 1);
            stages[stage].push(Bottleneck::load(w, &prefix, inplanes, planes, stride)?);
        }
        let pool = AttentionPool::load(
            w,
            &format!("{PREFIX}.attnpool"),
            config.tokens(),
            config.feature_channels(),
            config.heads,
            config.embed_dim,
        )?;
        Ok(Self {
            config: config.clone(),
            stem,
            stages,
            pool,
        })
    }

    /// The tower's configuration.
    pub fn config(&self) -> &ResNetConfig {
        &self.config
    }

    fn check_input(&self, pixels: &Tensor) -> std::result::Result<(), ClipError> {
        let s = self.config.image_size;
        match pixels.dims() {
            [_, 3, h, w] if *h == s && *w == s => Ok(()),
            dims => Err(ClipError::Input(format!(
                "pixel_values has shape {dims:?}, expected (N, 3, {s}, {s})"
            ))),
        }
    }

    /// The last stage's map `(B, 32·width, grid, grid)`; `train` uses batch statistics.
    pub fn feature_map(
        &self,
        pixels: &Tensor,
        train: bool,
    ) -> std::result::Result<Tensor, ClipError> {
        self.check_input(pixels)?;
        let mut x = pixels.clone();
        for conv in &self.stem {
            x = conv.forward(&x, train, true)?;
        }
        x = x.avg_pool2d(2)?;
        for block in self.stages.iter().flatten() {
            x = block.forward(&x, train)?;
        }
        Ok(x)
    }

    /// The pooled image feature `(B, D)`, not normalised (`encode_image`).
    pub fn pooled(&self, map: &Tensor) -> Result<Tensor> {
        self.pool.forward(map)
    }

    /// `encode_image` in evaluation mode.
    pub fn image_features(&self, pixels: &Tensor) -> std::result::Result<Tensor, ClipError> {
        let map = self.feature_map(pixels, false)?;
        Ok(self.pooled(&map)?)
    }

    /// The tower in eval mode with every batch norm folded into its convolution.
    pub fn folded(&self) -> Result<FoldedResNet> {
        let stem = self
            .stem
            .iter()
            .map(|c| c.folded(true))
            .collect::<Result<_>>()?;
        let blocks = self
            .stages
            .iter()
            .flatten()
            .map(|b| {
                Ok(FoldedBottleneck {
                    conv1: b.conv1.folded(true)?,
                    conv2: b.conv2.folded(true)?,
                    conv3: b.conv3.folded(false)?,
                    downsample: b.downsample.as_ref().map(|d| d.folded(false)).transpose()?,
                    stride: b.stride,
                })
            })
            .collect::<Result<_>>()?;
        let (values_weight, values_bias) = self.pool.folded_values()?;
        Ok(FoldedResNet {
            stem,
            blocks,
            values_weight,
            values_bias,
        })
    }

    /// Both token streams of §2.2, in evaluation mode.
    pub fn streams(&self, pixels: &Tensor) -> std::result::Result<VisionStreams, ClipError> {
        let map = self.feature_map(pixels, false)?;
        let (b, c, h, w) = map.dims4()?;
        let x = map.reshape((b, c, h * w))?.transpose(1, 2)?.contiguous()?;
        let (f, pooled) = self.pool.values_and_pooled(&map)?;
        Ok(VisionStreams { x, f, pooled })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pretrain::resnet_init::init_tower;
    use candle_core::{Device, D};

    /// The tower in training mode written with candle's own convolution and a composed batch
    /// norm: the reference the fast ops must match, gradients included.
    fn reference_map(t: &ResNetTower, pixels: &Tensor) -> Tensor {
        let conv_bn = |c: &ConvBn, x: &Tensor| {
            let y = x.conv2d(&c.weight, c.padding, c.stride, 1, 1).unwrap();
            let ch = y.dim(1).unwrap();
            let flat = y
                .transpose(0, 1)
                .unwrap()
                .contiguous()
                .unwrap()
                .reshape((ch, ()))
                .unwrap();
            let mean = flat.mean_keepdim(D::Minus1).unwrap();
            let var = flat
                .broadcast_sub(&mean)
                .unwrap()
                .sqr()
                .unwrap()
                .mean_keepdim(D::Minus1)
                .unwrap();
            let shape = (1, ch, 1, 1);
            let (w, b) = c.bn.affine();
            y.broadcast_sub(&mean.reshape(shape).unwrap())
                .unwrap()
                .broadcast_div(
                    &(var + batch_norm::EPS)
                        .unwrap()
                        .sqrt()
                        .unwrap()
                        .reshape(shape)
                        .unwrap(),
                )
                .unwrap()
                .broadcast_mul(&w.reshape(shape).unwrap())
                .unwrap()
                .broadcast_add(&b.reshape(shape).unwrap())
                .unwrap()
        };
        let mut x = pixels.clone();
        for c in &t.stem {
            x = conv_bn(c, &x).relu().unwrap();
        }
        x = x.avg_pool2d(2).unwrap();
        for block in t.stages.iter().flatten() {
            let h = conv_bn(&block.conv1, &x).relu().unwrap();
            let h = block
                .pool(conv_bn(&block.conv2, &h).relu().unwrap())
                .unwrap();
            let h = conv_bn(&block.conv3, &h);
            let identity = match &block.downsample {
                Some(d) => conv_bn(d, &block.pool(x.clone()).unwrap()),
                None => x.clone(),
            };
            x = (h + identity).unwrap().relu().unwrap();
        }
        x
    }

    #[test]
    fn training_forward_and_gradients_match_candle_reference() {
        let config = ResNetConfig {
            image_size: 64,
            layers: [1, 2, 1, 1],
            width: 8,
            heads: 2,
            embed_dim: 8,
        };
        let dev = Device::Cpu;
        let params = init_tower(&config, 1, &dev).unwrap();
        for (name, var) in params.params.named() {
            if name.ends_with(".bn3.weight") {
                var.set(&var.ones_like().unwrap()).unwrap();
            }
        }
        let tower = ResNetTower::new(&params.weights(std::path::Path::new("t")), &config).unwrap();
        let pixels = Tensor::randn(0f32, 1.0, (4, 3, 64, 64), &dev).unwrap();
        let ours = tower.feature_map(&pixels, true).unwrap();
        let theirs = reference_map(&tower, &pixels);
        let diff = |a: &Tensor, b: &Tensor| max_abs(&(a - b).unwrap()) / max_abs(b).max(1e-6);
        assert!(
            diff(&ours, &theirs) < 1e-4,
            "forward differs: {}",
            diff(&ours, &theirs)
        );
        let w = Tensor::randn(0f32, 1.0, ours.shape(), &dev).unwrap();
        let ga = (&ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (&theirs * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (name, var) in params.params.named() {
            if name.contains("attnpool") {
                continue;
            }
            let (a, b) = (ga.get(&var).unwrap(), gb.get(&var).unwrap());
            // Relative to the gradient's own largest value: the early batch norms' bias
            // gradients are sums of many nearly cancelling f32 terms (the inputs are unseeded
            // random draws; 4.6e-3 was seen once on bn1.bias), while a wrong gradient is off
            // by its own size.
            assert!(
                diff(a, b) < 1e-2,
                "{name}: gradients differ by {}",
                diff(a, b)
            );
        }
    }
}
