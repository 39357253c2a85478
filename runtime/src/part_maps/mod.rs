//! Part-map sheets: one PNG per classified image showing where each of UnA's M parts looks
//! (`xrvlm classify --explain DIR`, and beside saved event frames when a board profile asks).
//!
//! A sheet is a title line (the caller's: the top class and its probability) over a row of
//! panels: the model's input crop, then one panel per part with that part's map
//! ([`crate::engine::PartMaps`], the softmax over the tokens) scaled to its own maximum,
//! upsampled bilinearly and drawn in a dark-to-bright colour ramp over the crop in grey.
//! Under each part panel, `max` is the share of the part's attention on its strongest token:
//! a part spread evenly over T tokens shows 100/T %, a part fixed on one token 100 %.
//!
//! This module owns the sheet's layout ([`Layout`]) and its writing; `draw` the pixels of
//! each panel, `font` the text.

mod draw;
mod font;

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};

use crate::engine::PartMaps;
use crate::preprocess::Preprocess;

pub use draw::ramp;

/// The smallest side of a panel: the input crop is upscaled by a whole factor to reach it, so
/// that a 7×7 map over a 96 px crop is big enough to read.
pub const MIN_PANEL: u32 = 192;
/// Space around and between panels, in pixels.
const MARGIN: u32 = 8;
/// Text is drawn at this multiple of the 5×7 font: 12 px per character.
const TEXT_SCALE: u32 = 2;
/// Height of the title band: the text and a margin above and below.
const TITLE_HEIGHT: u32 = MARGIN + font::GLYPH_HEIGHT * TEXT_SCALE + MARGIN;
/// Height of the caption band under the panels.
const CAPTION_HEIGHT: u32 = MARGIN / 2 + font::GLYPH_HEIGHT * TEXT_SCALE + MARGIN;
/// The sheet's background.
const PAPER: Rgb<u8> = Rgb([24, 24, 24]);
/// The colour of text.
const INK: Rgb<u8> = Rgb([235, 235, 235]);

/// Why a sheet could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum PartMapsError {
    /// The input is not one preprocessed image of the bundle's crop size.
    #[error("part-map sheet: the input holds {len} floats, expected 3·{crop}·{crop}")]
    InputLength {
        /// Floats given.
        len: usize,
        /// The crop side S.
        crop: u32,
    },
    /// The PNG could not be written.
    #[error("{}: cannot write the part-map sheet: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: image::ImageError,
    },
}

/// Where everything sits on a sheet of M parts for an S px input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    parts: u32,
    panel: u32,
}

impl Layout {
    /// The layout for `parts` maps over an input of `image_size` px: panels of the input
    /// upscaled by the smallest whole factor that reaches [`MIN_PANEL`].
    pub fn new(parts: usize, image_size: usize) -> Self {
        let s = image_size.max(1) as u32;
        Self {
            parts: parts as u32,
            panel: s * MIN_PANEL.div_ceil(s),
        }
    }

    /// The side of a panel.
    pub fn panel(&self) -> u32 {
        self.panel
    }

    /// Width and height of the sheet.
    pub fn size(&self) -> (u32, u32) {
        let width = MARGIN + (self.parts + 1) * (self.panel + MARGIN);
        (width, TITLE_HEIGHT + self.panel + CAPTION_HEIGHT)
    }

    /// Top-left corner of panel `i` (0 is the input, 1..=M the parts).
    fn panel_origin(&self, i: u32) -> (u32, u32) {
        (MARGIN + i * (self.panel + MARGIN), TITLE_HEIGHT)
    }

    /// The characters that fit in `width` pixels of text.
    fn fits(width: u32) -> usize {
        ((width + 1) / (font::ADVANCE * TEXT_SCALE)) as usize
    }
}

