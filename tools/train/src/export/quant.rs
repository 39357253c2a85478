//! The int8 arithmetic of the quantized graph, as plain functions (`xrvlm-method.md` §11,
//! `performance.md`):
//! - weights: per output channel, symmetric, `w ≈ q · scale[n]` with `q ∈ [−127, 127]`, done
//!   once at export;
//! - activations: one static symmetric scale per quantized input, `x ≈ (u − 128) · s` with `u`
//!   an u8, i.e. `round(x / s)` saturated to `[−128, 127]` (ONNX `QuantizeLinear` rounds half to
//!   even and saturates).
//!
//! No zero point on the weights and a constant activation zero point keep tract on its fast
//! path: the correction term it needs (128 · Σ_k q[k, n]) is a constant of the weights.

use super::source::{LinearWeights, Matrix};

/// Largest int8 magnitude used; −128 is left out so that the weight range is symmetric.
pub const QMAX: f32 = 127.0;
/// The u8 zero point that centres activations: `u = round(x / s) + 128`.
pub const ACT_ZERO_POINT: u8 = 128;

/// A weight matrix quantized per output channel, laid out as `MatMulInteger`'s right operand.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedWeight {
    /// Input features K.
    pub inputs: usize,
    /// Output features (channels).
    pub outputs: usize,
    /// `(K, outputs)` row-major int8 values.
    pub values: Vec<i8>,
    /// `(outputs)` scales: `w[n, k] ≈ values[k, n] · scales[n]`.
    pub scales: Vec<f32>,
}

impl QuantizedWeight {
    /// Quantizes the `(out, in)` weight of `layer` per output channel.
    pub fn of(layer: &LinearWeights) -> Self {
        let w = &layer.weight;
        let scales: Vec<f32> = (0..w.rows).map(|n| weight_scale(w.row(n))).collect();
        let mut values = vec![0i8; w.rows * w.cols];
        for (n, &scale) in scales.iter().enumerate() {
            for (k, &x) in w.row(n).iter().enumerate() {
                values[k * w.rows + n] = quantize(x, scale, -QMAX, QMAX);
            }
        }
        Self {
            inputs: w.cols,
            outputs: w.rows,
            values,
            scales,
        }
    }

    /// The weights the int8 values stand for, `(K, outputs)`.
    pub fn dequantized(&self) -> Matrix {
        let data = self
            .values
            .iter()
            .enumerate()
            .map(|(i, &q)| q as f32 * self.scales[i % self.outputs])
            .collect();
        Matrix {
            rows: self.inputs,
            cols: self.outputs,
            data,
        }
    }

    /// The int8 values `(outputs, K)` row-major: a convolution kernel's layout.
    pub fn by_output(&self) -> Vec<i8> {
        let mut out = vec![0i8; self.values.len()];
        for k in 0..self.inputs {
            for n in 0..self.outputs {
                out[n * self.inputs + k] = self.values[k * self.outputs + n];
            }
        }
        out
    }
}

/// The scale of one output channel: its largest magnitude maps to ±127. An all-zero channel
/// gets scale 1 (any scale represents it exactly).
pub fn weight_scale(row: &[f32]) -> f32 {
    let max = row.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max > 0.0 && max.is_finite() {
        max / QMAX
    } else {
        1.0
    }
}

/// The static scale of an activation whose calibrated range is `±range`.
pub fn activation_scale(range: f32) -> f32 {
    if range > 0.0 && range.is_finite() {
        range / QMAX
    } else {
        1.0
    }
}

fn quantize(x: f32, scale: f32, lo: f32, hi: f32) -> i8 {
    (x / scale).round_ties_even().clamp(lo, hi) as i8
}

/// What an activation becomes after `QuantizeLinear` (u8, zero point 128) and back:
/// `(clamp(round(x / s), −128, 127)) · s`.
pub fn fake_quantize(x: f32, scale: f32) -> f32 {
    quantize(x, scale, -128.0, 127.0) as f32 * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_round_trip_within_half_a_step_per_channel() {
        let layer = LinearWeights {
            weight: Matrix {
                rows: 2,
                cols: 3,
                data: vec![0.4, -1.0, 0.25, 0.0, 0.0, 0.0],
            },
            bias: None,
        };
        let q = QuantizedWeight::of(&layer);
        assert_eq!(q.scales, vec![1.0 / 127.0, 1.0]);
        // (K, out) layout: column 0 is channel 0.
        assert_eq!(q.values, vec![51, 0, -127, 0, 32, 0]);
        let d = q.dequantized();
        for (k, n) in [(0, 0), (1, 0), (2, 0)] {
            let err = (d.data[k * 2 + n] - layer.weight.data[n * 3 + k]).abs();
            assert!(err <= 0.5 / 127.0 + 1e-7, "{err}");
        }
    }

    #[test]
    fn activations_saturate_and_round_half_to_even() {
        let s = activation_scale(127.0);
        assert_eq!(s, 1.0);
        assert_eq!(fake_quantize(2.5, s), 2.0);
        assert_eq!(fake_quantize(3.5, s), 4.0);
        assert_eq!(fake_quantize(500.0, s), 127.0);
        assert_eq!(fake_quantize(-500.0, s), -128.0);
        assert_eq!(activation_scale(0.0), 1.0);
        assert_eq!(activation_scale(f32::NAN), 1.0);
    }
}
