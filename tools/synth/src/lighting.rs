//! Lighting, sensor noise and the night (infrared) look: how a painted canvas becomes the 8-bit
//! image a camera writes.
//!
//! An [`Exposure`] holds one shot's global settings (brightness, contrast and colour cast by day;
//! infrared gain, contrast and vignette by night; the noise level). [`Exposure::develop`] applies
//! them pixel by pixel and adds the sensor noise. Keeping the settings apart from the noise lets a
//! fixed camera take a burst: one exposure, drifted slightly per frame, fresh noise each time.

use image::RgbImage;
use rand::Rng;

use super::bird::Part;
use super::palette::Rgb;
use super::random::{gaussian, uniform};
use super::render::Canvas;

const BRIGHTNESS: (f32, f32) = (0.72, 1.2);
const CONTRAST: (f32, f32) = (0.75, 1.15);
const COLOUR_CAST: (f32, f32) = (0.9, 1.1);
const DAY_NOISE: (f32, f32) = (0.006, 0.025);
/// Infrared response: weights of R, G and B, and the extra brightness of foliage (green above
/// red and blue), which reflects near infrared strongly.
const IR_WEIGHTS: Rgb = [0.45, 0.35, 0.2];
const IR_FOLIAGE_BOOST: f32 = 0.6;
const NIGHT_GAIN: (f32, f32) = (0.75, 1.15);
/// The infrared flash lights the bird, closer to the camera than the backdrop, more strongly.
const IR_SUBJECT_GAIN: f32 = 1.3;
const NIGHT_CONTRAST: (f32, f32) = (0.8, 1.1);
const VIGNETTE: (f32, f32) = (0.35, 0.7);
const NIGHT_NOISE: (f32, f32) = (0.03, 0.06);

/// The global settings of one shot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Exposure {
    /// Daylight colour.
    Day {
        /// Overall gain.
        brightness: f32,
        /// Contrast around mid grey.
        contrast: f32,
        /// Per-channel gain (white balance error).
        cast: Rgb,
        /// Standard deviation of the per-channel Gaussian noise.
        sigma: f32,
    },
    /// Infrared grey under the camera's flash.
    Night {
        /// Overall gain.
        gain: f32,
        /// Contrast around mid grey.
        contrast: f32,
        /// Darkening toward the corners.
        vignette: f32,
        /// Standard deviation of the Gaussian noise.
        sigma: f32,
    },
}

impl Exposure {
    /// Draws a day or night exposure.
    pub fn sample<R: Rng>(rng: &mut R, night: bool) -> Self {
        if night {
            Exposure::Night {
                gain: uniform(rng, NIGHT_GAIN.0, NIGHT_GAIN.1),
                contrast: uniform(rng, NIGHT_CONTRAST.0, NIGHT_CONTRAST.1),
                vignette: uniform(rng, VIGNETTE.0, VIGNETTE.1),
                sigma: uniform(rng, NIGHT_NOISE.0, NIGHT_NOISE.1),
            }
        } else {
            Exposure::Day {
                brightness: uniform(rng, BRIGHTNESS.0, BRIGHTNESS.1),
                contrast: uniform(rng, CONTRAST.0, CONTRAST.1),
                cast: [(); 3].map(|_| uniform(rng, COLOUR_CAST.0, COLOUR_CAST.1)),
                sigma: uniform(rng, DAY_NOISE.0, DAY_NOISE.1),
            }
        }
    }

    /// Whether this is the night look.
    pub fn is_night(&self) -> bool {
        matches!(self, Exposure::Night { .. })
    }

    /// The same exposure with its overall gain multiplied by `factor` (auto-exposure drift).
    pub fn drifted(self, factor: f32) -> Self {
        match self {
            Exposure::Day {
                brightness,
                contrast,
                cast,
                sigma,
            } => Exposure::Day {
                brightness: brightness * factor,
                contrast,
                cast,
                sigma,
            },
            Exposure::Night {
                gain,
                contrast,
                vignette,
                sigma,
            } => Exposure::Night {
                gain: gain * factor,
                contrast,
                vignette,
                sigma,
            },
        }
    }

