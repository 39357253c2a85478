//! The Linux framebuffer (`/dev/fb0`, feature `framebuffer`) as a status screen, for boards with
//! an HDMI or SPI TFT panel and no desktop.
//!
//! The geometry comes from sysfs (`/sys/class/graphics/fb0/{virtual_size,bits_per_pixel,stride}`).
//! The 128×64 status is drawn into memory, scaled by the largest whole factor that fits, centred,
//! and written as one frame: 32-bit XRGB8888 or 16-bit RGB565, little-endian, as the fbdev
//! drivers of these boards use.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use image::Rgb;

use super::mono::{MonoBuffer, DARK, LIT};
use super::png::SCREEN;
use super::{draw_status, DisplayError, Status, StatusDisplay};

/// Pixel layouts written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FbFormat {
    /// 16 bits: 5 red, 6 green, 5 blue.
    Rgb565,
    /// 32 bits: blue, green, red, unused (in memory order).
    Xrgb8888,
}

/// A framebuffer's geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FbInfo {
    /// Visible width in pixels.
    pub width: u32,
    /// Visible height in pixels.
    pub height: u32,
    /// Bytes per row.
    pub stride: u32,
    /// Pixel layout.
    pub format: FbFormat,
}

impl FbInfo {
    /// Reads the geometry from a sysfs directory such as `/sys/class/graphics/fb0`.
    pub fn from_sysfs(dir: &Path) -> Result<Self, DisplayError> {
        let size = read_sysfs(dir, "virtual_size")?;
        let (w, h) = size
            .split_once(',')
            .and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)))
            .ok_or_else(|| bad_sysfs(dir, "virtual_size", &size, "WIDTH,HEIGHT"))?;
        let bpp = read_sysfs(dir, "bits_per_pixel")?;
        let format = match bpp.as_str() {
            "16" => FbFormat::Rgb565,
            "32" => FbFormat::Xrgb8888,
            _ => return Err(bad_sysfs(dir, "bits_per_pixel", &bpp, "16 or 32")),
        };
        let stride_text = read_sysfs(dir, "stride")?;
        let stride: u32 = stride_text
            .parse()
            .map_err(|_| bad_sysfs(dir, "stride", &stride_text, "bytes per row"))?;
        let min_stride = w * if format == FbFormat::Rgb565 { 2 } else { 4 };
        if stride < min_stride {
            return Err(bad_sysfs(
                dir,
                "stride",
                &stride_text,
                "at least width x bytes per pixel",
            ));
        }
        Ok(Self {
            width: w,
            height: h,
            stride,
            format,
        })
    }

    /// One frame showing `screen` scaled up and centred on black.
    pub fn render(&self, screen: &MonoBuffer) -> Vec<u8> {
        let bytes_pp = if self.format == FbFormat::Rgb565 {
            2
        } else {
            4
        };
        let (sw, sh) = SCREEN;
        let scale = (self.width / sw).min(self.height / sh).max(1);
        let x0 = self.width.saturating_sub(sw * scale) / 2;
        let y0 = self.height.saturating_sub(sh * scale) / 2;
        let mut frame = vec![0u8; (self.stride * self.height) as usize];
        for y in 0..self.height {
            for x in 0..self.width {
                let inside = x >= x0 && y >= y0;
                let lit = inside && screen.is_on((x - x0) / scale, (y - y0) / scale);
                let colour = if !inside {
                    Rgb([0, 0, 0])
                } else if lit {
                    LIT
                } else {
                    DARK
                };
                let at = (y * self.stride + x * bytes_pp) as usize;
                self.put(&mut frame[at..at + bytes_pp as usize], colour);
            }
        }
        frame
    }

    fn put(&self, out: &mut [u8], Rgb([r, g, b]): Rgb<u8>) {
        match self.format {
            FbFormat::Xrgb8888 => out.copy_from_slice(&[b, g, r, 0]),
            FbFormat::Rgb565 => {
                let v = (u16::from(r) >> 3) << 11 | (u16::from(g) >> 2) << 5 | u16::from(b) >> 3;
                out.copy_from_slice(&v.to_le_bytes());
            }
        }
    }
}

/// A framebuffer device showing the status.
#[derive(Debug)]
pub struct FramebufferDisplay {
    device: PathBuf,
    info: FbInfo,
    screen: MonoBuffer,
}

impl FramebufferDisplay {
    /// Opens `device` (e.g. `/dev/fb0`), reading its geometry from
    /// `/sys/class/graphics/<name>`.
    pub fn open(device: &Path) -> Result<Self, DisplayError> {
        let name = device.file_name().unwrap_or(device.as_os_str());
        let sysfs = Path::new("/sys/class/graphics").join(name);
        Self::with_sysfs(device, &sysfs)
    }

