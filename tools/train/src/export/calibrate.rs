//! Static calibration of the int8 graph: the fp32 graph, with every linear layer's input
//! exposed as an extra output, runs in tract over the calibration images, batch by batch.
//! - Pass 1 ([`collect_ranges`]) records each input's |x|: the exact maximum, a log-spaced
//!   histogram, from which [`ActivationRange`] picks the range the int8 scale covers, and for
//!   a convolution's input each channel's maximum (for [`super::smoothing`]).
//! - Pass 2 ([`layer_errors`]) compares each layer's float output with the output of each of
//!   its candidate int8 forms (fake-quantized input, per-channel int8 weights) on the same
//!   inputs; the closest candidate is kept, and a layer that agrees too little stays float.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};

use super::linear::{LinearForm, LinearId};
use super::quant::{ActivationQuant, QuantizedWeight};
use super::smoothing::ChannelSmoothing;
use super::source::{ConvWeights, Layer, LinearWeights, VisualSource};
use super::tract_run::{Output, TractGraph};
use super::ExportError;

/// How the range of each quantized input is taken from its calibration values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActivationRange {
    /// The largest |x| seen: nothing saturates on the calibration set.
    MaxAbs,
    /// This percentile of |x| (e.g. 99.99), clamped to the maximum: rare outliers saturate and
    /// the common values keep more resolution.
    Percentile(f64),
}

/// Histogram bins per factor of two of |x|.
const BINS_PER_OCTAVE: i32 = 16;
/// |x| below 2^MIN_EXP counts in the first bin.
const MIN_EXP: i32 = -40;
/// |x| above 2^MAX_EXP counts in the last bin.
const MAX_EXP: i32 = 40;

/// The |x| statistics of one quantized input.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeStats {
    max_abs: f32,
    min: f32,
    count: u64,
    bins: Vec<u64>,
    channel_max: Vec<f32>,
}

impl Default for RangeStats {
    fn default() -> Self {
        Self {
            max_abs: 0.0,
            min: f32::INFINITY,
            count: 0,
            bins: vec![0; ((MAX_EXP - MIN_EXP) * BINS_PER_OCTAVE) as usize],
            channel_max: Vec::new(),
        }
    }
}

impl RangeStats {
    /// Adds an `(N, C, H, W)` feature map: its values and each channel's largest |x|.
    pub fn add_map(&mut self, x: &Output) {
        self.add(&x.data);
        let [_, c, h, w] = x.dims[..] else {
            return;
        };
        if self.channel_max.len() != c {
            self.channel_max = vec![0.0; c];
        }
        for (i, plane) in x.data.chunks_exact(h * w).enumerate() {
            let m = &mut self.channel_max[i % c];
            *m = plane.iter().fold(*m, |m, v| m.max(v.abs()));
        }
    }

    /// Each channel's largest |x| (empty unless feature maps were added).
    pub fn channel_max(&self) -> &[f32] {
        &self.channel_max
    }

    /// Adds values.
    pub fn add(&mut self, xs: &[f32]) {
        let last = self.bins.len() - 1;
        for &x in xs {
            let a = x.abs();
            if a.is_finite() {
                self.max_abs = self.max_abs.max(a);
                self.min = self.min.min(x);
            }
            let pos = (a.log2() - MIN_EXP as f32) * BINS_PER_OCTAVE as f32;
            let bin = if pos.is_nan() || pos < 0.0 {
                0
            } else {
                (pos as usize).min(last)
            };
            self.bins[bin] += 1;
        }
        self.count += xs.len() as u64;
    }

    /// The largest finite |x| seen.
    pub fn max_abs(&self) -> f32 {
        self.max_abs
    }

    /// Whether no value seen was negative (a ReLU's output, an average of one).
    pub fn non_negative(&self) -> bool {
        self.count > 0 && self.min >= 0.0
    }

    /// The range an int8 scale should cover.
    pub fn range(&self, how: ActivationRange) -> f32 {
        match how {
            ActivationRange::MaxAbs => self.max_abs,
            ActivationRange::Percentile(p) => self.percentile(p).min(self.max_abs),
        }
    }

    /// The upper edge of the histogram bin holding the `p`-th percentile of |x|.
    fn percentile(&self, p: f64) -> f32 {
        let target = ((p / 100.0).clamp(0.0, 1.0) * self.count as f64).ceil() as u64;
        let mut seen = 0;
        for (i, &c) in self.bins.iter().enumerate() {
            seen += c;
            if seen >= target.max(1) {
                let edge = MIN_EXP as f32 + (i + 1) as f32 / BINS_PER_OCTAVE as f32;
                return edge.exp2();
            }
        }
        self.max_abs
    }
}

