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

/// How one activation is quantized to u8: `q = clamp(round(x / scale) + zero_point, 0, 255)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActivationQuant {
    /// The step.
    pub scale: f32,
    /// The u8 standing for 0.
    pub zero_point: u8,
}

impl ActivationQuant {
    /// For an input whose calibrated range is `±range`: symmetric around 128. An input that
    /// is never negative (`non_negative`: a ReLU's output, or an average of one) gets zero point
    /// 0 and spends all 256 levels on `[0, range]`, half the step.
    pub fn for_range(range: f32, non_negative: bool) -> Self {
        let ok = range > 0.0 && range.is_finite();
        match (ok, non_negative) {
            (false, _) => Self {
                scale: 1.0,
                zero_point: ACT_ZERO_POINT,
            },
            (true, false) => Self {
                scale: range / QMAX,
                zero_point: ACT_ZERO_POINT,
            },
            (true, true) => Self {
                scale: range / 255.0,
                zero_point: 0,
            },
        }
    }

    /// What `x` becomes after `QuantizeLinear` and back.
    pub fn fake(&self, x: f32) -> f32 {
        let zp = f32::from(self.zero_point);
        let q = ((x / self.scale).round_ties_even() + zp).clamp(0.0, 255.0);
        (q - zp) * self.scale
    }
}

fn quantize(x: f32, scale: f32, lo: f32, hi: f32) -> i8 {
    (x / scale).round_ties_even().clamp(lo, hi) as i8
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
        let q = ActivationQuant::for_range(127.0, false);
        assert_eq!((q.scale, q.zero_point), (1.0, ACT_ZERO_POINT));
        assert_eq!(q.fake(2.5), 2.0);
        assert_eq!(q.fake(3.5), 4.0);
        assert_eq!(q.fake(500.0), 127.0);
        assert_eq!(q.fake(-500.0), -128.0);
        assert_eq!(ActivationQuant::for_range(0.0, false).scale, 1.0);
        assert_eq!(ActivationQuant::for_range(f32::NAN, true).scale, 1.0);
    }

    #[test]
    fn never_negative_inputs_get_zero_point_0_and_half_the_step() {
        let q = ActivationQuant::for_range(255.0, true);
        assert_eq!((q.scale, q.zero_point), (1.0, 0));
        assert_eq!(q.fake(200.4), 200.0);
        assert_eq!(q.fake(300.0), 255.0);
        // Anything negative is clamped to 0: the mode is only for inputs that never are.
        assert_eq!(q.fake(-3.0), 0.0);
    }
}