    /// Applies the exposure and fresh sensor noise from `rng` to every pixel, then quantises.
    pub fn develop<R: Rng>(&self, canvas: &mut Canvas, rng: &mut R) -> RgbImage {
        match *self {
            Exposure::Night {
                gain,
                contrast,
                vignette,
                sigma,
            } => {
                let half = (canvas.width() as f32 / 2.0, canvas.height() as f32 / 2.0);
                canvas.map_pixels(|x, y, label, c| {
                    let (dx, dy) = (
                        (x as f32 + 0.5 - half.0) / half.0,
                        (y as f32 + 0.5 - half.1) / half.1,
                    );
                    let falloff = 1.0 - vignette * (dx * dx + dy * dy) / 2.0;
                    let flash = if is_bird(label) { IR_SUBJECT_GAIN } else { 1.0 };
                    let g = ((infrared(c) - 0.5) * contrast + 0.5) * gain * falloff * flash;
                    [g + sigma * gaussian(rng); 3]
                });
            }
            Exposure::Day {
                brightness,
                contrast,
                cast,
                sigma,
            } => {
                canvas.map_pixels(|_, _, _, c| {
                    let mut out = [0.0; 3];
                    for ch in 0..3 {
                        let v = ((c[ch] - 0.5) * contrast + 0.5) * brightness * cast[ch];
                        out[ch] = v + sigma * gaussian(rng);
                    }
                    out
                });
            }
        }
        canvas.to_image()
    }
}

/// Whether a label belongs to a bird part.
pub fn is_bird(label: u8) -> bool {
    Part::ALL.iter().any(|p| p.label() == label)
}

/// Grey level of a colour under infrared illumination: a fixed channel mix, plus the strong
/// near-infrared reflectance of green foliage. Different colours map to similar greys.
fn infrared(c: Rgb) -> f32 {
    let base = IR_WEIGHTS[0] * c[0] + IR_WEIGHTS[1] * c[1] + IR_WEIGHTS[2] * c[2];
    base + IR_FOLIAGE_BOOST * (c[1] - c[0].max(c[2])).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::keyed_rng;

    #[test]
    fn night_is_grey_and_day_keeps_colour() {
        let mut rng = keyed_rng(1, 2, 3, 4);
        let paint = |w, h| Canvas::new(w, h, [0.8, 0.3, 0.2]);
        let night = Exposure::sample(&mut rng, true).develop(&mut paint(6, 4), &mut rng);
        assert!(night.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
        let day = Exposure::sample(&mut rng, false).develop(&mut paint(6, 4), &mut rng);
        assert!(
            day.pixels().all(|p| p[0] > p[2]),
            "red stays redder than blue"
        );
    }

    #[test]
    fn vignette_darkens_the_corners_of_a_wide_frame_alike() {
        let night = Exposure::Night {
            gain: 1.0,
            contrast: 1.0,
            vignette: 0.6,
            sigma: 0.0,
        };
        let mut rng = keyed_rng(1, 2, 3, 4);
        let img = night.develop(&mut Canvas::new(400, 100, [0.6; 3]), &mut rng);
        let at = |x, y| img.get_pixel(x, y)[0];
        let (corner, left, top) = (at(0, 0), at(0, 50), at(200, 0));
        assert!(corner < left && corner < top, "{corner} {left} {top}");
        assert!(
            left.abs_diff(top) <= 1,
            "left {left} and top {top} edges darken alike"
        );
    }

    #[test]
    fn drift_scales_the_gain_only() {
        let day = Exposure::Day {
            brightness: 1.0,
            contrast: 0.9,
            cast: [1.0; 3],
            sigma: 0.01,
        };
        let Exposure::Day {
            brightness,
            contrast,
            ..
        } = day.drifted(1.05)
        else {
            panic!("drift changed the kind of exposure");
        };
        assert_eq!((brightness, contrast), (1.05, 0.9));
    }
}
