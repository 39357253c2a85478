//! Pillow's separable resampler (`libImaging/Resample.c`), re-derived for RGB8: per-axis
//! fixed-point taps of the (antialiased) triangle filter, a horizontal pass over only the rows
//! the vertical pass reads, then the vertical pass. Only [`crate::preprocess`] uses it.

use std::ops::Range;

use image::RgbImage;

use crate::preprocess::crop;
/// Fixed-point precision of the filter taps (Pillow: 32 - 8 bits - 2 guard bits).
pub(crate) const PRECISION_BITS: u32 = 22;
/// Rounding offset the accumulators start from: one half in fixed point.
const HALF: i64 = 1 << (PRECISION_BITS - 1);
/// Support of the triangle (bilinear) filter before widening.
const BILINEAR_SUPPORT: f64 = 1.0;

/// The region of the resized image that is actually computed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) left: u32,
    pub(crate) top: u32,
    pub(crate) width: u32,
    pub(crate) height: u32,
}

/// Fixed-point filter taps for a run of output coordinates along one axis.
pub(crate) struct AxisTaps {
    /// First source index each output coordinate reads.
    starts: Vec<usize>,
    /// Number of source samples each output coordinate reads.
    lens: Vec<usize>,
    /// Taps of output coordinate `i` at `weights[i * stride..][..lens[i]]`.
    weights: Vec<i32>,
    stride: usize,
}

impl AxisTaps {
    /// Taps for output coordinates `outputs` of an `in_size` -> `out_size` resize.
    pub(crate) fn new(in_size: u32, out_size: u32, outputs: Range<u32>) -> Self {
        // Pillow gets the box as C floats: (float)in_size, then divides in double.
        let scale = f64::from(in_size as f32) / f64::from(out_size);
        let filterscale = scale.max(1.0);
        let support = BILINEAR_SUPPORT * filterscale;
        let stride = support.ceil() as usize * 2 + 1;
        let inv_filterscale = 1.0 / filterscale;
        let count = outputs.len();
        let mut taps = Self {
            starts: Vec::with_capacity(count),
            lens: Vec::with_capacity(count),
            weights: vec![0; count * stride],
            stride,
        };
        let mut scratch = vec![0.0_f64; stride];
        for (i, out) in outputs.enumerate() {
            let center = (f64::from(out) + 0.5) * scale;
            // C's (int) cast truncates toward zero, as `as i64` does.
            let start = ((center - support + 0.5) as i64).max(0);
            let end = ((center + support + 0.5) as i64).min(i64::from(in_size));
            let len = usize::try_from(end - start).unwrap_or(0).min(stride);
            let start = usize::try_from(start).unwrap_or(0);
            let float_taps = &mut scratch[..len];
            let mut total = 0.0;
            for (k, w) in float_taps.iter_mut().enumerate() {
                *w = triangle(((start + k) as f64 - center + 0.5) * inv_filterscale);
                total += *w;
            }
            let fixed = &mut taps.weights[i * stride..i * stride + len];
            for (dst, &w) in fixed.iter_mut().zip(float_taps.iter()) {
                *dst = to_fixed_point(if total != 0.0 { w / total } else { w });
            }
            taps.starts.push(start);
            taps.lens.push(len);
        }
        taps
    }

    /// First source index and taps of the `i`-th output coordinate.
    pub(crate) fn get(&self, i: usize) -> (usize, &[i32]) {
        (
            self.starts[i],
            &self.weights[i * self.stride..][..self.lens[i]],
        )
    }

    /// The source indices read by any output coordinate.
    fn source_span(&self) -> Range<usize> {
        let first = self.starts.iter().copied().min().unwrap_or(0);
        let end = self
            .starts
            .iter()
            .zip(&self.lens)
            .map(|(s, l)| s + l)
            .max()
            .unwrap_or(first);
        first..end
    }
}