/// The sheet for one image: `input` is the preprocessed image (3, S, S) as `preprocess` made
/// it, `maps` its part maps, `title` the line above the panels (cut to the sheet's width).
pub fn draw_sheet(
    input: &[f32],
    preprocess: &Preprocess,
    maps: &PartMaps,
    title: &str,
) -> Result<RgbImage, PartMapsError> {
    let crop = preprocess.crop;
    if input.len() != 3 * (crop * crop) as usize {
        return Err(PartMapsError::InputLength {
            len: input.len(),
            crop,
        });
    }
    let layout = Layout::new(maps.parts(), crop as usize);
    let (width, height) = layout.size();
    let mut sheet = RgbImage::from_pixel(width, height, PAPER);
    let title: String = title
        .chars()
        .take(Layout::fits(width - 2 * MARGIN))
        .collect();
    font::draw_text(&mut sheet, MARGIN, MARGIN, &title, TEXT_SCALE, INK);
    let base = draw::input_panel(input, preprocess, layout.panel());
    let caption_y = TITLE_HEIGHT + layout.panel() + MARGIN / 2;
    let place = |sheet: &mut RgbImage, i: u32, panel: &RgbImage, caption: &str| {
        let (x, y) = layout.panel_origin(i);
        image::imageops::replace(sheet, panel, i64::from(x), i64::from(y));
        let caption: String = caption.chars().take(Layout::fits(layout.panel())).collect();
        font::draw_text(sheet, x, caption_y, &caption, TEXT_SCALE, INK);
    };
    place(&mut sheet, 0, &base, "input");
    for (part, map) in maps.maps().enumerate() {
        let panel = draw::part_panel(&base, map, maps.grid());
        let peak = map.iter().copied().fold(0.0f32, f32::max);
        let caption = format!("part {} max {:.0}%", part + 1, peak * 100.0);
        place(&mut sheet, part as u32 + 1, &panel, &caption);
    }
    Ok(sheet)
}

/// Writes a sheet as PNG to `path`.
pub fn write_sheet(sheet: &RgbImage, path: &Path) -> Result<(), PartMapsError> {
    sheet
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|source| PartMapsError::Write {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::Interpolation;

    fn preprocess(crop: u32) -> Preprocess {
        Preprocess {
            resize_shorter: crop,
            crop,
            interpolation: Interpolation::Bilinear,
            mean: [0.5; 3],
            std: [0.25; 3],
        }
    }

    #[test]
    fn panels_are_whole_multiples_of_the_crop_reaching_192_px() {
        assert_eq!(Layout::new(4, 96).panel(), 192);
        assert_eq!(Layout::new(4, 100).panel(), 200);
        assert_eq!(Layout::new(4, 224).panel(), 224);
        assert_eq!(Layout::new(4, 96).size(), (8 + 5 * 200, 34 + 192 + 30));
        assert_eq!(Layout::new(2, 224).size().0, 8 + 3 * 232);
    }

    #[test]
    fn a_sheet_has_the_layout_size_a_title_and_one_panel_per_part() {
        let crop = 16;
        let input = vec![0.0f32; 3 * 16 * 16];
        let mut values = vec![0.0f32; 2 * 16];
        values[0] = 1.0; // part 1 on its top-left token
        values[16 + 15] = 1.0; // part 2 on its bottom-right token
        let maps = PartMaps::new(2, 4, values);
        let sheet = draw_sheet(&input, &preprocess(crop), &maps, "top: finch 99%").unwrap();
        let layout = Layout::new(2, 16);
        assert_eq!(sheet.dimensions(), layout.size());
        let title_ink = (0..TITLE_HEIGHT)
            .flat_map(|y| (0..sheet.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| *sheet.get_pixel(x, y) == INK)
            .count();
        assert!(title_ink > 50, "the title is drawn: {title_ink} pixels");
        let p = layout.panel();
        let bright = |i: u32, x: u32, y: u32| {
            let (ox, oy) = layout.panel_origin(i);
            sheet.get_pixel(ox + x, oy + y).0[0]
        };
        // Input grey 128 · 0.4 = 51 under the ramp; the hot token's corner is far brighter.
        assert!(bright(1, 0, 0) > 150 && bright(1, p - 1, p - 1) < 60);
        assert!(bright(2, p - 1, p - 1) > 150 && bright(2, 0, 0) < 60);
    }

    #[test]
    fn a_sheet_refuses_an_input_of_the_wrong_size() {
        let maps = PartMaps::new(1, 2, vec![0.25; 4]);
        let err = draw_sheet(&[0.0; 10], &preprocess(16), &maps, "x").unwrap_err();
        assert!(err.to_string().contains("3·16·16"), "{err}");
    }

    #[test]
    fn a_long_title_is_cut_to_the_sheet() {
        let maps = PartMaps::new(1, 2, vec![0.25; 4]);
        let input = vec![0.0f32; 3 * 16 * 16];
        let title = "w".repeat(500);
        let sheet = draw_sheet(&input, &preprocess(16), &maps, &title).unwrap();
        let last_column = sheet.width() - 1;
        assert!((0..TITLE_HEIGHT).all(|y| *sheet.get_pixel(last_column, y) == PAPER));
    }
}
