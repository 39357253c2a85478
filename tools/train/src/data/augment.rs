//! The training augmentation of `xrvlm-method.md` §6 (`TRANS_NAME: CoOp`), with torchvision's
//! semantics on PIL images:
//!
//! `RandomResizedCrop(size, scale=(0.08, 1), ratio=(3/4, 4/3), bilinear)` →
//! `RandomHorizontalFlip(0.5)` → `ToTensor` → `Normalize(mean, std)`.
//!
//! Crop sampling follows `torchvision.transforms.RandomResizedCrop.get_params` line by line (quoted
//! in [`Augment::crop_box`]), including Python's round-half-to-even. The crop, the PIL-exact
//! bilinear resize and the normalisation are the runtime's ([`xrvlm_runtime::preprocess`]), so
//! training and the edge device share one implementation. Random draws come from the caller's RNG
//! in a fixed order (per attempt: scale, then log-ratio, then top, then left; then the flip coin),
//! so a seeded RNG gives a reproducible result.

use image::RgbImage;
use rand::Rng;
use xrvlm_runtime::preprocess::{crop, resize_bilinear, to_normalized_chw, Preprocess};

/// torchvision's default `RandomResizedCrop` area fraction range.
pub const DEFAULT_SCALE: (f64, f64) = (0.08, 1.0);
/// torchvision's default `RandomResizedCrop` aspect-ratio range (w/h).
pub const DEFAULT_RATIO: (f64, f64) = (3.0 / 4.0, 4.0 / 3.0);
/// Number of rejection-sampling attempts before the central fallback crop (torchvision: 10).
pub const CROP_ATTEMPTS: usize = 10;
/// Probability of a horizontal flip when [`Augment::flip`] is set (torchvision default 0.5).
pub const FLIP_PROBABILITY: f64 = 0.5;

/// A crop rectangle in source-image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    /// Left column.
    pub left: u32,
    /// Top row.
    pub top: u32,
    /// Width in pixels (at least 1 for a non-empty image).
    pub width: u32,
    /// Height in pixels (at least 1 for a non-empty image).
    pub height: u32,
}

/// The random train transform: RandomResizedCrop + RandomHorizontalFlip + ToTensor + Normalize.
#[derive(Debug, Clone, PartialEq)]
pub struct Augment {
    /// Output side length in pixels (the eval crop size, 224 for CLIP ViT-B/16).
    pub size: u32,
    /// Range of the crop area as a fraction of the image area.
    pub scale: (f64, f64),
    /// Range of the crop aspect ratio (width / height); sampled log-uniformly.
    pub ratio: (f64, f64),
    /// Whether to flip horizontally with probability [`FLIP_PROBABILITY`].
    pub flip: bool,
    /// Per-channel mean subtracted after scaling to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by after the mean.
    pub std: [f32; 3],
}

impl Augment {
    /// The §6 augmentation for a model whose eval preprocessing is `p`: same output size
    /// (`p.crop`) and normalisation, torchvision default scale and ratio, flip on.
    pub fn from_preprocess(p: &Preprocess) -> Self {
        Self {
            size: p.crop,
            scale: DEFAULT_SCALE,
            ratio: DEFAULT_RATIO,
            flip: true,
            mean: p.mean,
            std: p.std,
        }
    }

    /// Number of floats [`Self::apply`] returns: `3 * size * size`.
    pub fn output_len(&self) -> usize {
        3 * self.size as usize * self.size as usize
    }

    /// Augments one image into a normalised CHW tensor of [`Self::output_len`] floats.
    ///
    /// An image with zero width or height has nothing to crop and gives all zeros; callers that
    /// can report it (the loader) reject such images before calling this.
    pub fn apply(&self, img: &RgbImage, rng: &mut impl Rng) -> Vec<f32> {
        if img.width() == 0 || img.height() == 0 {
            return vec![0.0; self.output_len()];
        }
        let out = self.apply_image(img, rng);
        to_normalized_chw(&out, self.mean, self.std)
    }

