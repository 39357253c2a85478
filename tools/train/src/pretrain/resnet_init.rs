//! The trainable parameters of a ModifiedResNet image tower, named as OpenAI's and open_clip's
//! state dicts name them (`visual.conv1.weight`, `visual.layer1.0.bn3.running_var`,
//! `visual.attnpool.q_proj.weight`, …), initialised as OpenAI's `CLIP.initialize_parameters`
//! does for ResNets:
//!
//! | tensor | init |
//! |---|---|
//! | convolutions | He normal, N(0, 2 / fan_in) (torchvision's ResNet recipe) |
//! | batch norms | weight 1, bias 0, running mean 0, running var 1; `bn3` of every bottleneck weight 0 (OpenAI: "zero-init the last BN in each residual branch") |
//! | attention pool q/k/v/c weights | N(0, width⁻¹); biases 0 |
//! | positional embedding | N(0, width⁻¹) |
//!
//! Running statistics are variables too (in a second store), so that the tower's training-mode
//! batch norms can update them in place; they never receive a gradient.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Result, Tensor};

use crate::clip::resnet::{bottleneck_tensors, bottlenecks, stem_tensors, ResNetConfig, PREFIX};
use crate::clip::Weights;
use crate::model::params::ParamStore;

/// The tower's parameters (trained) and batch-norm running statistics (updated, not trained).
pub struct TowerParams {
    /// Weights and biases.
    pub params: ParamStore,
    /// `running_mean` / `running_var` of every batch norm.
    pub buffers: ParamStore,
}

impl TowerParams {
    /// Every tensor (parameters, then running statistics) by its OpenAI name: what the
    /// checkpoint holds.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        self.params
            .named()
            .into_iter()
            .chain(self.buffers.named())
            .map(|(n, v)| (n, v.as_tensor().clone()))
            .collect()
    }

    /// The same tensors as [`Weights`], for [`crate::clip::resnet::ResNetTower::new`].
    pub fn weights(&self, path: &Path) -> Weights {
        let tensors: HashMap<_, _> = self.named_tensors().into_iter().collect();
        Weights::from_tensors(path, tensors)
    }
}

fn conv_bn(
    p: &mut ParamStore,
    b: &mut ParamStore,
    conv: &str,
    bn: &str,
    shape: [usize; 4],
    zero_gamma: bool,
) -> Result<()> {
    let fan_in = shape[1] * shape[2] * shape[3];
    p.normal(
        &format!("{conv}.weight"),
        &shape[..],
        (2.0 / fan_in as f32).sqrt(),
    )?;
    let gamma = if zero_gamma { 0.0 } else { 1.0 };
    p.constant(&format!("{bn}.weight"), shape[0], gamma)?;
    p.constant(&format!("{bn}.bias"), shape[0], 0.0)?;
    b.constant(&format!("{bn}.running_mean"), shape[0], 0.0)?;
    b.constant(&format!("{bn}.running_var"), shape[0], 1.0)?;
    Ok(())
}

/// Creates every tensor of a tower of `config`, drawn from `seed`.
pub fn init_tower(config: &ResNetConfig, seed: u64, device: &Device) -> Result<TowerParams> {
    let mut p = ParamStore::new(seed, device);
    let mut b = ParamStore::new(seed, device);
    for (conv, bn, shape, _) in stem_tensors(config) {
        conv_bn(&mut p, &mut b, &conv, &bn, shape, false)?;
    }
    for (stage, block, inplanes, planes, stride) in bottlenecks(config) {
        for (conv, bn, shape) in bottleneck_tensors(stage, block, inplanes, planes, stride) {
            conv_bn(&mut p, &mut b, &conv, &bn, shape, bn.ends_with(".bn3"))?;
        }
    }
    let c = config.feature_channels();
    let std = (c as f32).powf(-0.5);
    let pool = format!("{PREFIX}.attnpool");
    p.normal(
        &format!("{pool}.positional_embedding"),
        (config.tokens() + 1, c),
        std,
    )?;
    for (name, out) in [("q", c), ("k", c), ("v", c), ("c", config.embed_dim)] {
        p.normal(&format!("{pool}.{name}_proj.weight"), (out, c), std)?;
        p.constant(&format!("{pool}.{name}_proj.bias"), out, 0.0)?;
    }
    Ok(TowerParams {
        params: p,
        buffers: b,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::resnet::ResNetTower;
    use candle_core::Tensor;

    fn tiny() -> ResNetConfig {
        ResNetConfig {
            image_size: 32,
            layers: [1, 1, 1, 1],
            width: 4,
            heads: 2,
            embed_dim: 8,
        }
    }

    #[test]
    fn every_initialised_tensor_is_loaded_and_the_tower_runs() {
        let dev = Device::Cpu;
        let t = init_tower(&tiny(), 0, &dev).unwrap();
        let w = t.weights(Path::new("init"));
        let tower = ResNetTower::new(&w, &tiny()).unwrap();
        let px = Tensor::randn(0f32, 1.0, (2, 3, 32, 32), &dev).unwrap();
        assert_eq!(tower.image_features(&px).unwrap().dims(), &[2, 8]);
        let s = tower.streams(&px).unwrap();
        assert_eq!(s.x.dims(), &[2, 1, 128]);
        assert_eq!(s.f.dims(), &[2, 1, 8]);
        // A tensor the tower does not load would be dead weight in the checkpoint.
        let names: Vec<String> = w.iter().map(|(n, _)| n.clone()).collect();
        assert!(names.iter().all(|n| n.starts_with("visual.")));
        assert!(names.contains(&"visual.layer4.0.downsample.2.running_var".to_string()));
    }
}
