//! Which frames are worth scoring: the motion gate and the timelapse cadence.
//!
//! The motion gate shrinks each frame to a small grey image (64 px wide by default, which
//! averages away sensor noise and costs microseconds), compares it pixel by pixel with a running
//! reference, and calls it motion when more than a fraction of the pixels changed by more than a
//! threshold. The reference follows the scene as an exponential moving average, so slow light
//! changes (dawn, clouds) are absorbed while an animal stepping in is not. Timelapse fires every N
//! seconds of capture time whatever moves, as camera traps do to record the empty scene.
//! [`Gate`] combines the two.
//!
//! The gate also says where the frame changed: the changed pixels of the small image grouped
//! into regions (pixels with up to [`REGION_GAP`] still ones between belong together, so a bird's body and a
//! wing separated by a still patch stay one region), the largest region's bounding box padded
//! by one small pixel, in frame coordinates. The field loop classifies that region's crop
//! ([`crate::crop`]) instead of the whole frame, where the animal is small.

use std::collections::VecDeque;
use std::time::Duration;

use image::RgbImage;

use super::config::{MotionConfig, MotionMode};
use crate::crop::{NormalizedBox, PixelRect};

/// Changed pixels of the small image with at most this many still pixels between them (in x
/// and in y) belong to one region.
pub const REGION_GAP: u32 = 2;

/// Motion gate parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MotionSettings {
    /// Width of the grey image frames are compared at, in pixels (8 to 1024); the height
    /// follows the aspect ratio.
    pub width: u32,
    /// A pixel changed when its grey level differs from the reference by more than this (of 255).
    pub pixel_threshold: u8,
    /// Motion when more than this fraction of the pixels changed (0 to 1).
    pub changed_fraction: f32,
    /// Weight of a new frame in the running reference (0 exclusive to 1; 1 replaces it).
    pub adapt: f32,
}

impl Default for MotionSettings {
    /// 64 px wide; a change of more than 25 levels (10 %) on more than 1 % of the pixels, about
    /// a bird of 6×6 px in a 64×48 image; the reference moves a tenth of the way to each frame.
    fn default() -> Self {
        Self {
            width: 64,
            pixel_threshold: 25,
            changed_fraction: 0.01,
            adapt: 0.1,
        }
    }
}

/// A gate setting out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("motion gate: {setting} = {value} is out of range; expected {expected}")]
pub struct MotionSettingsError {
    /// The setting's name.
    pub setting: &'static str,
    /// The value given.
    pub value: String,
    /// The accepted range.
    pub expected: &'static str,
}

impl MotionSettings {
    /// Checks every setting's range.
    pub fn validate(&self) -> Result<(), MotionSettingsError> {
        let bad = |setting, value: String, expected| {
            Err(MotionSettingsError {
                setting,
                value,
                expected,
            })
        };
        if !(8..=1024).contains(&self.width) {
            return bad("width", self.width.to_string(), "8 to 1024 pixels");
        }
        if !(0.0..=1.0).contains(&self.changed_fraction) {
            return bad(
                "changed_fraction",
                self.changed_fraction.to_string(),
                "0 to 1",
            );
        }
        if !(self.adapt > 0.0 && self.adapt <= 1.0) {
            return bad("adapt", self.adapt.to_string(), "above 0, at most 1");
        }
        Ok(())
    }
}

/// What the motion gate saw in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Motion {
    /// Fraction of the small image's pixels that changed.
    pub changed: f32,
    /// Whether that counts as motion. The first frame (and the first after a size change) always
    /// does: there is nothing to compare it with, and it may hold the animal that woke the camera.
    pub moved: bool,
    /// Where the frame changed most: the largest region of changed pixels, padded by one small
    /// pixel. `None` when nothing changed, and for a first frame (no reference: all of it is
    /// new).
    pub region: Option<NormalizedBox>,
}