/// How closely a layer's int8 form reproduces its float output on the calibration inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerError {
    /// Cosine between the float and int8 outputs, over every output value.
    pub cosine: f64,
    /// ‖int8 − float‖ / ‖float‖.
    pub relative: f64,
}

/// Runs `graph` (which exposes `probes`) over `images` in batches of `batch`, handing each
/// batch's outputs to `visit`.
fn for_each_batch(
    graph: &TractGraph,
    images: &Tensor,
    batch: usize,
    mut visit: impl FnMut(&[Output]) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    let n = images.dim(0)?;
    let mut start = 0;
    while start < n {
        let len = batch.min(n - start);
        visit(&graph.run(&images.narrow(0, start, len)?)?)?;
        start += len;
    }
    Ok(())
}

fn probe(outputs: &[Output], id: LinearId, index: usize) -> Result<&Output, ExportError> {
    outputs.get(index).ok_or_else(|| ExportError::Tract {
        graph: "calibration",
        stage: "run",
        msg: format!("no output {index} for the input of {id}"),
    })
}

/// Pass 1: the |x| statistics of every probed input.
pub fn collect_ranges(
    graph: &TractGraph,
    probes: &[(LinearId, usize)],
    images: &Tensor,
    batch: usize,
) -> Result<BTreeMap<LinearId, RangeStats>, ExportError> {
    let mut stats: BTreeMap<LinearId, RangeStats> = BTreeMap::new();
    for_each_batch(graph, images, batch, |outputs| {
        for &(id, index) in probes {
            stats
                .entry(id)
                .or_default()
                .add_map(probe(outputs, id, index)?);
        }
        Ok(())
    })?;
    Ok(stats)
}

/// Running sums of one layer's comparison.
#[derive(Default)]
struct Agreement {
    dot: f64,
    float_sq: f64,
    int8_sq: f64,
    diff_sq: f64,
}

impl Agreement {
    fn add(&mut self, float: &[f32], int8: &[f32]) {
        for (&a, &b) in float.iter().zip(int8) {
            let (a, b) = (a as f64, b as f64);
            self.dot += a * b;
            self.float_sq += a * a;
            self.int8_sq += b * b;
            self.diff_sq += (a - b) * (a - b);
        }
    }

    fn error(&self) -> LayerError {
        let norms = (self.float_sq * self.int8_sq).sqrt();
        LayerError {
            cosine: if norms > 0.0 { self.dot / norms } else { 1.0 },
            relative: if self.float_sq > 0.0 {
                (self.diff_sq / self.float_sq).sqrt()
            } else {
                self.diff_sq.sqrt()
            },
        }
    }
}

/// Pass 2: for each layer, the agreement of each of its candidate int8 forms (in
/// `candidates`; other forms are skipped) with its float form on the calibration inputs, in
/// the candidates' order.
pub fn layer_errors(
    graph: &TractGraph,
    probes: &[(LinearId, usize)],
    src: &VisualSource,
    candidates: &BTreeMap<LinearId, Vec<LinearForm>>,
    images: &Tensor,
    batch: usize,
) -> Result<BTreeMap<LinearId, Vec<LayerError>>, ExportError> {
    let mut sums: BTreeMap<LinearId, Vec<Agreement>> = BTreeMap::new();
    for_each_batch(graph, images, batch, |outputs| {
        for &(id, index) in probes {
            let (Some(forms), Some(layer)) = (candidates.get(&id), src.layer(id)) else {
                continue;
            };
            let x = probe(outputs, id, index)?;
            let slot = sums
                .entry(id)
                .or_insert_with(|| forms.iter().map(|_| Agreement::default()).collect());
            for (form, sum) in forms.iter().zip(slot.iter_mut()) {
                let LinearForm::Int8 { input, smoothing } = form else {
                    continue;
                };
                let (float, int8) = match layer {
                    Layer::Linear(l) => both_forms(l, &x.data, input)?,
                    Layer::Conv(c) => both_conv_forms(c, x, input, smoothing.as_ref())?,
                };
                sum.add(&float, &int8);
            }
        }
        Ok(())
    })?;
    Ok(sums
        .into_iter()
        .map(|(id, a)| (id, a.iter().map(Agreement::error).collect()))
        .collect())
}

