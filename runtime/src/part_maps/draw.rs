//! The pixels of a part-map sheet: the model's input crop back in colour, a map upsampled to a
//! panel, and the colour ramp a map is drawn in. This file owns those three conversions; the
//! layout of the sheet is `super`'s.

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

use crate::preprocess::Preprocess;

/// The colour ramp's control points, evenly spaced from 0 to 1: near black through purple,
/// red and orange to pale yellow, each brighter than the one before, so that brightness alone
/// reads as attention (in the manner of the "inferno" ramp; these points are our own).
const RAMP: [[f32; 3]; 5] = [
    [0.0, 0.0, 4.0],
    [87.0, 16.0, 110.0],
    [188.0, 55.0, 84.0],
    [249.0, 142.0, 9.0],
    [252.0, 255.0, 164.0],
];

/// How much of a part panel's pixel is the ramp's colour; the rest is the input's grey.
const HEAT_WEIGHT: f32 = 0.6;

/// The ramp's colour at `v` (clamped to 0..=1), linear between control points.
pub fn ramp(v: f32) -> Rgb<u8> {
    let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
    let position = v * (RAMP.len() - 1) as f32;
    let i = (position.floor() as usize).min(RAMP.len() - 2);
    let t = position - i as f32;
    let (a, b) = (RAMP[i], RAMP[i + 1]);
    Rgb(std::array::from_fn(|c| {
        (a[c] + (b[c] - a[c]) * t).round() as u8
    }))
}

/// The preprocessed input (3, S, S), normalised as `preprocess` says, back in RGB8 and
/// upscaled (bilinear) to `panel`×`panel`.
pub fn input_panel(input: &[f32], preprocess: &Preprocess, panel: u32) -> RgbImage {
    let s = preprocess.crop;
    let plane = (s * s) as usize;
    let crop = RgbImage::from_fn(s, s, |x, y| {
        let at = (y * s + x) as usize;
        Rgb(std::array::from_fn(|c| {
            let unit = input[c * plane + at] * preprocess.std[c] + preprocess.mean[c];
            (unit * 255.0).round().clamp(0.0, 255.0) as u8
        }))
    });
    if panel == s {
        crop
    } else {
        imageops::resize(&crop, panel, panel, FilterType::Triangle)
    }
}

/// A `grid`×`grid` map (row-major) upsampled bilinearly to `size`×`size`, each token's value
/// at the centre of its cell and held constant from the outermost centres to the edges.
pub fn upsample(map: &[f32], grid: usize, size: u32) -> Vec<f32> {
    let at = |x: usize, y: usize| map[y * grid + x];
    let source = |p: u32| -> (usize, usize, f32) {
        let u = ((p as f32 + 0.5) * grid as f32 / size as f32 - 0.5).clamp(0.0, (grid - 1) as f32);
        let lo = u.floor() as usize;
        let hi = (lo + 1).min(grid - 1);
        (lo, hi, u - lo as f32)
    };
    let mut out = Vec::with_capacity((size * size) as usize);
    for py in 0..size {
        let (y0, y1, ty) = source(py);
        for px in 0..size {
            let (x0, x1, tx) = source(px);
            let top = at(x0, y0) + (at(x1, y0) - at(x0, y0)) * tx;
            let bottom = at(x0, y1) + (at(x1, y1) - at(x0, y1)) * tx;
            out.push(top + (bottom - top) * ty);
        }
    }
    out
}

