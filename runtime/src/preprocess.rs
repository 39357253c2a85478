//! Test-time preprocessing: the one implementation of the XR-VLM image pipeline
//! (design doc §7), shared by the training crate and the edge runtime.
//!
//! The reference is the authors' torchvision pipeline on PIL images:
//!
//! ```text
//! Resize(256)      shorter side to 256, long side int(256 * long / short), PIL BILINEAR
//! CenterCrop(224)  top = int(round((H - 224) / 2.0)), same for left (round half to even)
//! ToTensor         u8 -> f32, / 255
//! Normalize        (x - mean) / std in f32, CLIP mean and std
//! ```
//!
//! [`resize_bilinear`] reproduces Pillow's 8-bit resampler (`ImagingResample` with the
//! triangle filter) exactly: separable, horizontal pass first, antialiased when
//! downsampling, 22-bit fixed-point taps, and a uint8 image after each pass. The pieces
//! ([`crop`], [`resize_bilinear`], [`to_normalized_chw`]) are public so that training-time
//! augmentation (RandomResizedCrop) uses the same arithmetic.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::resample::{resize_window, Window};

/// Resampling filter used by the resize step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// PIL `Image.BILINEAR`: triangle filter, widened when downsampling (antialias).
    /// torchvision's default for `Resize` on PIL images.
    Bilinear,
}

/// Test-time preprocessing settings: resize, center crop, normalise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Target length of the shorter image side after resizing (torchvision `Resize(int)`).
    pub resize_shorter: u32,
    /// Side of the square center crop taken from the resized image.
    pub crop: u32,
    /// Resampling filter of the resize.
    pub interpolation: Interpolation,
    /// Per-channel (R, G, B) mean subtracted after scaling to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel (R, G, B) standard deviation divided by after subtracting the mean.
    pub std: [f32; 3],
}

/// Why a [`Preprocess`] configuration or an input image was rejected.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PreprocessError {
    /// `crop` is zero.
    #[error("preprocess.crop must be at least 1 pixel, got 0")]
    ZeroCrop,
    /// `resize_shorter` is smaller than `crop`, so the crop would not fit.
    #[error(
        "preprocess.resize_shorter ({resize_shorter}) must be >= preprocess.crop ({crop}): \
         the center crop is taken inside the resized image"
    )]
    CropLargerThanResize {
        /// The configured `resize_shorter`.
        resize_shorter: u32,
        /// The configured `crop`.
        crop: u32,
    },
    /// `resize_shorter` exceeds [`Preprocess::MAX_SIDE`].
    #[error("preprocess.resize_shorter must be at most {max} pixels, got {value}")]
    ResizeTooLarge {
        /// The configured `resize_shorter`.
        value: u32,
        /// The largest accepted value.
        max: u32,
    },
    /// A `mean` entry is NaN or infinite.
    #[error("preprocess.mean[{channel}] must be a finite number, got {value}")]
    NonFiniteMean {
        /// Channel index (0 = R, 1 = G, 2 = B).
        channel: usize,
        /// The offending value.
        value: f32,
    },
    /// A `std` entry is not a finite number greater than zero.
    #[error("preprocess.std[{channel}] must be finite and > 0, got {value}")]
    BadStd {
        /// Channel index (0 = R, 1 = G, 2 = B).
        channel: usize,
        /// The offending value.
        value: f32,
    },
    /// The input image has no pixels.
    #[error("input image is empty ({width}x{height} pixels); expected at least 1x1")]
    EmptyImage {
        /// Width of the rejected image.
        width: u32,
        /// Height of the rejected image.
        height: u32,
    },
}

