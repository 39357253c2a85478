//! Our pass over the optimized int8 plan ([`super::quantize_pass`]) changes no output bit.

use std::num::NonZeroUsize;
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::{optimized, runnable, tract_optimized, PlanOptions, Precision};
use crate::test_support::onnx_model::TinyModel;

fn run(plan: &Arc<TypedRunnableModel>, image: &[f32], s: usize) -> Vec<f32> {
    let input = Tensor::from_shape(&[1, 3, s, s], image).unwrap();
    let mut out = plan.run(tvec!(input.into_tvalue())).unwrap();
    let parts = out.remove(0).into_tensor();
    let plain = parts.try_as_plain_ram().unwrap();
    plain.as_slice::<f32>().unwrap().to_vec()
}

#[test]
fn patched_int8_plan_is_bit_identical_to_tracts() {
    let model = TinyModel::random(12, 2, 5, 4);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("visual.int8.onnx");
    std::fs::write(&file, model.int8_onnx(9)).unwrap();
    let s = model.image_size;
    for threads in [1, 2] {
        let options = PlanOptions {
            precision: Precision::Int8,
            threads: NonZeroUsize::new(threads).unwrap(),
        };
        let patched = optimized(&file, s, options).unwrap();
        let unpatched = tract_optimized(&file, s, options).unwrap();
        let names: Vec<String> = patched
            .nodes()
            .iter()
            .map(|n| n.op().name().to_string())
            .collect();
        assert!(names.iter().any(|n| n == "Quantize(xrvlm)"), "{names:?}");
        assert!(
            !names.iter().any(|n| n.contains("QuantizeLinearU8")),
            "{names:?}"
        );

        // The graph quantizes each channel's mean with scale 1/64: channel values k/128 put
        // x/scale on ties from −150 to 150 and far into saturation on both sides.
        let (ours_plan, theirs_plan) = (
            runnable(patched, options).unwrap(),
            runnable(unpatched, options).unwrap(),
        );
        for k in (-300..=300).step_by(7) {
            let values = [k as f32 / 128.0, (k + 1) as f32 / 128.0, -(k as f32) / 96.0];
            let image: Vec<f32> = values
                .iter()
                .flat_map(|&v| std::iter::repeat_n(v, s * s))
                .collect();
            let ours = run(&ours_plan, &image, s);
            let theirs = run(&theirs_plan, &image, s);
            assert_eq!(
                ours.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                theirs.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "k {k}, {threads} thread(s)"
            );
        }
    }
}
