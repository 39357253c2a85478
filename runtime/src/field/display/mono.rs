//! An in-memory 1-bit framebuffer that embedded-graphics draws into; the PNG and Linux
//! framebuffer displays render from it. Out-of-bounds pixels are discarded, as the
//! [`DrawTarget`] contract asks.

use std::convert::Infallible;

use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use image::{Rgb, RgbImage};

/// OLED-like colours for pictures of the screen: pale cyan on near-black.
pub const LIT: Rgb<u8> = Rgb([200, 235, 255]);
/// The colour of an unlit pixel.
pub const DARK: Rgb<u8> = Rgb([8, 10, 16]);

/// A `width`×`height` grid of on/off pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonoBuffer {
    width: u32,
    height: u32,
    on: Vec<bool>,
}

impl MonoBuffer {
    /// An all-off buffer.
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            on: vec![false; (width * height) as usize],
        }
    }

    /// Whether the pixel at (`x`, `y`) is on (`false` outside the buffer).
    pub fn is_on(&self, x: u32, y: u32) -> bool {
        x < self.width && y < self.height && self.on[(y * self.width + x) as usize]
    }

    /// Number of lit pixels in the rectangle from (`x0`, `y0`) of `w`×`h`.
    pub fn lit_in(&self, x0: u32, y0: u32, w: u32, h: u32) -> usize {
        (y0..y0 + h)
            .flat_map(|y| (x0..x0 + w).map(move |x| (x, y)))
            .filter(|&(x, y)| self.is_on(x, y))
            .count()
    }

    /// The buffer as an RGB picture, each pixel a `scale`×`scale` square (scale at least 1).
    pub fn to_rgb(&self, scale: u32) -> RgbImage {
        let scale = scale.max(1);
        RgbImage::from_fn(self.width * scale, self.height * scale, |x, y| {
            if self.is_on(x / scale, y / scale) {
                LIT
            } else {
                DARK
            }
        })
    }
}

impl OriginDimensions for MonoBuffer {
    fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }
}

impl DrawTarget for MonoBuffer {
    type Color = BinaryColor;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(p, color) in pixels {
            let (Ok(x), Ok(y)) = (u32::try_from(p.x), u32::try_from(p.y)) else {
                continue;
            };
            if x < self.width && y < self.height {
                self.on[(y * self.width + x) as usize] = color.is_on();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};

    use super::*;

    #[test]
    fn drawing_sets_pixels_and_ignores_out_of_bounds() {
        let mut buf = MonoBuffer::new(8, 4);
        Rectangle::new(Point::new(6, 2), Size::new(5, 5))
            .into_styled(PrimitiveStyle::with_fill(BinaryColor::On))
            .draw(&mut buf)
            .expect("infallible");
        assert_eq!(buf.lit_in(0, 0, 8, 4), 4);
        assert!(buf.is_on(7, 3) && !buf.is_on(5, 3));
        let rgb = buf.to_rgb(3);
        assert_eq!(rgb.dimensions(), (24, 12));
        assert_eq!(*rgb.get_pixel(23, 11), LIT);
        assert_eq!(*rgb.get_pixel(0, 0), DARK);
    }
}