impl Preprocess {
    /// CLIP's RGB mean. The upstream literals are Python floats (f64) that torch rounds
    /// to f32, so they are written as f64 and cast, never parsed straight to f32.
    pub const CLIP_MEAN: [f32; 3] = [
        0.48145466_f64 as f32,
        0.4578275_f64 as f32,
        0.40821073_f64 as f32,
    ];
    /// CLIP's RGB standard deviation (f64 literals cast to f32, as for [`Self::CLIP_MEAN`]).
    pub const CLIP_STD: [f32; 3] = [
        0.26862954_f64 as f32,
        0.26130258_f64 as f32,
        0.27577711_f64 as f32,
    ];
    /// Largest accepted `resize_shorter` (and so `crop`): guards against configurations
    /// that would allocate gigabytes.
    pub const MAX_SIDE: u32 = 8192;

    /// The XR-VLM reference settings: shorter side 256, center crop 224, bilinear, CLIP
    /// mean and std.
    pub fn xrvlm() -> Self {
        Self::for_image_size(224)
    }

    /// Settings for a model whose input is `crop` x `crop`, keeping the reference
    /// 256 / 224 ratio: `resize_shorter = round(crop * 256 / 224)`.
    pub fn for_image_size(crop: u32) -> Self {
        // crop * 8 / 7 never has a fractional part of exactly 1/2, so the rounding mode
        // does not matter; this is round-half-up in integers.
        let resize_shorter = (u64::from(crop) * 256 + 112) / 224;
        Self {
            resize_shorter: u32::try_from(resize_shorter).unwrap_or(u32::MAX),
            crop,
            interpolation: Interpolation::Bilinear,
            mean: Self::CLIP_MEAN,
            std: Self::CLIP_STD,
        }
    }

    /// Checks every field; the error names the field and the expected range.
    pub fn validate(&self) -> Result<(), PreprocessError> {
        if self.crop == 0 {
            return Err(PreprocessError::ZeroCrop);
        }
        if self.resize_shorter > Self::MAX_SIDE {
            return Err(PreprocessError::ResizeTooLarge {
                value: self.resize_shorter,
                max: Self::MAX_SIDE,
            });
        }
        if self.resize_shorter < self.crop {
            return Err(PreprocessError::CropLargerThanResize {
                resize_shorter: self.resize_shorter,
                crop: self.crop,
            });
        }
        if let Some((channel, &value)) = self.mean.iter().enumerate().find(|(_, m)| !m.is_finite())
        {
            return Err(PreprocessError::NonFiniteMean { channel, value });
        }
        if let Some((channel, &value)) = self
            .std
            .iter()
            .enumerate()
            .find(|(_, s)| !(s.is_finite() && **s > 0.0))
        {
            return Err(PreprocessError::BadStd { channel, value });
        }
        Ok(())
    }

    /// Number of floats [`Self::apply`] returns: `3 * crop * crop`.
    pub fn output_len(&self) -> usize {
        3 * self.crop as usize * self.crop as usize
    }

    /// Resize and center crop, stopping before normalisation: the uint8 image the model
    /// input is computed from (`crop` x `crop`).
    ///
    /// Only the pixels inside the crop are resampled; they are identical to resizing the
    /// whole image and cropping afterwards.
    pub fn resize_and_crop(&self, img: &RgbImage) -> Result<RgbImage, PreprocessError> {
        self.validate()?;
        let (width, height) = img.dimensions();
        if width == 0 || height == 0 {
            return Err(PreprocessError::EmptyImage { width, height });
        }
        let (resized_w, resized_h) = resized_shorter_size(width, height, self.resize_shorter);
        let (left, top) = center_crop_box(resized_w, resized_h, self.crop);
        let window = Window {
            left,
            top,
            width: self.crop,
            height: self.crop,
        };
        Ok(match self.interpolation {
            Interpolation::Bilinear => resize_window(img, resized_w, resized_h, window),
        })
    }

    /// The full pipeline: resize, center crop, ToTensor and Normalize. Returns a CHW
    /// (channel-major, then rows) tensor of [`Self::output_len`] floats.
    pub fn apply(&self, img: &RgbImage) -> Result<Vec<f32>, PreprocessError> {
        let cropped = self.resize_and_crop(img)?;
        Ok(to_normalized_chw(&cropped, self.mean, self.std))
    }
}

