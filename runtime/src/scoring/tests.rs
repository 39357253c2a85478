//! Both CRM forms against the loop reference of `testing.rs`, on random tensors.

use super::testing::{random_weights, score_loop, Rng};
use super::{CrmDims, FoldedCrm, Logits, UnfoldedCrm};

/// Largest |a − b| allowed between two computations of the same logits: fp32 rounding of
/// values of magnitude `scale`, with room for the few hundred roundings along the way.
fn fp32_tolerance(scale: f64) -> f64 {
    1e-5 * scale.max(1.0)
}

fn assert_close_to_reference(logits: &Logits, reference: &[Vec<f64>], what: &str) {
    for (i, (row, want)) in logits.rows().zip(reference).enumerate() {
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
        for (c, (&got, &want)) in row.iter().zip(want).enumerate() {
            let diff = (f64::from(got) - want).abs();
            assert!(
                diff <= fp32_tolerance(scale),
                "{what}: image {i} class {c}: {got} vs reference {want} (|Δ| = {diff:e})"
            );
        }
    }
}

/// (C, M, P, D, D', H) shapes with every size distinct, so a swapped index cannot pass.
const SHAPES: [[usize; 6]; 4] = [
    [5, 3, 2, 8, 6, 7],
    [7, 2, 4, 16, 5, 11],
    [1, 1, 1, 3, 2, 1],
    [12, 4, 3, 24, 10, 32],
];

fn dims(shape: [usize; 6]) -> CrmDims {
    let [c, m, p, d, d2, h] = shape;
    CrmDims::new(c, m, p, d, d2, h).unwrap()
}

#[test]
fn unfolded_and_folded_match_the_loop_reference_on_random_tensors() {
    for (seed, shape) in SHAPES.into_iter().enumerate() {
        let dims = dims(shape);
        let weights = random_weights(dims, seed as u64 + 1);
        let batch = 3;
        let parts = Rng::new(100 + seed as u64).vec(batch * dims.parts_len(), -2.0, 2.0);
        let reference: Vec<Vec<f64>> = parts
            .chunks(dims.parts_len())
            .map(|image| score_loop(&weights, image))
            .collect();
        let unfolded = UnfoldedCrm::new(weights.clone()).score(&parts).unwrap();
        let folded = FoldedCrm::new(&weights).score(&parts).unwrap();
        assert_eq!(
            (unfolded.batch(), unfolded.classes()),
            (batch, dims.classes())
        );
        assert_eq!((folded.batch(), folded.classes()), (batch, dims.classes()));
        assert_close_to_reference(&unfolded, &reference, &format!("unfolded {shape:?}"));
        assert_close_to_reference(&folded, &reference, &format!("folded {shape:?}"));
    }
}

#[test]
fn folded_agrees_with_unfolded_to_fp32_rounding() {
    let dims = dims([20, 4, 4, 32, 16, 48]);
    let weights = random_weights(dims, 7);
    let parts = Rng::new(8).vec(5 * dims.parts_len(), -1.0, 1.0);
    let unfolded = UnfoldedCrm::new(weights.clone()).score(&parts).unwrap();
    let folded = FoldedCrm::new(&weights).score(&parts).unwrap();
    let scale = unfolded
        .as_slice()
        .iter()
        .fold(0f64, |m, v| m.max(f64::from(v.abs())));
    let max_diff = unfolded
        .as_slice()
        .iter()
        .zip(folded.as_slice())
        .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
        .fold(0f64, f64::max);
    assert!(
        max_diff <= fp32_tolerance(scale),
        "max |folded − unfolded| = {max_diff:e} for logits up to {scale}"
    );
}

#[test]
fn parts_are_scale_invariant_through_the_normalisation() {
    let dims = dims([4, 2, 2, 6, 5, 3]);
    let crm = FoldedCrm::new(&random_weights(dims, 3));
    let parts = Rng::new(4).vec(dims.parts_len(), -1.0, 1.0);
    let scaled: Vec<f32> = parts.iter().map(|v| v * 8.0).collect();
    let a = crm.score(&parts).unwrap();
    let b = crm.score(&scaled).unwrap();
    for (x, y) in a.as_slice().iter().zip(b.as_slice()) {
        assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{x} vs {y}");
    }
}

#[test]
fn a_partial_image_is_a_shape_error() {
    let dims = dims([4, 2, 2, 6, 5, 3]);
    let crm = UnfoldedCrm::new(random_weights(dims, 5));
    let err = crm.score(&vec![0.5; dims.parts_len() + 1]).unwrap_err();
    assert_eq!((err.len, err.per_image), (dims.parts_len() + 1, 12));
    assert!(FoldedCrm::new(&random_weights(dims, 5))
        .score(&[1.0; 5])
        .is_err());
}

#[test]
fn a_zero_size_is_refused_by_name() {
    let err = CrmDims::new(3, 2, 0, 4, 4, 4).unwrap_err();
    assert_eq!(err.name, "prompts");
}