/// The motion gate: a running grey reference of the scene.
#[derive(Debug, Clone)]
pub struct MotionGate {
    settings: MotionSettings,
    /// The reference image, its size, and the frame size it was made from.
    reference: Option<Reference>,
}

#[derive(Debug, Clone)]
struct Reference {
    frame_size: (u32, u32),
    grey: Vec<f32>,
}

impl MotionGate {
    /// A gate with no reference yet.
    pub fn new(settings: MotionSettings) -> Result<Self, MotionSettingsError> {
        settings.validate()?;
        Ok(Self {
            settings,
            reference: None,
        })
    }

    /// Compares `image` with the reference, then moves the reference towards it.
    pub fn observe(&mut self, image: &RgbImage) -> Motion {
        let grey = small_grey(image, self.settings.width);
        let frame_size = image.dimensions();
        let Some(reference) = self
            .reference
            .as_mut()
            .filter(|r| r.frame_size == frame_size)
        else {
            self.reference = Some(Reference { frame_size, grey });
            return Motion {
                changed: 1.0,
                moved: true,
                region: None,
            };
        };
        let threshold = f32::from(self.settings.pixel_threshold);
        let mask: Vec<bool> = grey
            .iter()
            .zip(&reference.grey)
            .map(|(g, r)| (*g - *r).abs() > threshold)
            .collect();
        let changed = mask.iter().filter(|&&m| m).count() as f32 / grey.len() as f32;
        for (r, g) in reference.grey.iter_mut().zip(&grey) {
            *r += self.settings.adapt * (g - *r);
        }
        let grid = Grid::of(frame_size, self.settings.width);
        Motion {
            changed,
            moved: changed > self.settings.changed_fraction,
            region: largest_region(&mask, grid).map(|cells| grid.to_frame(cells)),
        }
    }
}

/// The small image's size and the frame's.
#[derive(Debug, Clone, Copy)]
struct Grid {
    width: u32,
    height: u32,
    frame: (u32, u32),
}

impl Grid {
    /// The small image [`small_grey`] makes of a frame of `frame` size at `width`.
    fn of(frame: (u32, u32), width: u32) -> Self {
        let (width, height) = small_size(frame.0, frame.1, width);
        Self {
            width,
            height,
            frame,
        }
    }

    /// `cells` (small pixels, inclusive corners) padded by one small pixel, in the frame.
    fn to_frame(self, cells: CellBox) -> NormalizedBox {
        let (w, h) = self.frame;
        let (left, _) = span(cells.x0.saturating_sub(1), self.width, w);
        let (_, right) = span((cells.x1 + 1).min(self.width - 1), self.width, w);
        let (top, _) = span(cells.y0.saturating_sub(1), self.height, h);
        let (_, bottom) = span((cells.y1 + 1).min(self.height - 1), self.height, h);
        let rect = PixelRect {
            left,
            top,
            width: right - left,
            height: bottom - top,
        };
        NormalizedBox::of_pixels(rect, w, h)
    }
}

/// A rectangle of small pixels, corners inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CellBox {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
}