    /// The augmented `size`×`size` image before ToTensor/Normalize (for inspection and tests).
    /// The image must not be empty.
    pub fn apply_image(&self, img: &RgbImage, rng: &mut impl Rng) -> RgbImage {
        let b = self.crop_box(img.width(), img.height(), rng);
        let cropped = crop(img, b.left, b.top, b.width, b.height);
        let mut out = resize_bilinear(&cropped, self.size, self.size);
        if self.flip && rng.random::<f64>() < FLIP_PROBABILITY {
            image::imageops::flip_horizontal_in_place(&mut out);
        }
        out
    }

    /// Samples a RandomResizedCrop rectangle for a `width`×`height` image; always inside it.
    pub fn crop_box(&self, width: u32, height: u32, rng: &mut impl Rng) -> CropBox {
        // area = height * width
        // log_ratio = torch.log(torch.tensor(ratio))
        let area = f64::from(width) * f64::from(height);
        let (log_r0, log_r1) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..CROP_ATTEMPTS {
            // target_area = area * torch.empty(1).uniform_(scale[0], scale[1]).item()
            let target_area = area * uniform(rng, self.scale.0, self.scale.1);
            // aspect_ratio = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1])).item()
            let aspect = uniform(rng, log_r0, log_r1).exp();
            // w = int(round(math.sqrt(target_area * aspect_ratio)))
            let w = py_round((target_area * aspect).sqrt());
            let h = py_round((target_area / aspect).sqrt());
            // if 0 < w <= width and 0 < h <= height:
            if (1..=width).contains(&w) && (1..=height).contains(&h) {
                // i = torch.randint(0, height - h + 1, size=(1,)).item()
                let top = rng.random_range(0..=height - h);
                let left = rng.random_range(0..=width - w);
                return CropBox {
                    left,
                    top,
                    width: w,
                    height: h,
                };
            }
        }
        self.fallback_box(width, height)
    }

    /// torchvision's fallback: the whole image, clamped to the ratio range, centred.
    fn fallback_box(&self, width: u32, height: u32) -> CropBox {
        let lo = self.ratio.0.min(self.ratio.1);
        let hi = self.ratio.0.max(self.ratio.1);
        let in_ratio = f64::from(width) / f64::from(height);
        let (w, h) = if in_ratio < lo {
            (width, py_round(f64::from(width) / lo))
        } else if in_ratio > hi {
            (py_round(f64::from(height) * hi), height)
        } else {
            (width, height)
        };
        let (w, h) = (w.clamp(1, width.max(1)), h.clamp(1, height.max(1)));
        CropBox {
            left: (width - w) / 2,
            top: (height - h) / 2,
            width: w,
            height: h,
        }
    }
}

/// Uniform in `[a, b)` (or `[b, a)`); `a` when the range is empty, where `random_range` would
/// panic.
fn uniform(rng: &mut impl Rng, a: f64, b: f64) -> f64 {
    a + (b - a) * rng.random::<f64>()
}

