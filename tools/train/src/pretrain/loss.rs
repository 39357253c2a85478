//! CLIP's symmetric contrastive loss (InfoNCE), written with differentiable primitives only:
//!
//! ```text
//! logits = exp(logit_scale) · normalize(image) · normalize(text)ᵀ          (N, N)
//! loss   = ½ · ( CE(logits, targets) + CE(logitsᵀ, targets) )
//! ```
//!
//! (transformers `modeling_clip.py`, `clip_loss` / `contrastive_loss`.) The targets are the
//! diagonal, except that pairs whose captions are identical (two empty frames, two images with
//! the same short caption) are not made into negatives of each other: the target of a row is
//! spread evenly over every column with the same caption ([`soft_targets`]). Without duplicates
//! this is exactly CLIP's loss.

use candle_core::{Device, Result, Tensor, D};

/// Added under the square root of the L2 norm so that an all-zero feature does not divide by 0.
const NORM_EPS: f64 = 1e-12;

/// Each row divided by its L2 norm.
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = (x.sqr()?.sum_keepdim(D::Minus1)? + NORM_EPS)?.sqrt()?;
    x.broadcast_div(&norm)
}

/// `log_softmax` over the last axis; the row maximum is detached (softmax is shift-invariant,
/// so the gradient is unchanged).
pub fn log_softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    let log_sum = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&log_sum)
}

/// The `(N, N)` target matrix of a batch whose `i`-th caption is `keys[i]`: row `i` is spread
/// evenly over the columns whose key equals `keys[i]`. Symmetric, rows sum to 1.
pub fn soft_targets<K: PartialEq>(keys: &[K], device: &Device) -> Result<Tensor> {
    let n = keys.len();
    let mut t = vec![0f32; n * n];
    for (i, ki) in keys.iter().enumerate() {
        let same: Vec<usize> = (0..n).filter(|&j| keys[j] == *ki).collect();
        for &j in &same {
            t[i * n + j] = 1.0 / same.len() as f32;
        }
    }
    Tensor::from_vec(t, (n, n), device)
}

/// Cross-entropy of each row of `logits` against the target distribution, averaged over rows.
fn soft_cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let n = logits.dim(0)? as f64;
    log_softmax_last(logits)?.mul(targets)?.sum_all()? / -n
}

/// The symmetric contrastive loss of image features `(N, D)` and text features `(N, D)` (not
/// normalised), with the log inverse temperature `logit_scale` (a scalar) and `targets` from
/// [`soft_targets`]. Differentiable in all three inputs.
pub fn clip_loss(
    image: &Tensor,
    text: &Tensor,
    logit_scale: &Tensor,
    targets: &Tensor,
) -> Result<Tensor> {
    let logits = l2_normalize(image)?
        .matmul(&l2_normalize(text)?.t()?)?
        .broadcast_mul(&logit_scale.exp()?)?;
    let per_image = soft_cross_entropy(&logits, targets)?;
    let per_text = soft_cross_entropy(&logits.t()?.contiguous()?, targets)?;
    (per_image + per_text)? / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    fn t(rows: &[[f32; 2]]) -> Tensor {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_vec(flat, (rows.len(), 2), &Device::Cpu).unwrap()
    }

    fn value(loss: &Tensor) -> f32 {
        loss.to_scalar::<f32>().unwrap()
    }

    #[test]
    fn matched_pairs_give_the_hand_computed_loss() {
        // Features normalise to the identity; scale e^0 = 1; logits = I. Each row's CE is
        // -log(e / (e + 1)) = ln(1 + e^-1), the same both ways.
        let img = t(&[[2.0, 0.0], [0.0, 3.0]]);
        let txt = t(&[[1.0, 0.0], [0.0, 1.0]]);
        let scale = Tensor::new(0f32, &Device::Cpu).unwrap();
        let targets = soft_targets(&[1, 2], &Device::Cpu).unwrap();
        let loss = clip_loss(&img, &txt, &scale, &targets).unwrap();
        let want = (1.0 + (-1f32).exp()).ln();
        assert!((value(&loss) - want).abs() < 1e-6, "{}", value(&loss));
    }

    #[test]
    fn identical_captions_share_the_target() {
        // logits = [[1, 0], [1, 0]], targets all ½. Image rows: ln(1 + e) − ½ each;
        // text rows (logitsᵀ = [[1, 1], [0, 0]]): ln 2 each.
        let img = t(&[[1.0, 0.0], [1.0, 0.0]]);
        let txt = t(&[[1.0, 0.0], [0.0, 1.0]]);
        let scale = Tensor::new(0f32, &Device::Cpu).unwrap();
        let targets = soft_targets(&["same", "same"], &Device::Cpu).unwrap();
        assert_eq!(targets.to_vec2::<f32>().unwrap(), [[0.5, 0.5], [0.5, 0.5]]);
        let loss = value(&clip_loss(&img, &txt, &scale, &targets).unwrap());
        let want = ((1.0 + 1f32.exp()).ln() - 0.5 + 2f32.ln()) / 2.0;
        assert!((loss - want).abs() < 1e-6, "{loss} vs {want}");
    }

    #[test]
    fn gradient_reaches_features_and_temperature() {
        let img = Var::from_tensor(&t(&[[1.0, 0.2], [0.1, 1.0], [0.5, 0.5]])).unwrap();
        let txt = t(&[[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]]);
        let scale = Var::new(1f32, &Device::Cpu).unwrap();
        let targets = soft_targets(&[0, 1, 2], &Device::Cpu).unwrap();
        let loss = clip_loss(img.as_tensor(), &txt, scale.as_tensor(), &targets).unwrap();
        let grads = loss.backward().unwrap();
        let g_img = grads.get(img.as_tensor()).unwrap();
        let g_scale = grads
            .get(scale.as_tensor())
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            g_img
                .abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                > 0.0
        );
        // Matched pairs are the most similar ones: a sharper softmax lowers the loss.
        assert!(g_scale < 0.0, "{g_scale}");
    }
}