/// The bounding box of the region of `mask` (row-major, `grid`'s size) with the most changed
/// pixels, pixels with up to [`REGION_GAP`] still ones between joined; the first such region in
/// row order on a tie. `None` without a changed pixel.
fn largest_region(mask: &[bool], grid: Grid) -> Option<CellBox> {
    let (w, h) = (grid.width as usize, grid.height as usize);
    let reach = REGION_GAP as usize + 1;
    let mut seen = vec![false; mask.len()];
    let mut best: Option<(usize, CellBox)> = None;
    let mut queue = VecDeque::new();
    for start in 0..mask.len() {
        if !mask[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        queue.push_back(start);
        let (mut count, mut cells) = (0, None::<CellBox>);
        while let Some(i) = queue.pop_front() {
            let (x, y) = (i % w, i / w);
            count += 1;
            let (x32, y32) = (x as u32, y as u32);
            cells = Some(cells.map_or(
                CellBox {
                    x0: x32,
                    y0: y32,
                    x1: x32,
                    y1: y32,
                },
                |c| CellBox {
                    x0: c.x0.min(x32),
                    y0: c.y0.min(y32),
                    x1: c.x1.max(x32),
                    y1: c.y1.max(y32),
                },
            ));
            for ny in y.saturating_sub(reach)..(y + reach + 1).min(h) {
                for nx in x.saturating_sub(reach)..(x + reach + 1).min(w) {
                    let n = ny * w + nx;
                    if mask[n] && !seen[n] {
                        seen[n] = true;
                        queue.push_back(n);
                    }
                }
            }
        }
        if best.is_none_or(|(most, _)| count > most) {
            best = cells.map(|c| (count, c));
        }
    }
    best.map(|(_, cells)| cells)
}

/// The size of the small image of a `w` × `h` frame at `width`: `width` columns (or fewer,
/// never upscaled), rows in proportion.
fn small_size(w: u32, h: u32, width: u32) -> (u32, u32) {
    let out_w = width.min(w).max(1);
    let out_h = ((u64::from(h) * u64::from(out_w) + u64::from(w) / 2) / u64::from(w.max(1)))
        .clamp(1, u64::from(h.max(1))) as u32;
    (out_w, out_h)
}

/// `image` as BT.601 luma, box-averaged down to [`small_size`].
fn small_grey(image: &RgbImage, width: u32) -> Vec<f32> {
    let (w, h) = image.dimensions();
    let (out_w, out_h) = small_size(w, h, width);
    let mut out = Vec::with_capacity((out_w * out_h) as usize);
    for oy in 0..out_h {
        let (y0, y1) = span(oy, out_h, h);
        for ox in 0..out_w {
            let (x0, x1) = span(ox, out_w, w);
            let mut sum = 0.0f32;
            for y in y0..y1 {
                for x in x0..x1 {
                    let [r, g, b] = image.get_pixel(x, y).0;
                    sum += 0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b);
                }
            }
            out.push(sum / ((y1 - y0) * (x1 - x0)) as f32);
        }
    }
    out
}

/// The source pixels `[start, end)` that output cell `i` of `n` covers in a length `len`.
fn span(i: u32, n: u32, len: u32) -> (u32, u32) {
    let start = (u64::from(i) * u64::from(len) / u64::from(n)) as u32;
    let end = (u64::from(i + 1) * u64::from(len) / u64::from(n)) as u32;
    (start, end.max(start + 1).min(len.max(1)))
}

/// Fires every `every` of capture time, whatever the scene does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timelapse {
    every: i64,
    next_due: Option<i64>,
}

impl Timelapse {
    /// A cadence of `every` (whole seconds, at least one), or `None` for less than a second.
    pub fn new(every: Duration) -> Option<Self> {
        let every = i64::try_from(every.as_secs()).ok().filter(|&s| s >= 1)?;
        Some(Self {
            every,
            next_due: None,
        })
    }

    /// Whether the frame captured at `capture_secs` (Unix seconds) is due. The first frame is;
    /// then the first frame at or after each period. A clock set back by more than a period
    /// restarts the cadence instead of going quiet until the old due time.
    pub fn due(&mut self, capture_secs: i64) -> bool {
        let fire = match self.next_due {
            None => true,
            Some(next) => capture_secs >= next || capture_secs + self.every < next,
        };
        if fire {
            self.next_due = Some(capture_secs + self.every);
        }
        fire
    }
}

/// Why a frame passed the [`Gate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    /// No gate configured: every frame is scored.
    Always,
    /// The motion gate fired, with the fraction of pixels that changed and where the frame
    /// changed most ([`Motion::region`]).
    Motion {
        /// Fraction of the small image's pixels that changed.
        changed: f32,
        /// The largest changed region.
        region: Option<NormalizedBox>,
    },
    /// The timelapse cadence was due (and there was no motion).
    Timelapse,
}

