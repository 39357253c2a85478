//! Per-channel smoothing of a convolution's int8 input (SmoothQuant, Xiao et al. 2023, applied
//! to convolutions): channel `c` of the input is divided by a factor `s_c` before the
//! per-tensor quantization and the kernel's input channel `c` is multiplied by it, so the
//! product is unchanged in exact arithmetic while wide and narrow channels share the 256 levels
//! more evenly. The factor migrates part of a channel's range from the activation to the
//! weights: `s_c = a_c^α / w_c^(1−α)`, with `a_c` the channel's largest |x| on the calibration
//! images and `w_c` the largest |weight| reading it; α = 1 gives every channel the same range,
//! α = 0 every kernel column the same range.
//!
//! In the graph the division is `QuantizeLinear`'s per-channel step `Δ·s_c` (axis 1), and the
//! kernel is quantized per output channel after the multiplication, so nothing else changes:
//! `ConvInteger` still sees one u8 zero point, the rescale is still `Δ · s_w[o]`.

use std::sync::Arc;

use super::source::{ConvWeights, LinearWeights, Matrix};

/// The strengths tried for each convolution; the calibration keeps the one (or none) whose
/// int8 output is closest to the float output.
pub const DEFAULT_ALPHAS: [f32; 4] = [0.25, 0.5, 0.75, 1.0];

/// The factors of one convolution's input channels.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelSmoothing {
    /// The migration strength the factors were made with.
    pub alpha: f32,
    /// `s_c`, one per input channel, geometric mean 1.
    pub factors: Arc<[f32]>,
}

impl ChannelSmoothing {
    /// The factors for `conv` whose input channels reach `channel_max` (largest |x| each).
    /// A channel that never fires (a_c = 0) or that no weight reads (w_c = 0) contributes
    /// nothing; it gets the smallest (resp. largest) factor of the others so that it widens
    /// neither the activation's nor a kernel row's range.
    pub fn migrate(conv: &ConvWeights, channel_max: &[f32], alpha: f32) -> Self {
        let weight_max = column_max(conv);
        let raw: Vec<Option<f32>> = channel_max
            .iter()
            .zip(&weight_max)
            .map(|(&a, &w)| {
                (a > 0.0 && w > 0.0 && a.is_finite()).then(|| a.powf(alpha) / w.powf(1.0 - alpha))
            })
            .collect();
        let known: Vec<f32> = raw.iter().flatten().copied().collect();
        let lo = known.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = known.iter().copied().fold(0f32, f32::max);
        let mut factors: Vec<f32> = raw
            .iter()
            .zip(channel_max)
            .map(|(s, &a)| match s {
                Some(s) => *s,
                None if known.is_empty() => 1.0,
                None if a > 0.0 => hi,
                None => lo,
            })
            .collect();
        let log_mean = factors.iter().map(|s| s.ln()).sum::<f32>() / factors.len().max(1) as f32;
        let norm = (-log_mean).exp();
        for s in &mut factors {
            *s *= norm;
        }
        Self {
            alpha,
            factors: factors.into(),
        }
    }

    /// The kernel with input channel `c` multiplied by `s_c` (the bias is unchanged).
    pub fn smoothed(&self, conv: &ConvWeights) -> LinearWeights {
        let w = &conv.linear.weight;
        let taps = conv.kernel * conv.kernel;
        let data = w
            .data
            .iter()
            .enumerate()
            .map(|(i, &x)| x * self.factors[(i % w.cols) / taps])
            .collect();
        LinearWeights {
            weight: Matrix {
                rows: w.rows,
                cols: w.cols,
                data,
            },
            bias: conv.linear.bias.clone(),
        }
    }

    /// Largest |x / s_c| over the channels, given each channel's largest |x|.
    pub fn range(&self, channel_max: &[f32]) -> f32 {
        channel_max
            .iter()
            .zip(self.factors.iter())
            .fold(0f32, |m, (&a, &s)| m.max(a / s))
    }
}

/// The largest |weight| reading each input channel, over output channels and kernel taps
/// (the kernel's rows are flattened `(c, y, x)`).
fn column_max(conv: &ConvWeights) -> Vec<f32> {
    let w = &conv.linear.weight;
    let taps = conv.kernel * conv.kernel;
    let mut out = vec![0f32; conv.in_channels()];
    for r in 0..w.rows {
        for (i, &x) in w.row(r).iter().enumerate() {
            let c = i / taps;
            out[c] = out[c].max(x.abs());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1×1 convolution, 2 outputs × 3 input channels.
    fn conv() -> ConvWeights {
        ConvWeights {
            linear: LinearWeights {
                weight: Matrix {
                    rows: 2,
                    cols: 3,
                    data: vec![1.0, 0.5, -2.0, -4.0, 0.25, 0.0],
                },
                bias: Some(vec![0.1, 0.2]),
            },
            kernel: 1,
            stride: 1,
            padding: 0,
            relu: false,
        }
    }

    #[test]
    fn alpha_one_equalizes_the_channels_and_the_product_is_unchanged() {
        let c = conv();
        let s = ChannelSmoothing::migrate(&c, &[8.0, 2.0, 0.5], 1.0);
        let scaled: Vec<f32> = [8.0f32, 2.0, 0.5]
            .iter()
            .zip(s.factors.iter())
            .map(|(a, f)| a / f)
            .collect();
        for x in &scaled {
            assert!((x - scaled[0]).abs() < 1e-5, "{scaled:?}");
        }
        assert!((s.range(&[8.0, 2.0, 0.5]) - scaled[0]).abs() < 1e-5);
        // (x / s) · (W s) = x · W for any input.
        let w = s.smoothed(&c);
        let x = [0.3f32, -1.2, 2.0];
        for o in 0..2 {
            let plain: f32 = (0..3).map(|i| x[i] * c.linear.weight.row(o)[i]).sum();
            let smooth: f32 = (0..3)
                .map(|i| x[i] / s.factors[i] * w.weight.row(o)[i])
                .sum();
            assert!((plain - smooth).abs() < 1e-5, "{plain} {smooth}");
        }
        assert_eq!(w.bias, c.linear.bias);
    }

    #[test]
    fn alpha_zero_equalizes_the_kernel_columns() {
        let c = conv();
        let s = ChannelSmoothing::migrate(&c, &[8.0, 2.0, 0.5], 0.0);
        let w = s.smoothed(&c);
        let cols: Vec<f32> = (0..3)
            .map(|i| w.weight.row(0)[i].abs().max(w.weight.row(1)[i].abs()))
            .collect();
        for x in &cols {
            assert!((x - cols[0]).abs() < 1e-5, "{cols:?}");
        }
        let gm: f32 = s.factors.iter().product::<f32>().cbrt();
        assert!((gm - 1.0).abs() < 1e-5);
    }

    #[test]
    fn a_dead_channel_widens_nothing() {
        let c = conv();
        let s = ChannelSmoothing::migrate(&c, &[8.0, 0.0, 0.5], 0.5);
        let others = s.factors[0].min(s.factors[2]);
        assert_eq!(s.factors[1], others);
        assert!(s.factors.iter().all(|f| f.is_finite() && *f > 0.0));
    }
}
