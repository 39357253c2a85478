//! MJPEG frames to RGB with `zune-jpeg`, including frames without Huffman tables.
//!
//! A UVC camera's MJPEG frame is a baseline JPEG that often omits its DHT segments (see
//! [`super::annex_k`]). Such a frame gets the standard tables inserted right after its SOI
//! marker before decoding; tables may appear anywhere before the first scan, so that is valid
//! JPEG. A frame cut short by a dropped USB transfer is an error, not a half-grey picture.

use std::borrow::Cow;

use image::RgbImage;
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use super::annex_k::standard_dht_segment;
use super::ConvertError;
use crate::image_io::jpeg_ends_after_last_scan;

const SOI: u8 = 0xD8;
const DHT: u8 = 0xC4;
const SOS: u8 = 0xDA;
const EOI: u8 = 0xD9;

/// Decodes one MJPEG frame of a camera that negotiated `width`×`height` to RGB8. A frame whose
/// header claims more than that is refused before anything is allocated for its pixels: a
/// corrupt header could otherwise ask for 16384×16384 (768 MiB on a 4 GiB board).
pub fn mjpeg_to_rgb(data: &[u8], width: u32, height: u32) -> Result<RgbImage, ConvertError> {
    let jpeg = with_huffman_tables(data)?;
    if !jpeg_ends_after_last_scan(&jpeg) {
        return Err(ConvertError::Truncated);
    }
    let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(jpeg.as_ref()), options);
    decoder
        .decode_headers()
        .map_err(|e| ConvertError::Jpeg(e.to_string()))?;
    let (w, h) = decoder
        .dimensions()
        .ok_or(ConvertError::Jpeg("no image header".to_owned()))?;
    if w > width as usize || h > height as usize {
        return Err(ConvertError::MjpegTooLarge {
            found: (w, h),
            negotiated: (width, height),
        });
    }
    let pixels = decoder
        .decode()
        .map_err(|e| ConvertError::Jpeg(e.to_string()))?;
    let info = decoder
        .info()
        .ok_or(ConvertError::Jpeg("no image header".to_owned()))?;
    RgbImage::from_raw(u32::from(info.width), u32::from(info.height), pixels)
        .ok_or_else(|| ConvertError::Jpeg("decoder returned a short pixel buffer".to_owned()))
}

/// The frame itself when it has Huffman tables, otherwise a copy with the standard ones
/// inserted after SOI.
pub fn with_huffman_tables(data: &[u8]) -> Result<Cow<'_, [u8]>, ConvertError> {
    if has_huffman_tables(data)? {
        return Ok(Cow::Borrowed(data));
    }
    let dht = standard_dht_segment();
    let mut out = Vec::with_capacity(data.len() + dht.len());
    out.extend_from_slice(&data[..2]);
    out.extend_from_slice(&dht);
    out.extend_from_slice(&data[2..]);
    Ok(Cow::Owned(out))
}

/// Whether a DHT segment comes before the first scan. Walks the marker segments from SOI.
pub fn has_huffman_tables(data: &[u8]) -> Result<bool, ConvertError> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != SOI {
        return Err(ConvertError::NotJpeg("no start-of-image marker"));
    }
    let mut i = 2;
    loop {
        // Markers may be preceded by any number of FF fill bytes.
        while data.get(i) == Some(&0xFF) && data.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (data.get(i), data.get(i + 1)) else {
            return Err(ConvertError::NotJpeg("marker segments run past the end"));
        };
        match marker {
            DHT => return Ok(true),
            SOS | EOI => return Ok(false),
            // Standalone markers (TEM, RSTn) have no length field.
            0x01 | 0xD0..=0xD7 => i += 2,
            _ => {
                let Some(len) = data.get(i + 2..i + 4) else {
                    return Err(ConvertError::NotJpeg("marker segments run past the end"));
                };
                i += 2 + usize::from(u16::from_be_bytes([len[0], len[1]]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/frames")
            .join(name);
        std::fs::read(path).expect("fixture")
    }

    fn reference() -> RgbImage {
        let png = fixture("mjpeg.png");
        image::load_from_memory(&png).expect("png").to_rgb8()
    }

    /// Tolerance against libjpeg-turbo's decoding (the reference PNG): zune-jpeg uses a different
    /// IDCT and chroma upsampling, which moves pixels at sharp colour edges by up to a few tens of
    /// levels in 4:2:2 but leaves the mean error around a level. Mean ≤ 2, max ≤ 16.
    fn assert_close(rgb: &RgbImage, reference: &RgbImage) {
        assert_eq!(rgb.dimensions(), reference.dimensions());
        let diffs: Vec<u32> = rgb
            .as_raw()
            .iter()
            .zip(reference.as_raw())
            .map(|(a, b)| u32::from(a.abs_diff(*b)))
            .collect();
        let mean = diffs.iter().sum::<u32>() as f64 / diffs.len() as f64;
        let max = diffs.iter().copied().max().unwrap_or(0);
        assert!(mean <= 2.0 && max <= 16, "mean {mean:.2}, max {max}");
    }

    #[test]
    fn mjpeg_with_tables_decodes_like_libjpeg() {
        let rgb = mjpeg_to_rgb(&fixture("mjpeg_dht.jpg"), 64, 48).expect("decode");
        assert_close(&rgb, &reference());
    }

    #[test]
    fn mjpeg_without_tables_decodes_with_the_standard_ones() {
        let data = fixture("mjpeg_no_dht.jpg");
        assert!(!has_huffman_tables(&data).expect("jpeg"));
        let rgb = mjpeg_to_rgb(&data, 64, 48).expect("decode");
        assert_close(&rgb, &reference());
        // Same pixels as the frame that carried its tables.
        let with = mjpeg_to_rgb(&fixture("mjpeg_dht.jpg"), 64, 48).expect("decode");
        assert_eq!(rgb, with);
    }

    #[test]
    fn a_frame_larger_than_negotiated_is_refused() {
        let data = fixture("mjpeg_dht.jpg");
        let err = mjpeg_to_rgb(&data, 64, 40).unwrap_err();
        assert!(
            matches!(
                err,
                ConvertError::MjpegTooLarge {
                    found: (64, 48),
                    negotiated: (64, 40)
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("64x48"), "{err}");
        // Smaller than negotiated decodes (the limit is on memory, not an exact size).
        assert_eq!(
            mjpeg_to_rgb(&data, 640, 480).unwrap().dimensions(),
            (64, 48)
        );
    }

    #[test]
    fn a_cut_short_or_garbage_frame_is_an_error() {
        let data = fixture("mjpeg_no_dht.jpg");
        let cut = &data[..data.len() / 2];
        assert!(matches!(
            mjpeg_to_rgb(cut, 64, 48),
            Err(ConvertError::Truncated)
        ));
        assert!(matches!(
            mjpeg_to_rgb(b"not a jpeg", 64, 48),
            Err(ConvertError::NotJpeg(_))
        ));
        assert!(matches!(
            mjpeg_to_rgb(&[0xFF, 0xD8, 0xFF, 0xE0, 0x10], 64, 48),
            Err(ConvertError::NotJpeg(_))
        ));
    }
}