    /// Opens `device` with its geometry read from the sysfs directory `sysfs`.
    pub fn with_sysfs(device: &Path, sysfs: &Path) -> Result<Self, DisplayError> {
        Ok(Self {
            device: device.to_path_buf(),
            info: FbInfo::from_sysfs(sysfs)?,
            screen: MonoBuffer::new(SCREEN.0, SCREEN.1),
        })
    }
}

impl StatusDisplay for FramebufferDisplay {
    fn show(&mut self, status: &Status) -> Result<(), DisplayError> {
        let Ok(()) = draw_status(&mut self.screen, status);
        let frame = self.info.render(&self.screen);
        let io = |what, source| DisplayError::Io {
            path: self.device.clone(),
            what,
            source,
        };
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(&self.device)
            .map_err(|e| io("cannot open the framebuffer", e))?;
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(&frame))
            .map_err(|e| io("cannot write the framebuffer", e))
    }

    fn describe(&self) -> String {
        format!(
            "framebuffer {} ({}x{}, {:?})",
            self.device.display(),
            self.info.width,
            self.info.height,
            self.info.format
        )
    }
}

fn read_sysfs(dir: &Path, name: &str) -> Result<String, DisplayError> {
    let path = dir.join(name);
    fs::read_to_string(&path)
        .map(|s| s.trim().to_owned())
        .map_err(|source| DisplayError::Io {
            path,
            what: "cannot read the framebuffer geometry",
            source,
        })
}

fn bad_sysfs(dir: &Path, name: &str, value: &str, expected: &str) -> DisplayError {
    DisplayError::Device {
        device: dir.join(name).display().to_string(),
        what: format!("unexpected value {value:?}; expected {expected}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::display::Sighting;
    use crate::timestamp::CivilTime;

    fn fake_sysfs(dir: &Path, size: &str, bpp: &str, stride: &str) {
        fs::write(dir.join("virtual_size"), format!("{size}\n")).expect("write");
        fs::write(dir.join("bits_per_pixel"), format!("{bpp}\n")).expect("write");
        fs::write(dir.join("stride"), format!("{stride}\n")).expect("write");
    }

    fn status() -> Status {
        Status {
            last: Some(Sighting {
                species: "wren".to_owned(),
                confidence: 0.5,
            }),
            now: CivilTime::new(2024, 1, 2, 3, 4, 5).expect("valid"),
            frames: 7,
            free_bytes: None,
        }
    }

    #[test]
    fn the_status_is_scaled_and_centred_in_xrgb8888() {
        let dir = tempfile::tempdir().expect("tempdir");
        fake_sysfs(dir.path(), "300,140", "32", "1216");
        let dev = dir.path().join("fb0");
        fs::write(&dev, []).expect("create");
        let mut fb = FramebufferDisplay::with_sysfs(&dev, dir.path()).expect("open");
        fb.show(&status()).expect("show");
        let frame = fs::read(&dev).expect("read");
        assert_eq!(frame.len(), 1216 * 140);
        // Scale 2 (256x128), centred at (22, 6): the border is black, the screen area dark or lit.
        let px = |x: usize, y: usize| &frame[y * 1216 + x * 4..y * 1216 + x * 4 + 4];
        assert_eq!(px(0, 0), [0, 0, 0, 0]);
        assert_eq!(px(22, 6), [DARK.0[2], DARK.0[1], DARK.0[0], 0]);
        let lit = [LIT.0[2], LIT.0[1], LIT.0[0], 0];
        let lit_count = (0..140)
            .flat_map(|y| (0..300).map(move |x| (x, y)))
            .filter(|&(x, y)| px(x, y) == lit)
            .count();
        assert_eq!(lit_count, 4 * fb.screen.lit_in(0, 0, 128, 64));
    }

    #[test]
    fn rgb565_packs_five_six_five() {
        let info = FbInfo {
            width: 128,
            height: 64,
            stride: 256,
            format: FbFormat::Rgb565,
        };
        let mut out = [0u8; 2];
        info.put(&mut out, Rgb([255, 0, 255]));
        assert_eq!(u16::from_le_bytes(out), 0xF81F);
    }

    #[test]
    fn bad_geometry_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        fake_sysfs(dir.path(), "300,140", "24", "900");
        let err = FbInfo::from_sysfs(dir.path()).expect_err("24 bpp");
        assert!(err.to_string().contains("bits_per_pixel"), "{err}");
    }
}
