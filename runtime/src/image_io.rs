//! Image loading: file or bytes to an RGB8 image, the way the reference pipeline's
//! `PIL.Image.open(path).convert("RGB")` does it.
//!
//! The format is guessed from the content (never the file extension). Grey is replicated
//! into R, G and B and alpha is dropped without compositing, as PIL's `convert("RGB")`
//! does. No EXIF rotation is applied: neither PIL nor torchvision rotates. 16-bit PNGs
//! follow PIL too: colour and grey-with-alpha keep the high byte, plain 16-bit grey
//! (PIL mode `I;16`) is clipped to 255.
//!
//! PNG, BMP and lossless WebP decode to the same pixels as PIL. JPEG and lossy WebP go
//! through different decoders than PIL's libjpeg-turbo / libwebp, which may differ by a
//! few levels on some pixels.

use std::io;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, RgbImage};

/// Why an image file could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageLoadError {
    /// No file at the path.
    #[error("image file not found: {}", path.display())]
    NotFound {
        /// The path that was opened.
        path: PathBuf,
    },
    /// The file exists but may not be read.
    #[error("permission denied reading image file {}", path.display())]
    PermissionDenied {
        /// The path that was opened.
        path: PathBuf,
    },
    /// Any other I/O failure (a directory, a device error, ...).
    #[error("cannot read image file {}: {source}", path.display())]
    Read {
        /// The path that was opened.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The content matches no known image format.
    #[error(
        "{} is not an image: its content matches no known image format \
         (expected PNG, JPEG, BMP or WebP)",
        path.display()
    )]
    NotAnImage {
        /// The file (or origin) of the bytes.
        path: PathBuf,
    },
    /// A recognised format this build does not decode (TIFF, GIF, ...).
    #[error(
        "{} is a {format:?} image, which this build cannot decode \
         (supported: PNG, JPEG, BMP, WebP): {cause}",
        path.display()
    )]
    Unsupported {
        /// The file (or origin) of the bytes.
        path: PathBuf,
        /// The format guessed from the content.
        format: ImageFormat,
        /// The decoder's error.
        cause: ImageError,
    },
    /// The data is truncated or corrupt.
    #[error("{} is truncated or corrupt ({format:?} data): {cause}", path.display())]
    Corrupt {
        /// The file (or origin) of the bytes.
        path: PathBuf,
        /// The format guessed from the content.
        format: ImageFormat,
        /// The decoder's error.
        cause: ImageError,
    },
    /// The header claims more pixels than [`MAX_PIXELS`]: a corrupt header or a decompression
    /// bomb, refused before anything is decoded.
    #[error(
        "{} claims {width}x{height} pixels, more than the {limit} an image may have (PIL's \
         decompression-bomb limit): a corrupt header or a decompression bomb",
        path.display()
    )]
    TooManyPixels {
        /// The file (or origin) of the bytes.
        path: PathBuf,
        /// Width in the header.
        width: u32,
        /// Height in the header.
        height: u32,
        /// [`MAX_PIXELS`].
        limit: u64,
    },
    /// The image exceeds the decoder's memory limits.
    #[error("{} is too large to decode: {cause}", path.display())]
    TooLarge {
        /// The file (or origin) of the bytes.
        path: PathBuf,
        /// The decoder's error.
        cause: ImageError,
    },
}

impl ImageLoadError {
    /// The file (or origin) the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::NotFound { path }
            | Self::PermissionDenied { path }
            | Self::Read { path, .. }
            | Self::NotAnImage { path }
            | Self::Unsupported { path, .. }
            | Self::Corrupt { path, .. }
            | Self::TooManyPixels { path, .. }
            | Self::TooLarge { path, .. } => path,
        }
    }

    /// Classifies a failure to read `path`.
    pub(crate) fn from_io(path: &Path, source: io::Error) -> Self {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::NotFound => Self::NotFound { path },
            io::ErrorKind::PermissionDenied => Self::PermissionDenied { path },
            _ => Self::Read { path, source },
        }
    }

    /// Classifies a decoder failure on data of `format` from `path`.
    fn from_decode(path: &Path, format: ImageFormat, cause: ImageError) -> Self {
        let path = path.to_path_buf();
        match cause {
            ImageError::Unsupported(_) => Self::Unsupported {
                path,
                format,
                cause,
            },
            ImageError::Limits(_) => Self::TooLarge { path, cause },
            _ => Self::Corrupt {
                path,
                format,
                cause,
            },
        }
    }
}