/// Output size of torchvision `Resize(shorter)`: the shorter side becomes `shorter`, the
/// longer one `int(shorter * long / short)` (truncated), as `_compute_resized_output_size`.
/// Returns `(width, height)`; an empty image gives `(0, 0)`.
pub fn resized_shorter_size(w: u32, h: u32, shorter: u32) -> (u32, u32) {
    if w == 0 || h == 0 {
        return (0, 0);
    }
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    // Python: int(requested_new_short * long / short); the product is exact in u64 and in
    // f64 for any realistic size, and both divisions round correctly.
    let new_long = (u64::from(shorter) * u64::from(long)) as f64 / f64::from(short);
    let new_long = u32::try_from(new_long as u64).unwrap_or(u32::MAX);
    if w <= h {
        (shorter, new_long)
    } else {
        (new_long, shorter)
    }
}

/// Top-left corner `(left, top)` of torchvision `CenterCrop(crop)` on a `w` x `h` image:
/// `int(round((size - crop) / 2.0))` with Python's round-half-to-even. When `crop` exceeds
/// a side (torchvision would pad) the offset on that side is 0.
pub fn center_crop_box(w: u32, h: u32, crop: u32) -> (u32, u32) {
    (center_offset(w, crop), center_offset(h, crop))
}

/// `round(d / 2)` with ties to even, for `d = size - crop`.
fn center_offset(size: u32, crop: u32) -> u32 {
    let d = size.saturating_sub(crop);
    let half = d / 2;
    if d % 2 == 1 && half % 2 == 1 {
        half + 1
    } else {
        half
    }
}

/// Copy of the `width` x `height` region whose top-left corner is `(left, top)`.
/// The region is clamped to the image, so the result can be smaller than asked.
pub fn crop(img: &RgbImage, left: u32, top: u32, width: u32, height: u32) -> RgbImage {
    let (img_w, img_h) = img.dimensions();
    let left = left.min(img_w);
    let top = top.min(img_h);
    let width = width.min(img_w - left);
    let height = height.min(img_h - top);
    let mut out = RgbImage::new(width, height);
    let row_len = 3 * width as usize;
    let src_stride = 3 * img_w as usize;
    let src: &[u8] = img.as_raw();
    for (y, dst_row) in out.chunks_exact_mut(row_len.max(1)).enumerate() {
        let start = (top as usize + y) * src_stride + 3 * left as usize;
        dst_row.copy_from_slice(&src[start..start + row_len]);
    }
    out
}

/// Resizes to `width` x `height` exactly as Pillow's `Image.resize(size, Image.BILINEAR)`
/// does on an RGB image. An empty input gives an all-black image of the requested size.
pub fn resize_bilinear(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    resize_window(
        img,
        width,
        height,
        Window {
            left: 0,
            top: 0,
            width,
            height,
        },
    )
}

/// ToTensor + Normalize: `(v / 255 - mean[c]) / std[c]` in f32 for every pixel, laid out
/// CHW (all of R, then G, then B; each plane row by row).
pub fn to_normalized_chw(img: &RgbImage, mean: [f32; 3], std: [f32; 3]) -> Vec<f32> {
    let plane = img.width() as usize * img.height() as usize;
    let lut = normalization_table(mean, std);
    let mut out = vec![0.0_f32; 3 * plane];
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
        r[i] = lut[0][usize::from(px[0])];
        g[i] = lut[1][usize::from(px[1])];
        b[i] = lut[2][usize::from(px[2])];
    }
    out
}

