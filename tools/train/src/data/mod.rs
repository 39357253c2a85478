//! Datasets, k-shot sampling, augmentation and batching.
//!
//! # Layout
//! - [`dataset`]: [`Dataset`] / [`Sample`], the provenance fingerprint and [`DataError`].
//! - [`image_folder`]: torchvision `ImageFolder` trees and the `train/` + `test/` (or `val/`)
//!   layout.
//! - [`cub`]: CUB-200-2011 in its own layout (`images.txt`, `train_test_split.txt`, ...).
//! - [`coco_camera_traps`]: COCO Camera Traps JSON as image-level labels.
//! - [`kshot`]: seeded k-shot sampling per class.
//! - [`augment`]: the §6 train augmentation (RandomResizedCrop + flip + normalise).
//! - [`loader`]: parallel decoding into batches, per-image failures reported, never fatal.
//!
//! Listing a dataset never opens an image; decoding happens in the [`loader`], where a bad image
//! becomes a [`loader::LoadFailure`] instead of an error.

pub mod augment;
pub mod coco_camera_traps;
pub mod cub;
pub mod dataset;
pub mod image_folder;
pub mod kshot;
pub mod loader;

pub use dataset::{DataError, Dataset, Sample};

/// Small image and file writers shared by the data tests.
#[cfg(test)]
pub(crate) mod test_images {
    use std::fs;
    use std::path::Path;

    use image::{Rgb, RgbImage};

    /// Writes `bytes` to `path`, creating parent folders.
    pub fn write_bytes(path: &Path, bytes: &[u8]) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(path, bytes).unwrap();
    }

    /// A `w`×`h` image whose pixels depend on the position and on `tint`.
    pub fn pattern(w: u32, h: u32, tint: u8) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([
                (x * 13 + u32::from(tint)) as u8,
                (y * 7 + u32::from(tint) * 3) as u8,
                ((x ^ y) * 5) as u8,
            ])
        })
    }

    /// PNG bytes of [`pattern`].
    pub fn png_bytes(w: u32, h: u32, tint: u8) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        pattern(w, h, tint)
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    /// Writes [`pattern`] as PNG (whatever the extension says), creating parent folders.
    pub fn write_png(path: &Path, w: u32, h: u32, tint: u8) {
        write_bytes(path, &png_bytes(w, h, tint));
    }

    /// Writes the first half of a valid PNG: the header parses, the pixel data is cut short.
    pub fn write_truncated_png(path: &Path) {
        let bytes = png_bytes(32, 32, 9);
        write_bytes(path, &bytes[..bytes.len() / 2]);
    }

    /// Writes pseudo-random bytes (not an image) under an image name.
    pub fn write_garbage(path: &Path) {
        let bytes: Vec<u8> = (0u32..512)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        write_bytes(path, &bytes);
    }
}
