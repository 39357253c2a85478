//! The few dense operations CRM scoring needs, on row-major slices.
//!
//! Intermediate values are f64: the head is tiny next to the image model, and accumulating
//! in f64 keeps the runtime's logits at least as close to exact as the training crate's.

use super::{Affine, Epsilon, NORM_EPS};

/// `scale · x / max(‖x‖, 1e-6)`.
pub(super) fn normalize_scaled(x: &[f32], scale: f32) -> Vec<f64> {
    let norm = x
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt();
    let factor = f64::from(scale) / norm.max(f64::from(NORM_EPS));
    x.iter().map(|&v| f64::from(v) * factor).collect()
}

/// `x·scale + shift`, in place.
pub(super) fn apply_affine(x: &mut [f64], bn: &Affine) {
    for ((v, &s), &b) in x.iter_mut().zip(&bn.scale).zip(&bn.shift) {
        *v = *v * f64::from(s) + f64::from(b);
    }
}

/// `W · x` for `W` of shape (rows, x.len()) row-major.
pub(super) fn matvec(w: &[f32], x: &[f64]) -> Vec<f64> {
    w.chunks_exact(x.len()).map(|row| dot(row, x)).collect()
}

/// `⟨a, b⟩` with f64 accumulation.
pub(super) fn dot(a: &[f32], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(&u, &v)| f64::from(u) * v).sum()
}

/// ELU with α = 1.
pub(super) fn elu(x: f64) -> f64 {
    if x > 0.0 {
        x
    } else {
        x.exp_m1()
    }
}

/// ε(x) = ELU(bn_out(proj(bn_in(x)))).
pub(super) fn epsilon(eps: &Epsilon, x: &[f64]) -> Vec<f64> {
    let mut h = x.to_vec();
    apply_affine(&mut h, &eps.bn_in);
    let mut y = matvec(&eps.proj_weight, &h);
    for (v, &b) in y.iter_mut().zip(&eps.proj_bias) {
        *v += f64::from(b);
    }
    apply_affine(&mut y, &eps.bn_out);
    y.iter_mut().for_each(|v| *v = elu(*v));
    y
}

/// T' = ε_t(T̂) for every prompt of every class: (P·C, D') row-major.
pub(super) fn text_relation_features(
    prompt_features: &[f32],
    embed: usize,
    scale: f32,
    eps_t: &Epsilon,
) -> Vec<f64> {
    prompt_features
        .chunks_exact(embed)
        .flat_map(|t| epsilon(eps_t, &normalize_scaled(t, scale)))
        .collect()
}
