//! Shared helpers of the training crate's integration tests: the committed tiny CLIP fixture and
//! a generated ImageFolder with visibly different classes.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};

/// The tiny transformers CLIP fixture (quick_gelu, 32 px, patch 8).
pub fn tiny_clip() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip-tiny-quick-gelu")
}

/// Class names of the generated set.
pub const CLASSES: [&str; 3] = ["red_stripes", "green_dots", "blue_ring"];

/// One deterministic image of class `c`, variant `i` (position and shade vary).
pub fn class_image(c: usize, i: usize, size: u32) -> RgbImage {
    let shift = (i as u32 * 7) % size;
    RgbImage::from_fn(size, size, |x, y| {
        let xs = (x + shift) % size;
        let shade = 40 + ((i * 23) % 60) as u8;
        match c {
            0 if (xs / 4).is_multiple_of(2) => Rgb([220, shade, shade]),
            1 if (xs % 6 < 2) && ((y + shift) % 6 < 2) => Rgb([shade, 210, shade]),
            2 => {
                let (dx, dy) = (
                    x as i32 - (size / 2) as i32,
                    y as i32 - ((size / 2 + shift / 3) % size) as i32,
                );
                let r2 = dx * dx + dy * dy;
                if (40..120).contains(&r2) {
                    Rgb([shade, shade, 230])
                } else {
                    Rgb([90, 90, 90])
                }
            }
            _ => Rgb([90 + shade / 4, 90, 90]),
        }
    })
}

/// Writes `per_class` PNGs per class under `root/<class>/`.
pub fn write_image_folder(root: &Path, per_class: usize, size: u32) {
    for (c, name) in CLASSES.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            class_image(c, i, size)
                .save(dir.join(format!("{i:03}.png")))
                .unwrap();
        }
    }
}