/// The most pixels an image may have: PIL's `Image.MAX_IMAGE_PIXELS` (89 478 485, about
/// 9 460 × 9 460), above which PIL warns of a decompression bomb. Camera traps write 2 to
/// 40 megapixels; a 1.4 KB JPEG whose header claims 14 144 × 9 040 (found by fuzzing) otherwise
/// decodes to 383 MB of grey in seconds, which a 4 GB board may not have to spare.
pub const MAX_PIXELS: u64 = 89_478_485;

/// File extensions (lower case) that mark a file as an image when folders are walked
/// (`classify`, `check`, the field's folder source); everything else on a card (videos, `.txt`
/// logs, `.THM` thumbnails) is ignored.
pub const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "jpe", "png", "bmp", "webp"];

/// Whether `path` ends in one of [`IMAGE_EXTENSIONS`], in any case.
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Reads and decodes the image at `path` into RGB8, as PIL's
/// `Image.open(path).convert("RGB")` does.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageLoadError> {
    let bytes = std::fs::read(path).map_err(|e| ImageLoadError::from_io(path, e))?;
    decode_rgb(&bytes, path)
}

/// Decodes an in-memory image into RGB8; `origin` only names the source in errors.
pub fn decode_rgb(bytes: &[u8], origin: &Path) -> Result<RgbImage, ImageLoadError> {
    let format = image::guess_format(bytes).map_err(|_| ImageLoadError::NotAnImage {
        path: origin.to_path_buf(),
    })?;
    if format == ImageFormat::Jpeg && !jpeg_ends_after_last_scan(bytes) {
        let cause = ImageError::Decoding(image::error::DecodingError::new(
            image::error::ImageFormatHint::Exact(ImageFormat::Jpeg),
            "no end-of-image marker after the last scan (the file is cut short)",
        ));
        return Err(ImageLoadError::from_decode(origin, format, cause));
    }
    let failed = |e| ImageLoadError::from_decode(origin, format, e);
    // One decoder: its header gives the size, which is checked before any pixel is decoded.
    let decoder = image::ImageReader::with_format(io::Cursor::new(bytes), format)
        .into_decoder()
        .map_err(failed)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageLoadError::TooManyPixels {
            path: origin.to_path_buf(),
            width,
            height,
            limit: MAX_PIXELS,
        });
    }
    let decoded = DynamicImage::from_decoder(decoder).map_err(failed)?;
    Ok(into_rgb8_like_pil(decoded))
}

/// Whether a JPEG stream has an end-of-image marker (FF D9) after its last start-of-scan
/// marker (FF DA). The `image` crate decodes a cut-short JPEG without complaint, filling
/// the missing rows; PIL refuses it ("image file is truncated"), and so do we. Inside scan
/// data every FF byte is followed by 00 or a restart marker, so neither marker can occur
/// there by accident; an EXIF thumbnail's markers come before the main image's scans.
pub(crate) fn jpeg_ends_after_last_scan(bytes: &[u8]) -> bool {
    let Some(last_scan) = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]) else {
        return false;
    };
    bytes[last_scan..].windows(2).any(|w| w == [0xFF, 0xD9])
}

/// RGB8 conversion with PIL's rules for the layouts where the `image` crate's
/// `to_rgb8` differs (it rescales 16-bit samples; PIL truncates or clips).
fn into_rgb8_like_pil(img: DynamicImage) -> RgbImage {
    match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        DynamicImage::ImageRgb16(rgb) => RgbImage::from_fn(rgb.width(), rgb.height(), |x, y| {
            image::Rgb(rgb.get_pixel(x, y).0.map(high_byte))
        }),
        DynamicImage::ImageRgba16(rgba) => {
            RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
                let [r, g, b, _] = rgba.get_pixel(x, y).0;
                image::Rgb([r, g, b].map(high_byte))
            })
        }
        DynamicImage::ImageLumaA16(la) => RgbImage::from_fn(la.width(), la.height(), |x, y| {
            image::Rgb([high_byte(la.get_pixel(x, y).0[0]); 3])
        }),
        DynamicImage::ImageLuma16(l) => RgbImage::from_fn(l.width(), l.height(), |x, y| {
            image::Rgb([clip_to_byte(l.get_pixel(x, y).0[0]); 3])
        }),
        // 8-bit grey, grey + alpha and RGBA: replicate grey, drop alpha, as PIL does.
        other => other.to_rgb8(),
    }
}

/// PIL's 16-to-8-bit unpacking for colour PNGs keeps the most significant byte.
fn high_byte(v: u16) -> u8 {
    (v >> 8) as u8
}

