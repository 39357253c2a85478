//! What the field loop classifies in a frame that passed the gate: the square crop of the
//! motion gate's changed region, cut by the workspace's one crop rule
//! ([`CropRule::DETECTION`]), or the whole frame. The whole frame when the gate gives no region
//! (the first frame, a timelapse frame, no gate at all) and when the region covers at least
//! [`WHOLE_FRAME_AREA`] of the frame: an animal that fills the frame is seen whole, and its
//! crop would be most of the frame anyway. The subject's box goes into the log with the
//! frame's record (Camtrap DP's `bboxX`/`bboxY`/`bboxWidth`/`bboxHeight`) and onto the saved
//! frame ([`mark`]).

use std::borrow::Cow;

use image::{Rgb, RgbImage};

use super::motion::Trigger;
use crate::crop::{CropRule, NormalizedBox};

/// A changed region covering at least this fraction of the frame's area is classified as
/// the whole frame.
pub const WHOLE_FRAME_AREA: f64 = 0.5;

/// What is classified.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Subject {
    /// The whole frame.
    Whole,
    /// The crop of this box (the motion gate's changed region).
    Region(NormalizedBox),
}

impl Subject {
    /// The subject of a frame the gate let through for `trigger`.
    pub fn of(trigger: Trigger) -> Self {
        match trigger {
            Trigger::Motion {
                region: Some(region),
                ..
            } if region.area() < WHOLE_FRAME_AREA => Self::Region(region),
            _ => Self::Whole,
        }
    }

    /// The region, if the subject is one.
    pub fn region(self) -> Option<NormalizedBox> {
        match self {
            Self::Whole => None,
            Self::Region(region) => Some(region),
        }
    }

    /// The image to classify: the frame itself, or its crop of the region.
    pub fn image(self, frame: &RgbImage) -> Cow<'_, RgbImage> {
        match self {
            Self::Whole => Cow::Borrowed(frame),
            Self::Region(region) => Cow::Owned(CropRule::DETECTION.cut(frame, region)),
        }
    }
}

/// Outline colour of a region drawn on a saved frame.
const MARK: Rgb<u8> = Rgb([255, 210, 0]);

/// `frame` with `region` outlined (a line about 1/300 of the frame's width, at least 2 pixels),
/// for the saved copy a person looks at.
pub fn mark(frame: &RgbImage, region: NormalizedBox) -> RgbImage {
    let mut marked = frame.clone();
    let (w, h) = frame.dimensions();
    if w == 0 || h == 0 {
        return marked;
    }
    let [x, y, bw, bh] = region.to_array();
    let to_px = |v: f64, extent: u32| ((v * f64::from(extent)).round() as u32).min(extent - 1);
    let (left, top) = (to_px(x, w), to_px(y, h));
    let (right, bottom) = (to_px(x + bw, w), to_px(y + bh, h));
    let line = (w / 300).max(2);
    for py in top..=bottom {
        for px in left..=right {
            let near_edge =
                px < left + line || px + line > right || py < top + line || py + line > bottom;
            if near_edge {
                marked.put_pixel(px, py, MARK);
            }
        }
    }
    marked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(x: f64, y: f64, w: f64, h: f64) -> NormalizedBox {
        NormalizedBox::new(x, y, w, h).unwrap()
    }

    fn motion(region: Option<NormalizedBox>) -> Trigger {
        Trigger::Motion {
            changed: 0.05,
            region,
        }
    }

    #[test]
    fn a_small_region_is_cropped_and_a_large_one_or_none_is_the_whole_frame() {
        let small = region(0.1, 0.2, 0.2, 0.3);
        assert_eq!(Subject::of(motion(Some(small))), Subject::Region(small));
        assert_eq!(
            Subject::of(motion(Some(region(0.0, 0.0, 0.8, 0.7)))),
            Subject::Whole
        );
        assert_eq!(Subject::of(motion(None)), Subject::Whole);
        assert_eq!(Subject::of(Trigger::Timelapse), Subject::Whole);
        assert_eq!(Subject::of(Trigger::Always), Subject::Whole);
    }

    #[test]
    fn the_image_is_the_crop_rules_square() {
        let frame = RgbImage::from_fn(400, 300, |x, y| Rgb([x as u8, y as u8, 0]));
        let r = region(0.5, 0.5, 0.1, 0.1);
        let crop = Subject::Region(r).image(&frame);
        assert_eq!(*crop, CropRule::DETECTION.cut(&frame, r));
        assert_eq!(crop.dimensions(), (46, 46));
        assert_eq!(Subject::Whole.image(&frame).dimensions(), (400, 300));
    }

    #[test]
    fn a_marked_frame_has_the_outline_and_nothing_else_changed() {
        let frame = RgbImage::from_pixel(100, 80, Rgb([10, 20, 30]));
        let marked = mark(&frame, region(0.2, 0.25, 0.5, 0.5));
        assert_eq!(*marked.get_pixel(20, 20), MARK);
        assert_eq!(*marked.get_pixel(70, 60), MARK);
        assert_eq!(*marked.get_pixel(45, 40), Rgb([10, 20, 30]));
        assert_eq!(*marked.get_pixel(5, 5), Rgb([10, 20, 30]));
    }
}
