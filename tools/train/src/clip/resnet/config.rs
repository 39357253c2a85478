//! The shape of a ModifiedResNet image tower, as open_clip's model configs write it
//! (`vision_cfg` of `RN50.json`: `image_size`, `layers`, `width`, with `embed_dim` beside it), plus
//! the attention pool's head count, which OpenAI derives as `width · 32 / 64`.

use serde::{Deserialize, Serialize};

/// Total downsampling of the tower: stride-2 stem, stem pool, and layers 2–4.
pub const DOWNSAMPLING: usize = 32;
/// Output channels of a bottleneck per input plane (`Bottleneck.expansion`).
pub const EXPANSION: usize = 4;

/// A ModifiedResNet's sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResNetConfig {
    /// Input side in pixels; a multiple of 32.
    pub image_size: usize,
    /// Bottlenecks per stage (RN50: `[3, 4, 6, 3]`).
    pub layers: [usize; 4],
    /// Stem width (RN50: 64); stage `i` has `width · 2ⁱ` planes and `4 · width · 2ⁱ` outputs.
    pub width: usize,
    /// Attention-pool heads (RN50: 32).
    pub heads: usize,
    /// Joint embedding size, the attention pool's output (RN50: 1024).
    pub embed_dim: usize,
}

impl ResNetConfig {
    /// Channels of the last stage's map, the attention pool's width (RN50: 2048).
    pub fn feature_channels(&self) -> usize {
        self.width * 8 * EXPANSION
    }

    /// Side of the last stage's map (RN50 at 224: 7).
    pub fn grid(&self) -> usize {
        self.image_size / DOWNSAMPLING
    }

    /// Spatial tokens of the last map.
    pub fn tokens(&self) -> usize {
        self.grid() * self.grid()
    }

    /// Checks the sizes; the message names the field and what is expected.
    pub fn validate(&self) -> Result<(), String> {
        if self.image_size == 0 || !self.image_size.is_multiple_of(DOWNSAMPLING) {
            return Err(format!(
                "image_size {} must be a positive multiple of {DOWNSAMPLING}",
                self.image_size
            ));
        }
        if self.width < 2 || !self.width.is_multiple_of(2) {
            return Err(format!("width {} must be even and at least 2", self.width));
        }
        if self.layers.contains(&0) {
            return Err(format!(
                "layers {:?}: every stage needs a bottleneck",
                self.layers
            ));
        }
        if self.heads == 0 || !self.feature_channels().is_multiple_of(self.heads) {
            return Err(format!(
                "heads {} must divide the attention pool's width {}",
                self.heads,
                self.feature_channels()
            ));
        }
        if self.embed_dim == 0 {
            return Err("embed_dim must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rn50_sizes_and_validation() {
        let rn50 = ResNetConfig {
            image_size: 224,
            layers: [3, 4, 6, 3],
            width: 64,
            heads: 32,
            embed_dim: 1024,
        };
        assert_eq!(rn50.feature_channels(), 2048);
        assert_eq!(rn50.grid(), 7);
        assert!(rn50.validate().is_ok());
        let bad = ResNetConfig {
            image_size: 100,
            ..rn50.clone()
        };
        assert!(bad.validate().unwrap_err().contains("image_size 100"));
        let bad = ResNetConfig { heads: 3, ..rn50 };
        assert!(bad.validate().unwrap_err().contains("heads 3"));
    }
}
