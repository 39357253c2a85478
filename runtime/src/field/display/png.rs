//! A headless status display: the screen drawn into memory and written as a PNG file, scaled up
//! so it can be read on a desktop. Used for development, demos and tests, and on boxes with no
//! screen (the PNG can be served or copied off).

use std::path::{Path, PathBuf};

use super::mono::MonoBuffer;
use super::{draw_status, DisplayError, Status, StatusDisplay};

/// Size of the simulated screen: the common SSD1306 OLED.
pub const SCREEN: (u32, u32) = (128, 64);
/// Default magnification of the PNG: 4 makes the 6×10 font comfortable on a desktop screen.
pub const DEFAULT_SCALE: u32 = 4;

/// A 128×64 screen written to a PNG file on every [`StatusDisplay::show`].
#[derive(Debug, Clone)]
pub struct PngDisplay {
    path: PathBuf,
    scale: u32,
    buffer: MonoBuffer,
}

impl PngDisplay {
    /// A display writing to `path`, each screen pixel `scale`×`scale` PNG pixels (at least 1).
    pub fn new(path: impl Into<PathBuf>, scale: u32) -> Self {
        Self {
            path: path.into(),
            scale: scale.max(1),
            buffer: MonoBuffer::new(SCREEN.0, SCREEN.1),
        }
    }

    /// The screen as last drawn.
    pub fn screen(&self) -> &MonoBuffer {
        &self.buffer
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl StatusDisplay for PngDisplay {
    fn show(&mut self, status: &Status) -> Result<(), DisplayError> {
        let Ok(()) = draw_status(&mut self.buffer, status);
        write_png_atomically(&self.path, &self.buffer.to_rgb(self.scale))
    }

    fn describe(&self) -> String {
        format!(
            "PNG status screen {} ({}x{} at x{})",
            self.path.display(),
            SCREEN.0,
            SCREEN.1,
            self.scale
        )
    }
}

/// Writes next to `path` and renames over it, so a viewer never sees a half-written file.
fn write_png_atomically(path: &Path, image: &image::RgbImage) -> Result<(), DisplayError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    image
        .save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|source| DisplayError::Png {
            path: path.to_path_buf(),
            source,
        })?;
    std::fs::rename(&tmp, path).map_err(|source| DisplayError::Io {
        path: path.to_path_buf(),
        what: "cannot replace the status PNG",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::display::Sighting;
    use crate::timestamp::CivilTime;

    fn status(species: &str, frames: u64) -> Status {
        Status {
            last: Some(Sighting {
                species: species.to_owned(),
                confidence: 0.87,
            }),
            now: CivilTime::new(2021, 5, 31, 8, 25, 38).expect("valid"),
            frames,
            free_bytes: Some(12_345_678_901),
        }
    }

    #[test]
    fn a_status_png_has_text_where_the_layout_puts_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("status.png");
        let mut display = PngDisplay::new(&path, 2);
        display
            .show(&status("northern_cardinal", 1234))
            .expect("show");
        let png = image::open(&path).expect("png").to_rgb8();
        assert_eq!(png.dimensions(), (256, 128));

        let screen = display.screen();
        // Title row (13 px font), rule at y 14, four body rows of 10 px.
        assert!(screen.lit_in(0, 0, 128, 13) > 40, "species line is empty");
        assert_eq!(screen.lit_in(0, 14, 128, 1), 128, "rule under the species");
        for top in [17, 28, 39, 50] {
            assert!(screen.lit_in(0, top, 128, 10) > 20, "row at {top} is empty");
        }
        // Nothing drawn past the last row or the end of the longest line.
        assert_eq!(screen.lit_in(0, 61, 128, 3), 0);
        assert_eq!(screen.lit_in(110, 17, 18, 44), 0);
        // The PNG is the screen scaled: a lit screen pixel is a lit 2×2 square.
        let (x, y) = (0..128)
            .flat_map(|x| (0..13).map(move |y| (x, y)))
            .find(|&(x, y)| screen.is_on(x, y))
            .expect("a lit pixel");
        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            assert_eq!(
                *png.get_pixel(2 * x + dx, 2 * y + dy),
                super::super::mono::LIT
            );
        }
    }

    #[test]
    fn different_statuses_give_different_screens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = PngDisplay::new(dir.path().join("a.png"), 1);
        let mut b = PngDisplay::new(dir.path().join("b.png"), 1);
        a.show(&status("northern_cardinal", 1234)).expect("show");
        b.show(&status("blue_jay", 1234)).expect("show");
        assert_ne!(a.screen(), b.screen());
        // Only the species line differs.
        assert_eq!(
            (14..64)
                .map(|y| a.screen().lit_in(0, y, 128, 1))
                .collect::<Vec<_>>(),
            (14..64)
                .map(|y| b.screen().lit_in(0, y, 128, 1))
                .collect::<Vec<_>>()
        );
        b.show(&status("northern_cardinal", 1235)).expect("show");
        assert_ne!(a.screen(), b.screen());
        assert_eq!(
            a.screen().lit_in(0, 0, 128, 13),
            b.screen().lit_in(0, 0, 128, 13)
        );
    }

    #[test]
    fn an_unwritable_path_is_an_error_naming_it() {
        let mut display = PngDisplay::new("/nonexistent/dir/status.png", 2);
        let err = display.show(&status("wren", 1)).expect_err("no such dir");
        assert!(
            err.to_string().contains("/nonexistent/dir/status.png"),
            "{err}"
        );
    }
}
