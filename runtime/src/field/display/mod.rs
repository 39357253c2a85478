//! The status screen: what the camera saw last, the time, how many frames it processed and how
//! much storage is left, drawn with embedded-graphics on any 1-bit display.
//!
//! [`draw_status`] works on any [`DrawTarget`] of [`BinaryColor`] and is laid out for the common
//! 128×64 SSD1306 OLED. The targets, one file each, implement [`StatusDisplay`]:
//!
//! - [`png`]: a headless display written as a PNG file (scaled up), for development and tests.
//! - [`mono`]: the in-memory 1-bit framebuffer the PNG and Linux framebuffer targets draw into.
//! - [`oled`]: an SSD1306 over Linux I2C (feature `oled`).
//! - [`linux_fb`]: the Linux framebuffer, e.g. `/dev/fb0` (feature `framebuffer`).
//!
//! Without its feature, opening an OLED or framebuffer display returns
//! [`DisplayError::NotBuilt`] saying which feature to build with.

#[cfg_attr(feature = "framebuffer", path = "linux_fb.rs")]
#[cfg_attr(not(feature = "framebuffer"), path = "linux_fb_disabled.rs")]
pub mod linux_fb;
pub mod mono;
#[cfg_attr(feature = "oled", path = "oled.rs")]
#[cfg_attr(not(feature = "oled"), path = "oled_disabled.rs")]
pub mod oled;
pub mod png;

use std::path::PathBuf;

use embedded_graphics::mono_font::ascii::{FONT_6X10, FONT_7X13_BOLD};
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, PrimitiveStyle};
use embedded_graphics::text::{Baseline, Text};

use crate::timestamp::CivilTime;

/// What the status screen shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The last species recognised, if any yet.
    pub last: Option<Sighting>,
    /// The current local time.
    pub now: CivilTime,
    /// Frames processed since start.
    pub frames: u64,
    /// Free space for saved frames and logs, in bytes, when known.
    pub free_bytes: Option<u64>,
}

/// A species recognised with some confidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    /// The class label, e.g. `northern_cardinal` (underscores are shown as spaces).
    pub species: String,
    /// The classifier's probability, 0 to 1.
    pub confidence: f32,
}

/// Somewhere a status can be shown.
pub trait StatusDisplay {
    /// Draws `status` and makes it visible (flushes, writes the file).
    fn show(&mut self, status: &Status) -> Result<(), DisplayError>;

    /// One line for logs, e.g. `SSD1306 128x64 on /dev/i2c-1`.
    fn describe(&self) -> String;
}

/// Why a status could not be shown. Every variant names the file or device.
#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    /// Writing the PNG file failed.
    #[error("{}: cannot write the status PNG: {source}", path.display())]
    Png {
        /// The PNG file.
        path: PathBuf,
        /// The encoder's or file system's error.
        #[source]
        source: image::ImageError,
    },
    /// A device or file could not be opened, read or written.
    #[error("{}: {what}: {source}", path.display())]
    Io {
        /// The device node or file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The display hardware reported an error.
    #[error("{device}: {what}")]
    Device {
        /// The device, e.g. `/dev/i2c-1`.
        device: String,
        /// What went wrong.
        what: String,
    },
    /// The display needs a cargo feature this build lacks.
    #[error(
        "this xrvlm was built without the `{feature}` feature, needed for {what}; \
         rebuild with --features {feature}"
    )]
    NotBuilt {
        /// The cargo feature.
        feature: &'static str,
        /// What it provides.
        what: &'static str,
    },
}

/// The font of the species line: bold and taller, readable from a step away.
const TITLE_FONT: &MonoFont<'static> = &FONT_7X13_BOLD;
/// The font of the other lines: 21 characters fit across 128 pixels.
const BODY_FONT: &MonoFont<'static> = &FONT_6X10;
/// Top of each body line: below the title and its rule, 10-pixel lines with 1 pixel between.
const BODY_ROWS: [i32; 4] = [17, 28, 39, 50];

/// Clears `display` and draws `status` on it, laid out for 128×64 (larger displays get it in
/// their top-left corner).
pub fn draw_status<D>(display: &mut D, status: &Status) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    display.clear(BinaryColor::Off)?;
    let width = display.bounding_box().size.width.min(128);
    let title = MonoTextStyle::new(TITLE_FONT, BinaryColor::On);
    let body = MonoTextStyle::new(BODY_FONT, BinaryColor::On);
    let (species, confidence) = match &status.last {
        Some(s) => (
            s.species.replace('_', " "),
            format!("{:.0}% sure", s.confidence.clamp(0.0, 1.0) * 100.0),
        ),
        None => ("no animal yet".to_owned(), String::new()),
    };
    let columns = |font: &MonoFont| (width / font.character_size.width) as usize;
    let lines = [
        confidence,
        format!("{} {}", status.now.date(), &status.now.clock()[..5]),
        format!("frames {}", status.frames),
        format!(
            "free {}",
            status.free_bytes.map_or("?".to_owned(), human_bytes)
        ),
    ];
    Text::with_baseline(
        &fit(&species, columns(TITLE_FONT)),
        Point::new(0, 0),
        title,
        Baseline::Top,
    )
    .draw(display)?;
    Line::new(Point::new(0, 14), Point::new(width as i32 - 1, 14))
        .into_styled(PrimitiveStyle::with_stroke(BinaryColor::On, 1))
        .draw(display)?;
    for (line, top) in lines.iter().zip(BODY_ROWS) {
        let text = fit(line, columns(BODY_FONT));
        Text::with_baseline(&text, Point::new(0, top), body, Baseline::Top).draw(display)?;
    }
    Ok(())
}

/// `text` cut to `columns` characters, the last one replaced by `~` when cut.
fn fit(text: &str, columns: usize) -> String {
    if text.chars().count() <= columns {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(columns.saturating_sub(1)).collect();
    cut.push('~');
    cut
}

/// Bytes in the largest binary unit that keeps the number at least 1, one decimal: `1.5 GB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_with_a_mark() {
        assert_eq!(fit("wren", 18), "wren");
        assert_eq!(fit("greater spotted woodpecker", 10), "greater s~");
    }

    #[test]
    fn byte_counts_read_naturally() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GB");
    }
}