/// The normalised value of every possible byte, per channel (same arithmetic, done once).
fn normalization_table(mean: [f32; 3], std: [f32; 3]) -> [[f32; 256]; 3] {
    let mut lut = [[0.0_f32; 256]; 3];
    for (c, table) in lut.iter_mut().enumerate() {
        for (v, slot) in table.iter_mut().enumerate() {
            *slot = (f32::from(v as u8) / 255.0 - mean[c]) / std[c];
        }
    }
    lut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resample::{AxisTaps, PRECISION_BITS};

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 7 + y) as u8, (y * 5) as u8, (x ^ y) as u8])
        })
    }

    #[test]
    fn xrvlm_settings_are_the_reference_ones() {
        let p = Preprocess::xrvlm();
        assert_eq!(
            (p.resize_shorter, p.crop, p.interpolation),
            (256, 224, Interpolation::Bilinear)
        );
        assert_eq!(p.output_len(), 3 * 224 * 224);
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn for_image_size_keeps_the_256_over_224_ratio() {
        assert_eq!(Preprocess::for_image_size(224).resize_shorter, 256);
        assert_eq!(Preprocess::for_image_size(32).resize_shorter, 37);
        assert_eq!(Preprocess::for_image_size(7).resize_shorter, 8);
        assert_eq!(Preprocess::for_image_size(1).resize_shorter, 1);
    }

    #[test]
    fn clip_constants_are_the_f64_literals_rounded_to_f32() {
        assert_eq!(Preprocess::CLIP_MEAN[0], 0.48145466_f64 as f32);
        assert_eq!(Preprocess::CLIP_STD[2], 0.27577711_f64 as f32);
    }

    #[test]
    fn validate_names_the_bad_field() {
        let ok = Preprocess::for_image_size(32);
        let cases = [
            (
                Preprocess {
                    crop: 0,
                    ..ok.clone()
                },
                "preprocess.crop",
            ),
            (
                Preprocess {
                    resize_shorter: 31,
                    ..ok.clone()
                },
                "preprocess.resize_shorter (31)",
            ),
            (
                Preprocess {
                    resize_shorter: 100_000,
                    ..ok.clone()
                },
                "at most 8192",
            ),
            (
                Preprocess {
                    mean: [0.0, f32::NAN, 0.0],
                    ..ok.clone()
                },
                "preprocess.mean[1]",
            ),
            (
                Preprocess {
                    std: [1.0, 1.0, 0.0],
                    ..ok.clone()
                },
                "preprocess.std[2]",
            ),
            (
                Preprocess {
                    std: [-1.0, 1.0, 1.0],
                    ..ok.clone()
                },
                "preprocess.std[0]",
            ),
            (
                Preprocess {
                    std: [1.0, f32::INFINITY, 1.0],
                    ..ok.clone()
                },
                "preprocess.std[1]",
            ),
        ];
        for (config, expected) in cases {
            let err = config
                .validate()
                .expect_err("config must be rejected")
                .to_string();
            assert!(
                err.contains(expected),
                "{err:?} should mention {expected:?}"
            );
        }
    }

    #[test]
    fn apply_rejects_empty_images_and_bad_configs() {
        let p = Preprocess::for_image_size(8);
        let err = p.apply(&RgbImage::new(0, 5)).expect_err("empty image");
        assert_eq!(
            err,
            PreprocessError::EmptyImage {
                width: 0,
                height: 5
            }
        );
        assert!(err.to_string().contains("0x5"));
        let bad = Preprocess { crop: 0, ..p };
        assert_eq!(bad.apply(&gradient(4, 4)), Err(PreprocessError::ZeroCrop));
    }

    #[test]
    fn config_round_trips_through_json_and_rejects_unknown_fields() {
        let p = Preprocess::xrvlm();
        let json = serde_json::to_string(&p).expect("serialize");
        assert!(json.contains("\"interpolation\":\"bilinear\""), "{json}");
        let back: Preprocess = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, p);
        let extra = json.replace("\"crop\"", "\"cropp\":1,\"crop\"");
        assert!(serde_json::from_str::<Preprocess>(&extra).is_err());
    }

    #[test]
    fn resized_size_follows_torchvision() {
        assert_eq!(resized_shorter_size(500, 375, 256), (341, 256));
        assert_eq!(resized_shorter_size(375, 500, 256), (256, 341));
        assert_eq!(resized_shorter_size(300, 300, 256), (256, 256));
        assert_eq!(resized_shorter_size(1, 7, 36), (36, 252));
        assert_eq!(resized_shorter_size(0, 7, 36), (0, 0));
    }

    #[test]
    fn center_crop_rounds_half_to_even() {
        // (341 - 224) / 2 = 58.5 -> 58; (35 - 32) / 2 = 1.5 -> 2; (37 - 32) / 2 = 2.5 -> 2.
        assert_eq!(center_crop_box(341, 256, 224), (58, 16));
        assert_eq!(center_crop_box(35, 37, 32), (2, 2));
        assert_eq!(center_crop_box(33, 32, 32), (0, 0));
        assert_eq!(center_crop_box(10, 10, 32), (0, 0));
    }

    #[test]
    fn crop_copies_the_region_and_clamps_to_the_image() {
        let img = gradient(9, 6);
        let c = crop(&img, 2, 1, 3, 4);
        assert_eq!(c.dimensions(), (3, 4));
        assert_eq!(c.get_pixel(0, 0), img.get_pixel(2, 1));
        assert_eq!(c.get_pixel(2, 3), img.get_pixel(4, 4));
        assert_eq!(crop(&img, 7, 5, 10, 10).dimensions(), (2, 1));
        assert_eq!(crop(&img, 20, 20, 3, 3).dimensions(), (0, 0));
    }

    #[test]
    fn same_size_resize_is_a_copy() {
        let img = gradient(13, 7);
        assert_eq!(resize_bilinear(&img, 13, 7), img);
    }

    #[test]
    fn constant_image_stays_constant() {
        let img = RgbImage::from_pixel(17, 11, image::Rgb([200, 3, 255]));
        for (w, h) in [(5, 3), (40, 29), (1, 1), (17, 50)] {
            let out = resize_bilinear(&img, w, h);
            assert!(out.pixels().all(|p| p.0 == [200, 3, 255]), "{w}x{h}");
        }
    }

    #[test]
    fn taps_sum_to_one_in_fixed_point() {
        for (input, output) in [(100, 7), (7, 100), (256, 224), (1, 3), (3, 1)] {
            let taps = AxisTaps::new(input, output, 0..output);
            for i in 0..output as usize {
                let (start, w) = taps.get(i);
                assert!(start + w.len() <= input as usize);
                let sum: i32 = w.iter().sum();
                assert!(
                    (sum - (1 << PRECISION_BITS)).abs() <= w.len() as i32,
                    "{input}->{output} #{i}: {sum}"
                );
            }
        }
    }

    #[test]
    fn windowed_resize_equals_full_resize_then_crop() {
        let img = gradient(31, 19);
        let full = resize_bilinear(&img, 45, 12);
        let window = Window {
            left: 7,
            top: 3,
            width: 20,
            height: 6,
        };
        assert_eq!(
            resize_window(&img, 45, 12, window),
            crop(&full, 7, 3, 20, 6)
        );
    }

    #[test]
    fn normalization_is_chw_and_uses_f32_arithmetic() {
        let img = RgbImage::from_fn(2, 1, |x, _| image::Rgb([x as u8 * 255, 128, 0]));
        let mean = Preprocess::CLIP_MEAN;
        let std = Preprocess::CLIP_STD;
        let t = to_normalized_chw(&img, mean, std);
        assert_eq!(t.len(), 6);
        assert_eq!(t[0], (0.0 - mean[0]) / std[0]);
        assert_eq!(t[1], (1.0 - mean[0]) / std[0]);
        assert_eq!(t[2], (128.0_f32 / 255.0 - mean[1]) / std[1]);
        assert_eq!(t[5], (0.0 - mean[2]) / std[2]);
    }
}