/// PIL's `I;16` to `RGB` conversion clips instead of rescaling.
fn clip_to_byte(v: u16) -> u8 {
    v.min(255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = io::Cursor::new(Vec::new());
        img.write_to(&mut bytes, format).expect("encode test image");
        bytes.into_inner()
    }

    #[test]
    fn io_errors_are_classified_and_name_the_path() {
        let path = Path::new("/data/cub/img_001.jpg");
        let cases = [
            (io::ErrorKind::NotFound, "not found"),
            (io::ErrorKind::PermissionDenied, "permission denied"),
            (io::ErrorKind::Interrupted, "cannot read"),
        ];
        for (kind, expected) in cases {
            let err = ImageLoadError::from_io(path, io::Error::from(kind));
            let msg = err.to_string();
            assert!(
                msg.contains(expected) && msg.contains("img_001.jpg"),
                "{msg}"
            );
            assert_eq!(err.path(), path);
        }
    }

    #[test]
    fn a_header_claiming_more_than_max_pixels_is_refused_before_decoding() {
        // Found by the `image_file` fuzz target: 1 370 bytes, 14 144 × 9 040 in its header, a
        // few bytes of scan and an end-of-image marker.
        let bomb = include_bytes!("../tests/fixtures/frames/bomb_14144x9040.jpg");
        let err = decode_rgb(bomb, Path::new("bomb.jpg")).unwrap_err();
        assert!(
            matches!(
                err,
                ImageLoadError::TooManyPixels {
                    width: 14144,
                    height: 9040,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("bomb.jpg claims 14144x9040 pixels"),
            "{err}"
        );
        // Below the limit the same path decodes.
        let small = encode(
            &DynamicImage::ImageRgb8(RgbImage::new(3, 2)),
            ImageFormat::Png,
        );
        assert_eq!(
            decode_rgb(&small, Path::new("s.png")).unwrap().dimensions(),
            (3, 2)
        );
    }

    #[test]
    fn grey_is_replicated_and_alpha_dropped() {
        let grey =
            image::GrayAlphaImage::from_fn(3, 2, |x, y| image::LumaA([(x * 40 + y) as u8, 7]));
        let bytes = encode(&DynamicImage::ImageLumaA8(grey), ImageFormat::Png);
        let rgb = decode_rgb(&bytes, Path::new("mem.png")).expect("decode");
        assert_eq!(rgb.get_pixel(2, 1).0, [81, 81, 81]);
    }

    #[test]
    fn sixteen_bit_follows_pil() {
        let rgb16 = image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(2, 1, |x, _| {
            image::Rgb([0x12ff * (x as u16 + 1), 0x00ff, 0xff00])
        });
        let bytes = encode(&DynamicImage::ImageRgb16(rgb16), ImageFormat::Png);
        let rgb = decode_rgb(&bytes, Path::new("mem.png")).expect("decode");
        assert_eq!(rgb.get_pixel(0, 0).0, [0x12, 0x00, 0xff]);
        assert_eq!(rgb.get_pixel(1, 0).0, [0x25, 0x00, 0xff]);

        let grey16 = image::ImageBuffer::<image::Luma<u16>, _>::from_fn(2, 1, |x, _| {
            image::Luma([[77, 300][x as usize]])
        });
        let bytes = encode(&DynamicImage::ImageLuma16(grey16), ImageFormat::Png);
        let rgb = decode_rgb(&bytes, Path::new("mem.png")).expect("decode");
        assert_eq!(rgb.get_pixel(0, 0).0, [77; 3]);
        assert_eq!(rgb.get_pixel(1, 0).0, [255; 3]);
    }

    #[test]
    fn content_not_extension_decides_the_format() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(2, 2, image::Rgb([1, 2, 3])));
        let bytes = encode(&img, ImageFormat::Bmp);
        let rgb = decode_rgb(&bytes, Path::new("misnamed.png")).expect("decode");
        assert_eq!(rgb.get_pixel(1, 1).0, [1, 2, 3]);
    }

    #[test]
    fn a_cut_short_jpeg_is_corrupt_like_in_pil() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(32, 24, |x, y| {
            image::Rgb([(x * 8) as u8, (y * 10) as u8, 99])
        }));
        let bytes = encode(&img, ImageFormat::Jpeg);
        assert!(decode_rgb(&bytes, Path::new("full.jpg")).is_ok());
        let err = decode_rgb(&bytes[..bytes.len() * 2 / 3], Path::new("cut.jpg"))
            .expect_err("cut-short JPEG");
        assert!(matches!(err, ImageLoadError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains("cut.jpg is truncated"), "{err}");
    }

    #[test]
    fn garbage_is_not_an_image() {
        let err = decode_rgb(b"hello, world", Path::new("notes.jpg")).expect_err("garbage");
        assert!(matches!(err, ImageLoadError::NotAnImage { .. }), "{err:?}");
        assert!(err.to_string().contains("notes.jpg"));
    }
}