/// The triangle filter: `1 - |x|` inside (-1, 1), 0 outside.
fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

/// A normalised tap in fixed point, rounded half away from zero.
fn to_fixed_point(w: f64) -> i32 {
    let scaled = w * f64::from(1_u32 << PRECISION_BITS);
    if w < 0.0 {
        (scaled - 0.5) as i32
    } else {
        (scaled + 0.5) as i32
    }
}

/// Fixed-point accumulator back to a byte: `acc >> 22` clamped to 0..=255.
fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes `img` to `out_w` x `out_h` but computes only `window` of the result.
/// A pass is skipped when its dimension does not change, as in Pillow.
pub(crate) fn resize_window(img: &RgbImage, out_w: u32, out_h: u32, window: Window) -> RgbImage {
    let (in_w, in_h) = img.dimensions();
    if in_w == 0 || in_h == 0 || window.width == 0 || window.height == 0 {
        return RgbImage::new(window.width, window.height);
    }
    let vertical =
        (out_h != in_h).then(|| AxisTaps::new(in_h, out_h, window.top..window.top + window.height));
    let rows = match &vertical {
        Some(taps) => taps.source_span(),
        None => window.top as usize..(window.top + window.height) as usize,
    };
    let horizontal = if out_w != in_w {
        let taps = AxisTaps::new(in_w, out_w, window.left..window.left + window.width);
        horizontal_pass(img, rows.clone(), &taps)
    } else {
        crop(
            img,
            window.left,
            rows.start as u32,
            window.width,
            rows.len() as u32,
        )
    };
    match &vertical {
        Some(taps) => vertical_pass(&horizontal, rows.start, taps),
        None => horizontal,
    }
}

/// Filters rows `rows` of `src` horizontally; output row `i` is source row `rows.start + i`.
fn horizontal_pass(src: &RgbImage, rows: Range<usize>, taps: &AxisTaps) -> RgbImage {
    let out_w = taps.starts.len();
    let mut out = RgbImage::new(out_w as u32, rows.len() as u32);
    let src_stride = 3 * src.width() as usize;
    let src_raw: &[u8] = src.as_raw();
    for (dst_row, y) in out.chunks_exact_mut(3 * out_w).zip(rows) {
        let src_row = &src_raw[y * src_stride..(y + 1) * src_stride];
        for (x, dst) in dst_row.chunks_exact_mut(3).enumerate() {
            let (start, weights) = taps.get(x);
            let samples = src_row[3 * start..].chunks_exact(3);
            let mut acc = [HALF; 3];
            for (px, &w) in samples.zip(weights) {
                let w = i64::from(w);
                acc[0] += i64::from(px[0]) * w;
                acc[1] += i64::from(px[1]) * w;
                acc[2] += i64::from(px[2]) * w;
            }
            dst.copy_from_slice(&acc.map(clip8));
        }
    }
    out
}

/// Filters `src` vertically; source row `r` of the full image is `src` row `r - row_offset`.
fn vertical_pass(src: &RgbImage, row_offset: usize, taps: &AxisTaps) -> RgbImage {
    let width = src.width();
    let row_len = 3 * width as usize;
    let mut out = RgbImage::new(width, taps.starts.len() as u32);
    let src_raw: &[u8] = src.as_raw();
    let mut acc = vec![0_i64; row_len];
    for (y, dst_row) in out.chunks_exact_mut(row_len.max(1)).enumerate() {
        let (start, weights) = taps.get(y);
        acc.fill(HALF);
        for (k, &w) in weights.iter().enumerate() {
            let row = start + k - row_offset;
            let src_row = &src_raw[row * row_len..(row + 1) * row_len];
            let w = i64::from(w);
            for (a, &s) in acc.iter_mut().zip(src_row) {
                *a += i64::from(s) * w;
            }
        }
        for (d, &a) in dst_row.iter_mut().zip(&acc) {
            *d = clip8(a);
        }
    }
    out
}