/// The motion gate and/or the timelapse cadence; with neither, every frame passes.
#[derive(Debug, Clone)]
pub struct Gate {
    motion: Option<MotionGate>,
    timelapse: Option<Timelapse>,
}

impl Gate {
    /// The gate a profile's `[motion]` asks for: off (every frame passes), the motion gate,
    /// or the timelapse cadence.
    pub fn for_profile(m: &MotionConfig) -> Result<Self, MotionSettingsError> {
        if !m.enabled {
            return Ok(Self::new(None, None));
        }
        Ok(match m.mode {
            MotionMode::Motion => {
                let settings = MotionSettings {
                    width: m.downscale_width,
                    pixel_threshold: m.pixel_threshold,
                    changed_fraction: m.changed_fraction as f32,
                    ..MotionSettings::default()
                };
                Self::new(Some(MotionGate::new(settings)?), None)
            }
            MotionMode::Timelapse => {
                let every = Duration::from_secs(u64::from(m.timelapse_interval_s));
                Self::new(None, Timelapse::new(every))
            }
        })
    }

    /// A gate from its optional parts.
    pub fn new(motion: Option<MotionGate>, timelapse: Option<Timelapse>) -> Self {
        Self { motion, timelapse }
    }

    /// Why the frame should be scored, or `None` to skip it. Both parts see every frame, so
    /// the motion reference and the cadence stay current.
    pub fn check(&mut self, image: &RgbImage, capture_secs: i64) -> Option<Trigger> {
        let motion = self.motion.as_mut().map(|m| m.observe(image));
        let due = self.timelapse.as_mut().map(|t| t.due(capture_secs));
        match (motion, due) {
            (None, None) => Some(Trigger::Always),
            (Some(m), _) if m.moved => Some(Trigger::Motion {
                changed: m.changed,
                region: m.region,
            }),
            (_, Some(true)) => Some(Trigger::Timelapse),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textured outdoor-like scene: a vertical gradient with a darker band.
    fn scene() -> RgbImage {
        RgbImage::from_fn(320, 240, |x, y| {
            let g = (60 + y / 2 + (x % 7)) as u8;
            if (100..120).contains(&y) {
                image::Rgb([g / 2, g / 2, g / 3])
            } else {
                image::Rgb([g, g + 10, g / 2])
            }
        })
    }

    /// The scene with deterministic per-pixel noise of up to ±`amp` levels.
    fn noisy(amp: i32, seed: u32) -> RgbImage {
        let mut img = scene();
        for (x, y, p) in img.enumerate_pixels_mut() {
            let h = (x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663) ^ seed)
                .wrapping_mul(2_654_435_761);
            let n = (h >> 16) as i32 % (2 * amp + 1) - amp;
            for c in &mut p.0 {
                *c = (i32::from(*c) + n).clamp(0, 255) as u8;
            }
        }
        img
    }

    fn gate() -> MotionGate {
        MotionGate::new(MotionSettings::default()).expect("valid settings")
    }

    #[test]
    fn the_first_frame_counts_as_motion_and_an_identical_one_does_not() {
        let mut g = gate();
        assert!(g.observe(&scene()).moved);
        let m = g.observe(&scene());
        assert_eq!(
            m,
            Motion {
                changed: 0.0,
                moved: false,
                region: None
            }
        );
    }

    #[test]
    fn sensor_noise_is_not_motion() {
        let mut g = gate();
        g.observe(&noisy(20, 0));
        for seed in 1..10 {
            let m = g.observe(&noisy(20, seed));
            assert!(!m.moved, "noise frame {seed}: {m:?}");
        }
    }

    #[test]
    fn an_animal_stepping_in_is_motion() {
        let mut g = gate();
        g.observe(&scene());
        let mut with_animal = scene();
        for y in 150..200 {
            for x in 40..110 {
                with_animal.put_pixel(x, y, image::Rgb([20, 15, 10]));
            }
        }
        let m = g.observe(&with_animal);
        assert!(m.moved && m.changed > 0.03, "{m:?}");
        // The animal is columns 40..110, rows 150..200 of 320 × 240: the small image's pixels
        // are 5 frame pixels wide, and the region is padded by one of them.
        let region = m.region.expect("a region").to_array();
        let want = [35.0 / 320.0, 145.0 / 240.0, 80.0 / 320.0, 60.0 / 240.0];
        for (got, want) in region.iter().zip(want) {
            assert!((got - want).abs() <= 5.0 / 240.0, "{region:?} vs {want:?}");
        }
    }

    #[test]
    fn the_region_is_the_largest_group_of_changes_with_nearby_pixels_joined() {
        let mut g = gate();
        g.observe(&scene());
        let mut changed = scene();
        let mut paint = |xs: std::ops::Range<u32>, ys: std::ops::Range<u32>| {
            for y in ys {
                for x in xs.clone() {
                    changed.put_pixel(x, y, image::Rgb([250, 250, 250]));
                }
            }
        };
        // A small change at the top left; a bird at the bottom right in two parts 2 small
        // pixels (10 frame pixels) apart, together larger than the first.
        paint(10..30, 10..30);
        paint(200..240, 160..190);
        paint(250..275, 160..185);
        let region = g.observe(&changed).region.expect("a region").to_array();
        let (left, right) = (region[0] * 320.0, (region[0] + region[2]) * 320.0);
        assert!((190.0..=200.0).contains(&left), "{region:?}");
        assert!((275.0..=285.0).contains(&right), "{region:?}");
        // Nothing changed: no region.
        let mut still = gate();
        still.observe(&scene());
        assert_eq!(still.observe(&scene()).region, None);
    }

    #[test]
    fn a_slow_light_change_is_absorbed_by_the_reference() {
        let mut g = gate();
        let base = scene();
        g.observe(&base);
        for step in 1..=30u8 {
            let mut brighter = base.clone();
            for p in brighter.pixels_mut() {
                p.0 = p.0.map(|c| c.saturating_add(step));
            }
            assert!(!g.observe(&brighter).moved, "step {step}");
        }
    }

    #[test]
    fn a_new_frame_size_restarts_the_reference() {
        let mut g = gate();
        g.observe(&scene());
        assert!(g.observe(&RgbImage::new(64, 48)).moved);
    }

    #[test]
    fn bad_settings_are_named() {
        let err = MotionGate::new(MotionSettings {
            adapt: 0.0,
            ..MotionSettings::default()
        })
        .expect_err("adapt 0");
        assert!(err.to_string().contains("adapt = 0"), "{err}");
    }

    #[test]
    fn timelapse_fires_once_per_period_of_capture_time() {
        let mut t = Timelapse::new(Duration::from_secs(60)).expect("valid");
        let fired: Vec<i64> = (0..=200).step_by(10).filter(|&s| t.due(1000 + s)).collect();
        assert_eq!(fired, [0, 60, 120, 180]);
        // The clock jumps back an hour: the cadence restarts.
        assert!(t.due(1000 - 3600));
        assert!(!t.due(1000 - 3600 + 30));
        assert!(Timelapse::new(Duration::from_millis(500)).is_none());
    }

    #[test]
    fn the_gate_passes_motion_or_timelapse_frames_only() {
        let mut g = Gate::new(Some(gate()), Timelapse::new(Duration::from_secs(60)));
        assert_eq!(
            g.check(&scene(), 0),
            Some(Trigger::Motion {
                changed: 1.0,
                region: None
            })
        );
        assert_eq!(g.check(&scene(), 10), None);
        assert_eq!(g.check(&scene(), 60), Some(Trigger::Timelapse));
        assert_eq!(
            Gate::new(None, None).check(&scene(), 0),
            Some(Trigger::Always)
        );
    }
}