/// One part's panel: `map` scaled to its own maximum, upsampled over the input panel and
/// drawn in the ramp's colours over the input in grey.
pub fn part_panel(input: &RgbImage, map: &[f32], grid: usize) -> RgbImage {
    let size = input.width();
    let peak = map.iter().copied().fold(0.0f32, f32::max);
    let scaled: Vec<f32> = map
        .iter()
        .map(|&v| if peak > 0.0 { v / peak } else { 0.0 })
        .collect();
    let heat = upsample(&scaled, grid, size);
    RgbImage::from_fn(size, size, |x, y| {
        let [r, g, b] = input.get_pixel(x, y).0;
        let grey = 0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b);
        let colour = ramp(heat[(y * size + x) as usize]).0;
        Rgb(std::array::from_fn(|c| {
            (grey * (1.0 - HEAT_WEIGHT) + f32::from(colour[c]) * HEAT_WEIGHT).round() as u8
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::Interpolation;

    fn luminance(c: Rgb<u8>) -> f32 {
        0.2126 * f32::from(c.0[0]) + 0.7152 * f32::from(c.0[1]) + 0.0722 * f32::from(c.0[2])
    }

    #[test]
    fn the_ramp_runs_from_near_black_to_pale_yellow_ever_brighter() {
        assert_eq!(ramp(0.0), Rgb([0, 0, 4]));
        assert_eq!(ramp(1.0), Rgb([252, 255, 164]));
        assert_eq!(ramp(-3.0), ramp(0.0));
        assert_eq!(ramp(7.0), ramp(1.0));
        assert_eq!(ramp(f32::NAN), ramp(0.0));
        assert_eq!(ramp(0.5), Rgb([188, 55, 84]));
        let steps: Vec<f32> = (0..=100)
            .map(|i| luminance(ramp(i as f32 / 100.0)))
            .collect();
        for (i, pair) in steps.windows(2).enumerate() {
            assert!(pair[1] > pair[0], "step {i}: {} then {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn upsampling_keeps_a_constant_and_hits_each_token_at_its_cell_centre() {
        assert!(upsample(&[0.25; 9], 3, 12).iter().all(|&v| v == 0.25));
        // 2×2 tokens on 4×4 pixels: pixel centres 0.5…3.5, token centres at 1 and 3.
        let map = [0.0, 1.0, 2.0, 3.0];
        let up = upsample(&map, 2, 4);
        assert_eq!(up[0], 0.0, "corner held at its token");
        assert_eq!(up[15], 3.0);
        // Pixel (1, 0): u = 1.5·2/4 − 0.5 = 0.25 between tokens 0 and 1.
        assert!((up[1] - 0.25).abs() < 1e-6, "{}", up[1]);
        // Pixel (1, 1): a quarter of the way in both directions.
        assert!((up[5] - (0.25 + 0.5)).abs() < 1e-6, "{}", up[5]);
    }

    #[test]
    fn the_input_panel_undoes_the_normalisation() {
        let preprocess = Preprocess {
            resize_shorter: 2,
            crop: 2,
            interpolation: Interpolation::Bilinear,
            mean: [0.5, 0.25, 0.0],
            std: [0.5, 0.25, 1.0],
        };
        // Pixel 0 is (255, 0, 51): normalised (1, -1, 0.2).
        let mut input = vec![0.0f32; 12];
        input[0] = 1.0;
        input[4] = -1.0;
        input[8] = 0.2;
        let panel = input_panel(&input, &preprocess, 2);
        assert_eq!(panel.get_pixel(0, 0), &Rgb([255, 0, 51]));
        assert_eq!(panel.get_pixel(1, 1), &Rgb([128, 64, 0]));
        assert_eq!(input_panel(&input, &preprocess, 6).dimensions(), (6, 6));
    }

    #[test]
    fn a_part_panel_is_brightest_where_its_map_peaks() {
        let input = RgbImage::from_pixel(30, 30, Rgb([100, 100, 100]));
        let mut map = vec![0.0f32; 9];
        map[8] = 0.5; // bottom-right token
        let panel = part_panel(&input, &map, 3);
        let corner = luminance(*panel.get_pixel(29, 29));
        let opposite = luminance(*panel.get_pixel(0, 0));
        assert!(corner > 150.0 && opposite < 50.0, "{corner} vs {opposite}");
        // A map of zeros is drawn as no attention anywhere, not NaN.
        let dark = part_panel(&input, &[0.0; 9], 3);
        assert!(dark.pixels().all(|p| p == dark.get_pixel(0, 0)));
    }
}
