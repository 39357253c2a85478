//! The f16 conversion path, exercised on any CPU: `Plan::load` refuses f16 where tract has
//! no fp16 kernels, but the conversion itself (tract's float precision translator, f16 input
//! and output casts) runs everywhere, slowly, and must agree with fp32.

use tract_onnx::prelude::DatumType;

use super::{cpu_features, tiny_plan as plan, tract_products, Precision};
use crate::test_support::onnx_model::TinyModel;
use crate::test_support::rng::Rng;

#[test]
fn f16_plan_agrees_with_fp32_to_half_precision() {
    let model = TinyModel::random(12, 2, 5, 4);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("visual.onnx");
    std::fs::write(&file, model.fp32_onnx(Some("N"))).unwrap();
    let images = Rng::new(5).vec(2 * 3 * 12 * 12, -2.0, 2.0);
    let full = plan(&file, Precision::Fp32, &model).run(&images).unwrap();
    let half = plan(&file, Precision::F16, &model).run(&images).unwrap();
    assert_eq!(full.len(), half.len());
    for (h, f) in half.iter().zip(&full) {
        assert!(
            (h - f).abs() <= 1e-2 * f.abs().max(1.0),
            "f16 {h} vs fp32 {f}"
        );
    }
    assert_ne!(
        half, full,
        "the f16 plan must actually round to half precision"
    );
}

/// Where the engine offers f16 (a CPU with FEAT_FP16, told to tract by `cpu_features`: the
/// Cortex-A76 of the aarch64 leg of CI), the f16 plan's products run on tract's fp16 kernels,
/// not on an emulation. (Elsewhere there is nothing to check.)
#[test]
fn where_f16_is_offered_its_products_run_on_tracts_fp16_kernels() {
    let model = TinyModel::random(12, 2, 5, 4);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("visual.onnx");
    std::fs::write(&file, model.fp32_onnx(Some("N"))).unwrap();
    let half = plan(&file, Precision::F16, &model);
    if !cpu_features::features().fp16 {
        return;
    }
    let products: Vec<_> = tract_products(half.runnable.model(), DatumType::F16).collect();
    assert!(!products.is_empty(), "no f16 product in the f16 plan");
    for (node, kernel) in products {
        assert!(kernel.starts_with("arm64fp16"), "{node}: {kernel}");
    }
}
