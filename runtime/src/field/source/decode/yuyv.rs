//! YUYV (packed 4:2:2) to RGB with the `yuv` crate.
//!
//! Matrix and range: BT.601, limited range (Y 16–235, Cb/Cr 16–240). The UVC specification makes
//! BT.601 the default colour matching for uncompressed frames and webcams send studio range;
//! each pixel pair shares one Cb/Cr sample (no chroma interpolation).

use image::RgbImage;
use yuv::{YuvPackedImage, YuvRange, YuvStandardMatrix};

use super::ConvertError;

/// Converts a YUYV buffer of `width`×`height` with `stride` bytes per row to RGB8.
pub fn yuyv_to_rgb(
    data: &[u8],
    width: u32,
    height: u32,
    stride: u32,
) -> Result<RgbImage, ConvertError> {
    let size = check_geometry(data.len(), width, height, stride)?;
    let packed = YuvPackedImage {
        yuy: &data[..size],
        yuy_stride: stride,
        width,
        height,
    };
    let mut rgb = RgbImage::new(width, height);
    yuv::yuyv422_to_rgb(
        &packed,
        &mut rgb,
        width * 3,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
    )
    .map_err(|e| ConvertError::Yuyv(e.to_string()))?;
    Ok(rgb)
}

/// Checks the buffer before the `yuv` crate sees it (it panics on some invalid sizes) and
/// returns the frame's size in bytes; drivers may hand over a longer buffer.
fn check_geometry(len: usize, width: u32, height: u32, stride: u32) -> Result<usize, ConvertError> {
    let bad = |why| ConvertError::YuyvGeometry {
        width,
        height,
        stride,
        why,
    };
    if width == 0 || height == 0 {
        return Err(bad("zero size"));
    }
    if !width.is_multiple_of(2) {
        return Err(bad("odd width (YUYV packs pixel pairs)"));
    }
    if u64::from(stride) < u64::from(width) * 2 {
        return Err(bad("stride below 2 bytes per pixel"));
    }
    let expected = stride as usize * height as usize;
    if len < expected {
        return Err(ConvertError::YuyvTooShort {
            width,
            height,
            stride,
            got: len,
            expected,
        });
    }
    Ok(expected)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/frames")
            .join(name)
    }

    /// The fixture's expected RGB is the exact float BT.601 inverse, rounded; the `yuv` crate
    /// works in fixed point, so it may differ by rounding: at most 2 levels per channel.
    #[test]
    fn yuyv_fixture_converts_to_bt601_limited_rgb_within_two_levels() {
        let data = std::fs::read(fixture("scene.yuyv")).expect("fixture");
        let expected = image::open(fixture("scene.yuyv.png"))
            .expect("fixture")
            .to_rgb8();
        let rgb = yuyv_to_rgb(&data, 64, 48, 128).expect("convert");
        let max_err = rgb
            .as_raw()
            .iter()
            .zip(expected.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max();
        assert_eq!(rgb.dimensions(), (64, 48));
        assert!(max_err <= Some(2), "max abs error {max_err:?}");
    }

    #[test]
    fn padded_rows_are_skipped() {
        // 2x2 mid-grey (Y 126, no chroma), rows padded to 8 bytes with garbage.
        let row = [126, 128, 126, 128, 0xEE, 0xEE, 0xEE, 0xEE];
        let data = [row, row].concat();
        let rgb = yuyv_to_rgb(&data, 2, 2, 8).expect("convert");
        for p in rgb.pixels() {
            assert!(p.0.iter().all(|&c| c.abs_diff(128) <= 1), "{p:?}");
        }
    }

    #[test]
    fn short_or_impossible_buffers_are_errors_not_panics() {
        let err = yuyv_to_rgb(&[0; 100], 64, 48, 128).expect_err("short");
        assert!(err.to_string().contains("got 100 bytes"), "{err}");
        assert!(matches!(
            yuyv_to_rgb(&[0; 100], 3, 2, 6),
            Err(ConvertError::YuyvGeometry { .. })
        ));
        assert!(matches!(
            yuyv_to_rgb(&[0; 100], 4, 2, 6),
            Err(ConvertError::YuyvGeometry { .. })
        ));
        assert!(matches!(
            yuyv_to_rgb(&[], 0, 0, 0),
            Err(ConvertError::YuyvGeometry { .. })
        ));
    }
}
