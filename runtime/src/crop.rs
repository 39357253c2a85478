//! Crops before the classifier: how a box around an animal becomes the image the classifier
//! sees. One rule for every source of boxes (a MegaDetector batch file in `classify
//! --detections`, the motion gate's changed region in the field loop, the boxes of a training
//! set in `xrvlm-train`), so that what a device classifies is cut the way training's images
//! were: a square around the box's centre whose side is the box's longer side times
//! [`CropRule::expansion`], moved (never shrunk) to stay inside the image. The square then goes
//! through the bundle's preprocessing like any frame.
//!
//! Why a square with a margin: the classifier was trained on detector crops that frame the
//! bird in the middle of a square (the synthetic world's `crop` framing: the square's side is
//! 1.146 times the bird's tight box's longer side at the median, 1.03–1.31 from p10 to p90, on
//! 504 training frames of the demo's world); a tight, non-square box resized to the model's
//! input would stretch the bird and frame it unlike anything training saw.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::preprocess;

/// A box as fractions of the image: its top-left corner (`x`, `y`) and its size, the
/// MegaDetector batch format's `bbox` `[x, y, width, height]` and Camtrap DP's `bboxX`,
/// `bboxY`, `bboxWidth`, `bboxHeight`. One that exists is finite, has an area and lies inside
/// the image. It reads and writes as MegaDetector's array of four numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NormalizedBox {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
}

/// How far a box's edges may lie outside [0, 1] and still be taken (clamped): detectors
/// round their coordinates.
const EDGE_SLACK: f64 = 1e-3;

/// Why numbers are not a box.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BoxError {
    /// A coordinate is NaN or infinite.
    #[error("box {0:?} has a coordinate that is not a finite number")]
    NotFinite([f64; 4]),
    /// Width or height is zero or negative.
    #[error("box {0:?} has no area: width and height must be greater than 0")]
    Empty([f64; 4]),
    /// The box reaches outside the image.
    #[error(
        "box {0:?} lies outside the image: expected x and y at least 0 and x + width, \
         y + height at most 1 (fractions of the image)"
    )]
    Outside([f64; 4]),
}

impl NormalizedBox {
    /// The box `[x, y, width, height]` (fractions of the image), checked; edges up to
    /// [`EDGE_SLACK`] outside the image are clamped to it.
    pub fn new(x: f64, y: f64, width: f64, height: f64) -> Result<Self, BoxError> {
        let raw = [x, y, width, height];
        if raw.iter().any(|v| !v.is_finite()) {
            return Err(BoxError::NotFinite(raw));
        }
        if width <= 0.0 || height <= 0.0 {
            return Err(BoxError::Empty(raw));
        }
        let inside = |start: f64, size: f64| {
            start >= -EDGE_SLACK && start + size <= 1.0 + EDGE_SLACK && start < 1.0
        };
        if !(inside(x, width) && inside(y, height)) {
            return Err(BoxError::Outside(raw));
        }
        // Within the image the numbers stay as given; only a box past an edge is recomputed.
        let clamp = |start: f64, size: f64| match start >= 0.0 && start + size <= 1.0 {
            true => (start, size),
            false => (start.max(0.0), (start + size).min(1.0) - start.max(0.0)),
        };
        let ((x, width), (y, height)) = (clamp(x, width), clamp(y, height));
        Ok(Self {
            x,
            y,
            width,
            height,
        })
    }

    /// The box of a pixel rectangle of an `image_width` × `image_height` image.
    pub fn of_pixels(rect: PixelRect, image_width: u32, image_height: u32) -> Self {
        let (w, h) = (f64::from(image_width), f64::from(image_height));
        Self {
            x: f64::from(rect.left) / w,
            y: f64::from(rect.top) / h,
            width: f64::from(rect.width) / w,
            height: f64::from(rect.height) / h,
        }
    }

    /// The whole image.
    pub fn whole() -> Self {
        Self {
            x: 0.0,
            y: 0.0,
            width: 1.0,
            height: 1.0,
        }
    }

    /// `[x, y, width, height]`.
    pub fn to_array(self) -> [f64; 4] {
        [self.x, self.y, self.width, self.height]
    }

    /// Width as a fraction of the image's.
    pub fn width(self) -> f64 {
        self.width
    }

    /// Height as a fraction of the image's.
    pub fn height(self) -> f64 {
        self.height
    }

    /// The fraction of the image the box covers.
    pub fn area(self) -> f64 {
        self.width * self.height
    }
}

// A box's numbers are finite (never NaN), so equality is an equivalence and boxes can key sets
// of training samples; hashing adds 0.0 first so that −0 and +0, which compare equal, hash alike.
impl Eq for NormalizedBox {}

impl std::hash::Hash for NormalizedBox {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for v in self.to_array() {
            (v + 0.0).to_bits().hash(state);
        }
    }
}

impl Serialize for NormalizedBox {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_array().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for NormalizedBox {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let [x, y, width, height] = <[f64; 4]>::deserialize(deserializer)?;
        Self::new(x, y, width, height).map_err(serde::de::Error::custom)
    }
}

/// A rectangle of pixels inside an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PixelRect {
    /// Column of the left edge.
    pub left: u32,
    /// Row of the top edge.
    pub top: u32,
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
}

/// How a box becomes a square crop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CropRule {
    /// The square's side over the box's longer side.
    pub expansion: f64,
    /// The smallest side, in pixels (a box of a few pixels still gives the resize something
    /// to work from), unless the image is smaller.
    pub min_side: u32,
}

