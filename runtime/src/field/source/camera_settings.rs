//! What the field loop asks of a camera, and what the driver actually set.
//!
//! Drivers are free to adjust every requested value (a camera without 1280×720 MJPEG at 30 fps
//! picks its nearest mode), so the camera source reads the format back and reports a
//! [`Negotiated`] format; frames are always interpreted with the negotiated one.

use std::fmt;
use std::path::PathBuf;

/// The pixel formats the runtime can convert to RGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Packed 4:2:2 `Y0 U Y1 V`, BT.601 limited range (the UVC default).
    Yuyv,
    /// Motion JPEG: one baseline JPEG per frame, Huffman tables possibly left out.
    Mjpeg,
}

impl PixelFormat {
    /// The V4L2 FourCC code.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            Self::Yuyv => *b"YUYV",
            Self::Mjpeg => *b"MJPG",
        }
    }

    /// The format with this FourCC code, if the runtime can convert it.
    pub fn from_fourcc(code: [u8; 4]) -> Option<Self> {
        match &code {
            b"YUYV" => Some(Self::Yuyv),
            b"MJPG" => Some(Self::Mjpeg),
            _ => None,
        }
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.fourcc()))
    }
}

/// A camera and the format asked of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraSettings {
    /// The device node, e.g. `/dev/video0`.
    pub device: PathBuf,
    /// Requested pixel format.
    pub format: PixelFormat,
    /// Requested width in pixels.
    pub width: u32,
    /// Requested height in pixels.
    pub height: u32,
    /// Requested frame rate, frames per second.
    pub fps: u32,
}

impl CameraSettings {
    /// The short device name used in media names: `/dev/video0` → `video0`.
    pub fn device_name(&self) -> String {
        self.device.file_name().map_or_else(
            || self.device.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }
}

/// The format the driver set, read back after asking for [`CameraSettings`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Negotiated {
    /// Pixel format in use.
    pub format: PixelFormat,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Bytes per row of a YUYV frame (may exceed `2 × width`).
    pub bytes_per_line: u32,
    /// Frame rate in use, when the driver reports one.
    pub fps: Option<f64>,
}

impl fmt::Display for Negotiated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}x{}", self.format, self.width, self.height)?;
        match self.fps {
            Some(fps) => write!(f, " @ {fps:.1} fps"),
            None => f.write_str(" @ unknown fps"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourcc_codes_round_trip() {
        for f in [PixelFormat::Yuyv, PixelFormat::Mjpeg] {
            assert_eq!(PixelFormat::from_fourcc(f.fourcc()), Some(f));
        }
        assert_eq!(PixelFormat::from_fourcc(*b"NV12"), None);
        assert_eq!(PixelFormat::Mjpeg.to_string(), "MJPG");
    }
}
