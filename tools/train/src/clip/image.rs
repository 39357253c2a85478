//! The image tower of a CLIP, whichever family the checkpoint holds: a ViT (Hugging Face
//! layout, [`super::vision`]) or a ModifiedResNet (open_clip layout, [`super::resnet`]). Both give
//! XR-VLM the same two token streams and the same pooled feature (`xrvlm-method.md` §2.1, §2.2).

use candle_core::Tensor;

use super::resnet::ResNetTower;
use super::vision::{VisionStreams, VisionTower};
use super::ClipError;

/// A frozen image tower.
#[derive(Clone)]
pub enum ImageTower {
    /// A vision transformer.
    Vit(VisionTower),
    /// CLIP's ModifiedResNet.
    ResNet(ResNetTower),
}

impl ImageTower {
    /// Input side in pixels.
    pub fn image_size(&self) -> usize {
        match self {
            Self::Vit(v) => v.config().image_size,
            Self::ResNet(r) => r.config().image_size,
        }
    }

    /// `get_image_features` / `encode_image`: `(N, D)`, not normalised.
    pub fn image_features(&self, pixels: &Tensor) -> Result<Tensor, ClipError> {
        match self {
            Self::Vit(v) => v.image_features(pixels),
            Self::ResNet(r) => r.image_features(pixels),
        }
    }

    /// Both token streams and the pooled feature.
    pub fn streams(&self, pixels: &Tensor) -> Result<VisionStreams, ClipError> {
        match self {
            Self::Vit(v) => v.streams(pixels),
            Self::ResNet(r) => r.streams(pixels),
        }
    }

    /// The ViT, when the tower is one (the ONNX export of the image model is ViT-only so far).
    pub fn vit(&self) -> Option<&VisionTower> {
        match self {
            Self::Vit(v) => Some(v),
            Self::ResNet(_) => None,
        }
    }
}