/// The float and int8 outputs of `layer` on inputs `x` (rows of `layer.inputs()` values).
fn both_forms(
    layer: &LinearWeights,
    x: &[f32],
    quant: &ActivationQuant,
) -> Result<(Vec<f32>, Vec<f32>), ExportError> {
    let k = layer.inputs();
    let rows = x.len() / k;
    let dev = Device::Cpu;
    let xf = Tensor::from_slice(x, (rows, k), &dev)?;
    let xq: Vec<f32> = x.iter().map(|&v| quant.fake(v)).collect();
    let xq = Tensor::from_vec(xq, (rows, k), &dev)?;
    let wt = layer.weight.transposed().to_tensor()?;
    let wq = QuantizedWeight::of(layer).dequantized().to_tensor()?;
    let with_bias = |y: Tensor| -> candle_core::Result<Vec<f32>> {
        let y = match &layer.bias {
            Some(b) => y.broadcast_add(&Tensor::from_slice(b, b.len(), &dev)?)?,
            None => y,
        };
        y.flatten_all()?.to_vec1::<f32>()
    };
    Ok((with_bias(xf.matmul(&wt)?)?, with_bias(xq.matmul(&wq)?)?))
}

/// The float and int8 outputs (before bias and ReLU, which both forms share) of convolution
/// `layer` on its recorded input `x` `(N, C, H, W)`; with `smoothing`, the int8 form
/// quantizes `x / s_c` and the kernel times `s_c`.
fn both_conv_forms(
    layer: &ConvWeights,
    x: &Output,
    quant: &ActivationQuant,
    smoothing: Option<&ChannelSmoothing>,
) -> Result<(Vec<f32>, Vec<f32>), ExportError> {
    let dev = Device::Cpu;
    let xf = Tensor::from_slice(&x.data, x.dims.as_slice(), &dev)?;
    let (k, c, o) = (layer.kernel, layer.in_channels(), layer.out_channels());
    let plane = x.data.len() / (x.dims[0] * c).max(1);
    let xq: Vec<f32> = match smoothing {
        None => x.data.iter().map(|&v| quant.fake(v)).collect(),
        Some(s) => x
            .data
            .iter()
            .enumerate()
            .map(|(i, &v)| quant.fake(v / s.factors[(i / plane) % c]))
            .collect(),
    };
    let xq = Tensor::from_vec(xq, x.dims.as_slice(), &dev)?;
    let kernel = |m: Tensor| m.reshape((o, c, k, k));
    let wf = kernel(layer.linear.weight.to_tensor()?)?;
    let smoothed = smoothing.map(|s| s.smoothed(layer));
    let wq = kernel(
        QuantizedWeight::of(smoothed.as_ref().unwrap_or(&layer.linear))
            .dequantized()
            .to_tensor()?
            .t()?
            .contiguous()?,
    )?;
    let run = |x: &Tensor, w: &Tensor| -> candle_core::Result<Vec<f32>> {
        x.conv2d(w, layer.padding, layer.stride, 1, 1)?
            .flatten_all()?
            .to_vec1::<f32>()
    };
    Ok((run(&xf, &wf)?, run(&xq, &wq)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::source::Matrix;

    #[test]
    fn percentile_ignores_rare_outliers_and_max_is_exact() {
        let mut s = RangeStats::default();
        let mut xs: Vec<f32> = (0..10_000).map(|i| (i % 100) as f32 / 100.0).collect();
        xs.push(-50.0);
        s.add(&xs);
        assert_eq!(s.max_abs(), 50.0);
        assert_eq!(s.range(ActivationRange::MaxAbs), 50.0);
        let p = s.range(ActivationRange::Percentile(99.0));
        // 99 % of the values are ≤ 0.99; the bin edge is within one bin (2^(1/16)) above.
        assert!((0.98..=0.99 * 1.05).contains(&p), "{p}");
        assert_eq!(s.range(ActivationRange::Percentile(100.0)), 50.0);
    }

    #[test]
    fn int8_form_of_a_layer_is_close_but_not_exact() {
        let layer = LinearWeights {
            weight: Matrix {
                rows: 2,
                cols: 3,
                data: vec![0.3, -0.7, 0.11, 0.05, 0.9, -0.2],
            },
            bias: Some(vec![0.5, -0.5]),
        };
        let x = [0.1, 0.2, -0.33, 1.0, -0.9, 0.77];
        let (f, q) = both_forms(&layer, &x, &ActivationQuant::for_range(1.0, false)).unwrap();
        assert_eq!(f.len(), 4);
        let want0 = 0.1 * 0.3 + 0.2 * -0.7 + -0.33 * 0.11 + 0.5;
        assert!((f[0] - want0).abs() < 1e-6);
        let mut a = Agreement::default();
        a.add(&f, &q);
        let e = a.error();
        assert!(e.cosine > 0.999 && e.cosine < 1.0, "{e:?}");
        assert!(e.relative > 0.0 && e.relative < 0.02, "{e:?}");
    }
}
