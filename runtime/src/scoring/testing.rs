//! Test support: random CRM weights and the obviously-correct loop implementation of §5.1.
//! The reference spells every index out on purpose, hence the lint exception.
#![allow(clippy::needless_range_loop)]

use super::CrmWeights;

pub(crate) use crate::test_support::rng::Rng;
pub(crate) use crate::test_support::weights::random_weights;

fn elu(x: f64) -> f64 {
    if x > 0.0 {
        x
    } else {
        x.exp() - 1.0
    }
}

/// ε applied to an already normalised vector, written with explicit indices.
fn epsilon_loop(w: &CrmWeights, text_side: bool, x: &[f64]) -> Vec<f64> {
    let e = if text_side { w.eps_t() } else { w.eps_v() };
    let (d, d2) = (w.dims().embed(), w.dims().crm());
    let mut out = vec![0.0; d2];
    for (o, out_o) in out.iter_mut().enumerate() {
        let mut acc = e.proj_bias[o] as f64;
        for i in 0..d {
            let bn = x[i] * e.bn_in.scale[i] as f64 + e.bn_in.shift[i] as f64;
            acc += e.proj_weight[o * d + i] as f64 * bn;
        }
        *out_o = elu(acc * e.bn_out.scale[o] as f64 + e.bn_out.shift[o] as f64);
    }
    out
}

fn normalized(x: &[f32], s: f32) -> Vec<f64> {
    let norm: f64 = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
    x.iter()
        .map(|&v| s as f64 * v as f64 / norm.max(1e-6))
        .collect()
}

/// Logits of one image (parts (M, D)), every index spelled out.
pub(crate) fn score_loop(w: &CrmWeights, parts: &[f32]) -> Vec<f64> {
    let dims = w.dims();
    let (c_n, m_n, p_n, d, h_n) = (
        dims.classes(),
        dims.parts(),
        dims.prompts(),
        dims.embed(),
        dims.hidden(),
    );
    let s = w.feature_scale();
    let v: Vec<Vec<f64>> = (0..m_n)
        .map(|m| epsilon_loop(w, false, &normalized(&parts[m * d..(m + 1) * d], s)))
        .collect();
    let t: Vec<Vec<f64>> = (0..p_n * c_n)
        .map(|pc| {
            epsilon_loop(
                w,
                true,
                &normalized(&w.prompt_features()[pc * d..(pc + 1) * d], s),
            )
        })
        .collect();
    let mut r = vec![0.0; p_n * m_n * c_n];
    for p in 0..p_n {
        for m in 0..m_n {
            for c in 0..c_n {
                let idx = p * m_n * c_n + m * c_n + c;
                let dotp: f64 = v[m].iter().zip(&t[p * c_n + c]).map(|(a, b)| a * b).sum();
                r[idx] = dotp * w.bn_r().scale[idx] as f64 + w.bn_r().shift[idx] as f64;
            }
        }
    }
    let mut hidden = vec![0.0; h_n];
    for (j, h) in hidden.iter_mut().enumerate() {
        let mut acc = w.fc1_bias()[j] as f64;
        for (i, ri) in r.iter().enumerate() {
            acc += w.fc1_weight()[j * r.len() + i] as f64 * ri;
        }
        *h = elu(acc) * w.bn_h().scale[j] as f64 + w.bn_h().shift[j] as f64;
    }
    (0..c_n)
        .map(|c| {
            (0..h_n)
                .map(|j| w.fc2_weight()[c * h_n + j] as f64 * hidden[j])
                .sum()
        })
        .collect()
}