impl CropRule {
    /// The rule of every crop in this workspace: a square of 1.15 times the box's longer
    /// side, as the training crops frame the bird (see the module doc).
    pub const DETECTION: CropRule = CropRule {
        expansion: 1.15,
        min_side: 32,
    };

    /// The square crop of `bbox` in an `image_width` × `image_height` image: centred on the
    /// box, side `expansion` × the box's longer side in pixels (at least `min_side`, at most
    /// the image's shorter side), moved inside the image where it would cross an edge.
    pub fn square(&self, bbox: NormalizedBox, image_width: u32, image_height: u32) -> PixelRect {
        let (w, h) = (f64::from(image_width), f64::from(image_height));
        let longer = (bbox.width * w).max(bbox.height * h);
        let side = (longer * self.expansion)
            .round()
            .max(f64::from(self.min_side))
            .min(w.min(h))
            .max(1.0);
        let centre_x = (bbox.x + bbox.width / 2.0) * w;
        let centre_y = (bbox.y + bbox.height / 2.0) * h;
        let start = |centre: f64, extent: f64| {
            (centre - side / 2.0).round().clamp(0.0, extent - side) as u32
        };
        PixelRect {
            left: start(centre_x, w),
            top: start(centre_y, h),
            width: side as u32,
            height: side as u32,
        }
    }

    /// The square crop of `bbox` cut from `image` (an empty image gives an empty crop).
    pub fn cut(&self, image: &RgbImage, bbox: NormalizedBox) -> RgbImage {
        let rect = self.square(bbox, image.width(), image.height());
        preprocess::crop(image, rect.left, rect.top, rect.width, rect.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bbox(x: f64, y: f64, w: f64, h: f64) -> NormalizedBox {
        NormalizedBox::new(x, y, w, h).unwrap()
    }

    #[test]
    fn a_box_in_the_middle_gets_a_centred_square_of_its_longer_side_with_a_margin() {
        // 200 × 100 pixels of a 1000 × 500 image, centred at (500, 250): a side of 230.
        let rect = CropRule::DETECTION.square(bbox(0.4, 0.4, 0.2, 0.2), 1000, 500);
        assert_eq!(
            rect,
            PixelRect {
                left: 385,
                top: 135,
                width: 230,
                height: 230
            }
        );
    }

    #[test]
    fn a_box_at_an_edge_moves_the_square_inside_without_shrinking_it() {
        let rect = CropRule::DETECTION.square(bbox(0.0, 0.9, 0.1, 0.1), 1280, 720);
        assert_eq!((rect.left, rect.width, rect.height), (0, 147, 147));
        assert_eq!(rect.top + rect.height, 720);
    }

    #[test]
    fn the_square_is_at_most_the_shorter_side_and_at_least_the_minimum() {
        let whole = CropRule::DETECTION.square(NormalizedBox::whole(), 1920, 1080);
        assert_eq!((whole.width, whole.height, whole.top), (1080, 1080, 0));
        assert_eq!(whole.left, 420);
        let tiny = CropRule::DETECTION.square(bbox(0.5, 0.5, 0.001, 0.001), 1920, 1080);
        assert_eq!((tiny.width, tiny.height), (32, 32));
        let small_image = CropRule::DETECTION.square(bbox(0.5, 0.5, 0.1, 0.1), 20, 10);
        assert_eq!((small_image.width, small_image.height), (10, 10));
    }

    #[test]
    fn the_cut_holds_the_pixels_of_the_square() {
        let image = RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let rule = CropRule {
            expansion: 1.0,
            min_side: 1,
        };
        let cut = rule.cut(&image, NormalizedBox::of_pixels(rect(10, 20, 8, 4), 64, 48));
        assert_eq!(cut.dimensions(), (8, 8));
        // Centre (14, 22), side 8: columns 10..18, rows 18..26.
        assert_eq!(cut.get_pixel(0, 0).0, [10, 18, 7]);
        assert_eq!(cut.get_pixel(7, 7).0, [17, 25, 7]);
    }

    fn rect(left: u32, top: u32, width: u32, height: u32) -> PixelRect {
        PixelRect {
            left,
            top,
            width,
            height,
        }
    }

    #[test]
    fn bad_boxes_are_refused_with_what_is_wrong() {
        let err = |x, y, w, h| NormalizedBox::new(x, y, w, h).unwrap_err().to_string();
        assert!(err(f64::NAN, 0.0, 0.1, 0.1).contains("not a finite number"));
        assert!(err(0.1, 0.1, 0.0, 0.2).contains("no area"));
        assert!(err(0.1, 0.1, 0.2, -0.2).contains("no area"));
        assert!(err(0.9, 0.1, 0.2, 0.2).contains("outside the image"));
        assert!(err(-0.1, 0.1, 0.2, 0.2).contains("outside the image"));
        assert!(err(1.0, 0.0, 0.0001, 0.1).contains("outside the image"));
        // Rounding past an edge is clamped.
        let b = NormalizedBox::new(-0.0005, 0.5, 0.3, 0.5004).unwrap();
        assert_eq!(b.to_array(), [0.0, 0.5, 0.2995, 0.5]);
        let parsed: Result<NormalizedBox, _> = serde_json::from_str("[0.5, 0.5, 0.6, 0.1]");
        assert!(parsed
            .unwrap_err()
            .to_string()
            .contains("outside the image"));
    }
}