/// Python's `int(round(x))` for non-negative `x`: round half to even; NaN and negatives give 0,
/// values past `u32::MAX` saturate (and are then rejected as too large).
fn py_round(x: f64) -> u32 {
    x.round_ties_even() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const MEAN: [f32; 3] = Preprocess::CLIP_MEAN;
    const STD: [f32; 3] = Preprocess::CLIP_STD;

    fn augment(size: u32) -> Augment {
        Augment {
            size,
            scale: DEFAULT_SCALE,
            ratio: DEFAULT_RATIO,
            flip: true,
            mean: MEAN,
            std: STD,
        }
    }

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (y * 5 % 256) as u8,
                ((x + y) % 256) as u8,
            ])
        })
    }

    #[test]
    fn output_has_three_channels_of_size_squared() {
        let a = augment(16);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for (w, h) in [(40, 30), (7, 90), (1, 1), (16, 16)] {
            assert_eq!(a.apply(&gradient(w, h), &mut rng).len(), 3 * 16 * 16);
        }
        assert_eq!(a.output_len(), 3 * 16 * 16);
    }

    #[test]
    fn same_seed_same_output() {
        let a = augment(12);
        let img = gradient(50, 37);
        let run = |seed| a.apply(&img, &mut ChaCha8Rng::seed_from_u64(seed));
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn crop_box_is_always_inside_the_image() {
        let a = augment(8);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for (w, h) in [
            (1, 1),
            (1, 500),
            (500, 1),
            (3, 2),
            (224, 224),
            (640, 480),
            (33, 1000),
        ] {
            for _ in 0..500 {
                let b = a.crop_box(w, h, &mut rng);
                assert!(b.width >= 1 && b.height >= 1, "{b:?} in {w}x{h}");
                assert!(
                    b.left + b.width <= w && b.top + b.height <= h,
                    "{b:?} in {w}x{h}"
                );
            }
        }
    }

    #[test]
    fn crop_area_and_ratio_stay_in_range_when_accepted() {
        let a = augment(8);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (w, h) = (1000u32, 800u32);
        for _ in 0..1000 {
            let b = a.crop_box(w, h, &mut rng);
            let frac = f64::from(b.width * b.height) / f64::from(w * h);
            let ratio = f64::from(b.width) / f64::from(b.height);
            assert!((0.075..=1.0).contains(&frac), "{b:?}");
            assert!((0.74..=1.35).contains(&ratio), "{b:?}");
        }
    }

    #[test]
    fn fallback_is_a_centred_ratio_clamped_crop() {
        // An area fraction above 1 can never fit, so every attempt fails.
        let mut a = augment(8);
        a.scale = (50.0, 50.0);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        // 100x10 is wider than 4/3: h = 10, w = round(10 * 4/3) = 13, centred.
        assert_eq!(
            a.crop_box(100, 10, &mut rng),
            CropBox {
                left: 43,
                top: 0,
                width: 13,
                height: 10
            }
        );
        // 10x100 is taller than 3/4: w = 10, h = round(10 / 0.75) = 13.
        assert_eq!(
            a.crop_box(10, 100, &mut rng),
            CropBox {
                left: 0,
                top: 43,
                width: 10,
                height: 13
            }
        );
        // 40x40 is within range: the whole image.
        assert_eq!(
            a.crop_box(40, 40, &mut rng),
            CropBox {
                left: 0,
                top: 0,
                width: 40,
                height: 40
            }
        );
    }

    #[test]
    fn python_rounding_is_half_to_even() {
        assert_eq!(py_round(2.5), 2);
        assert_eq!(py_round(3.5), 4);
        assert_eq!(py_round(2.4999), 2);
        assert_eq!(py_round(f64::NAN), 0);
    }

    #[test]
    fn flip_really_mirrors() {
        // Whole-image crop of a square image: the only randomness left is the flip.
        let mut a = augment(10);
        a.scale = (1.0, 1.0);
        a.ratio = (1.0, 1.0);
        let img = gradient(10, 10);
        let plain = to_normalized_chw(&resize_bilinear(&img, 10, 10), MEAN, STD);
        let s = 10;
        let mirrored: Vec<f32> = (0..plain.len())
            .map(|i| {
                let (row, x) = (i / s, i % s);
                plain[row * s + (s - 1 - x)]
            })
            .collect();
        assert_ne!(plain, mirrored);
        let (mut seen_plain, mut seen_flip) = (false, false);
        for seed in 0..64 {
            let out = a.apply(&img, &mut ChaCha8Rng::seed_from_u64(seed));
            if out == plain {
                seen_plain = true;
            } else {
                assert_eq!(out, mirrored, "seed {seed}: neither plain nor mirrored");
                seen_flip = true;
            }
        }
        assert!(seen_plain && seen_flip);

        a.flip = false;
        for seed in 0..16 {
            assert_eq!(a.apply(&img, &mut ChaCha8Rng::seed_from_u64(seed)), plain);
        }
    }

    #[test]
    fn empty_image_gives_zeros() {
        let a = augment(4);
        let out = a.apply(&RgbImage::new(0, 5), &mut ChaCha8Rng::seed_from_u64(0));
        assert_eq!(out, vec![0.0; 48]);
    }
}
