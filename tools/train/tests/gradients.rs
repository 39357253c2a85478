//! Gradient flow through the frozen towers: every trainable tensor of XR-VLM (MPP contexts, UnA,
//! CRM) receives a finite, non-zero gradient — the contexts only *through* the text tower, so
//! this fails if any op on that path lacks a backward pass — and no tower weight receives one.

use crate::common;

use candle_core::{DType, Device, Tensor};
use xrvlm_train::clip::Clip;
use xrvlm_train::model::{HeadConfig, HeadKind, Model};

fn tiny_model(kind: HeadKind) -> Model {
    let clip = Clip::load(&common::tiny_clip(), &Device::Cpu).unwrap();
    let classes = common::CLASSES.iter().map(|s| s.to_string()).collect();
    let cfg = HeadConfig {
        kind,
        parts: 2,
        prompts: 2,
        context_len: 4,
        hidden: 16,
        ..HeadConfig::default()
    };
    Model::new(clip, classes, cfg, &Device::Cpu, DType::F32).unwrap()
}

fn batch() -> (Tensor, Tensor) {
    let pixels = Tensor::randn(0f32, 1.0, (4, 3, 32, 32), &Device::Cpu).unwrap();
    let labels = Tensor::new(&[0u32, 1, 2, 1], &Device::Cpu).unwrap();
    (pixels, labels)
}

#[test]
fn every_trainable_tensor_gets_a_gradient_and_the_towers_none() {
    for kind in [
        HeadKind::Xrvlm,
        HeadKind::Alignment,
        HeadKind::VisionOnly,
        HeadKind::Coop,
    ] {
        let model = tiny_model(kind);
        let (pixels, labels) = batch();
        let logits = model.logits(&pixels, true).unwrap();
        let loss = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
        let grads = loss.backward().unwrap();
        let trainable = model.trainable();
        assert!(!trainable.is_empty());
        for (name, var) in &trainable {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{kind:?}: {name} received no gradient"));
            let g = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(
                g.iter().all(|x| x.is_finite()),
                "{kind:?}: {name} has a non-finite gradient"
            );
            assert!(
                g.iter().any(|&x| x != 0.0),
                "{kind:?}: {name} has an all-zero gradient"
            );
        }
        if matches!(kind, HeadKind::Xrvlm | HeadKind::Alignment | HeadKind::Coop) {
            assert!(
                trainable.iter().any(|(n, _)| n == "prompt.ctx"),
                "{kind:?} learns contexts"
            );
        }
        // Frozen towers: no checkpoint tensor is in the gradient store.
        let mut frozen = 0;
        for (name, t) in model.clip.frozen_tensors() {
            assert!(
                grads.get(t).is_none(),
                "{kind:?}: frozen {name} received a gradient"
            );
            frozen += 1;
        }
        assert!(frozen > 40, "the tiny CLIP has {frozen} tensors");
    }
}

#[test]
fn zero_shot_has_nothing_to_train_and_predicts() {
    let model = tiny_model(HeadKind::ZeroShot);
    assert!(model.trainable().is_empty());
    let (pixels, _) = batch();
    let logits = model.logits(&pixels, false).unwrap();
    assert_eq!(logits.dims(), &[4, 3]);
}
