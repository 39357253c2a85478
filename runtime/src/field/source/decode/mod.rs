//! The decoders of what sources read, apart from the sources: camera buffers to RGB (dispatch on
//! the negotiated pixel format here, the error for a buffer that does not hold a valid frame,
//! the conversions in [`yuyv`] and [`mjpeg`] with [`annex_k`]'s tables), and the capture time in
//! a picture's EXIF ([`exif_time`]). All pure Rust, built without the `camera` feature, so they
//! are tested everywhere.

pub mod annex_k;
pub mod exif_time;
pub mod mjpeg;
pub mod yuyv;

use image::RgbImage;

use crate::field::source::camera_settings::{Negotiated, PixelFormat};

/// Why a camera buffer could not be converted; the frame is recorded as failed.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A YUYV buffer shorter than the negotiated size needs.
    #[error(
        "YUYV frame {width}x{height} (stride {stride} bytes): got {got} bytes, expected at \
         least {expected}"
    )]
    YuyvTooShort {
        /// Negotiated width.
        width: u32,
        /// Negotiated height.
        height: u32,
        /// Bytes per row.
        stride: u32,
        /// Bytes received.
        got: usize,
        /// Bytes needed.
        expected: usize,
    },
    /// YUYV geometry that cannot be: odd width (pixels come in pairs), zero size, or a stride
    /// below `2 × width`.
    #[error("YUYV frame geometry {width}x{height} with stride {stride} bytes is invalid: {why}")]
    YuyvGeometry {
        /// Negotiated width.
        width: u32,
        /// Negotiated height.
        height: u32,
        /// Bytes per row.
        stride: u32,
        /// What is wrong.
        why: &'static str,
    },
    /// A YUYV conversion the `yuv` crate refused.
    #[error("YUYV conversion failed: {0}")]
    Yuyv(String),
    /// An MJPEG buffer whose marker structure is broken (no SOI, a segment running past the end).
    #[error("MJPEG frame is not a JPEG: {0}")]
    NotJpeg(&'static str),
    /// An MJPEG frame cut short (no end-of-image marker after the last scan), as when a USB
    /// transfer drops packets.
    #[error("MJPEG frame is truncated: no end-of-image marker after the last scan")]
    Truncated,
    /// An MJPEG frame whose header claims a size beyond the negotiated one.
    #[error(
        "MJPEG frame header says {}x{}, more than the negotiated {}x{}",
        found.0, found.1, negotiated.0, negotiated.1
    )]
    MjpegTooLarge {
        /// Width and height in the frame's header.
        found: (usize, usize),
        /// Width and height the camera negotiated.
        negotiated: (u32, u32),
    },
    /// The JPEG decoder's error.
    #[error("MJPEG frame cannot be decoded: {0}")]
    Jpeg(String),
}

/// The RGB image in a camera buffer of the negotiated format.
pub fn to_rgb(format: &Negotiated, data: &[u8]) -> Result<RgbImage, ConvertError> {
    match format.format {
        PixelFormat::Yuyv => {
            yuyv::yuyv_to_rgb(data, format.width, format.height, format.bytes_per_line)
        }
        PixelFormat::Mjpeg => mjpeg::mjpeg_to_rgb(data, format.width, format.height),
    }
}
