//! One camera frame of the synthetic world: a backdrop ([`super::backdrop`]), an optional bird in
//! a random pose, foreground occluders, then lighting, sensor noise and the night (infrared) look
//! ([`super::lighting`]).
//!
//! The frame also reports what a caption may say: which bird parts stay visible after clipping by
//! the frame and occlusion by foreground leaves or branches, the pose, the per-image body colour and
//! what the backdrop holds. Visibility is measured by counting part labels twice: in the frame as
//! rendered, and on an off-screen canvas holding the whole bird with nothing in front of it.

use image::RgbImage;
use rand::Rng;

use super::backdrop::{jitter, paint_backdrop, paint_leaf, pick_jittered, Backdrop, BARK};
use super::bird::{draw_bird, BirdLook, Part, Pose, EXTENT};
use super::lighting::{is_bird, Exposure};
use super::palette::{shade, BodyColour};
use super::random::{between, chance, pick, uniform};
use super::render::{Canvas, Paint, PixelBox, Shape};
use super::species::Attributes;

/// Label of foreground occluders in the label buffer.
const OCCLUDER: u8 = 255;

/// A part counts as visible when at least this fraction of its unobstructed pixels shows...
const VISIBLE_FRACTION: f32 = 0.6;
/// ...and at least this many pixels show.
const MIN_VISIBLE_PIXELS: usize = 2;

// === Pose and perch ===
/// Bird scale (pixels per body half-length) as a fraction of the image size, whole scene.
pub(crate) const SCENE_SCALE: (f32, f32) = (0.12, 0.17);
/// The same in a detector crop: the animal's box plus a margin fills most of the frame.
const CROP_SCALE: (f32, f32) = (0.2, 0.25);
/// Largest tilt either way, radians.
pub(crate) const MAX_TILT: f32 = 0.35;
/// Fraction of birds in flight (wing raised, legs tucked, no perch).
pub(crate) const FLYING_PROBABILITY: f64 = 0.3;
/// Fraction of birds placed at the frame's edge, partly out of frame.
const EDGE_PROBABILITY: f64 = 0.15;
/// Usual body centre range, as fractions of the image size: whole scene, then crop.
const SCENE_CENTRE_X: (f32, f32) = (0.42, 0.58);
const SCENE_CENTRE_Y: (f32, f32) = (0.52, 0.62);
const CROP_CENTRE_X: (f32, f32) = (0.46, 0.54);
const CROP_CENTRE_Y: (f32, f32) = (0.46, 0.54);
/// Body centre range along the edge axis for edge placements.
const EDGE_NEAR: (f32, f32) = (0.06, 0.2);
/// Probability that the head colour equals the body colour.
const SAME_HEAD_PROBABILITY: f64 = 0.5;
/// Perch width and how far it reaches past the feet, in bird units.
const PERCH_WIDTH: (f32, f32) = (0.18, 0.26);
const PERCH_REACH: (f32, f32) = (1.0, 2.5);
const MAX_PERCH_ANGLE: f32 = 0.25;
/// Empty frames keep a perch this often (the bird has just left).
pub(crate) const EMPTY_PERCH_PROBABILITY: f64 = 0.5;

// === Foreground occlusion ===
const OCCLUSION_PROBABILITY: f64 = 0.3;
const OCCLUDER_BRANCH_PROBABILITY: f64 = 0.3;
const OCCLUDER_LEAVES: (usize, usize) = (1, 3);
const OCCLUDER_LEAF_LENGTH: (f32, f32) = (0.07, 0.14);
const OCCLUDER_BRANCH_WIDTH: (f32, f32) = (0.03, 0.06);
/// Foreground leaves are darker (in shadow, closer to the lens).
const OCCLUDER_SHADE: f32 = 0.7;

/// How the camera frames the bird.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// The whole camera frame: a small bird (body about 30 % of the frame), sometimes at the
    /// frame's edge and partly out of it.
    #[default]
    Scene,
    /// A detector crop: a square box around the bird with a margin, as a two-stage pipeline
    /// (MegaDetector, then a classifier) hands the classifier; the bird is centred and about
    /// 1.5 times larger, never at the frame's edge (at most a wing or tail tip touches it).
    Crop,
}

impl Framing {
    /// Parses `scene` or `crop`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "scene" => Some(Self::Scene),
            "crop" => Some(Self::Crop),
            _ => None,
        }
    }

    fn scale(self) -> (f32, f32) {
        match self {
            Self::Scene => SCENE_SCALE,
            Self::Crop => CROP_SCALE,
        }
    }

    fn centre(self) -> ((f32, f32), (f32, f32)) {
        match self {
            Self::Scene => (SCENE_CENTRE_X, SCENE_CENTRE_Y),
            Self::Crop => (CROP_CENTRE_X, CROP_CENTRE_Y),
        }
    }

    fn edge_probability(self) -> f64 {
        match self {
            Self::Scene => EDGE_PROBABILITY,
            Self::Crop => 0.0,
        }
    }
}

/// What the frame shows of its bird.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BirdView {
    /// In flight (else perched).
    pub flying: bool,
    /// The per-image body colour.
    pub body: BodyColour,
    /// Visibility per [`Part`], indexed by `Part as usize`.
    visible: [bool; 16],
    /// Fraction of the bird's pixels inside the frame.
    pub in_frame: f32,
    /// Fraction of the frame's pixels the bird covers (before occlusion).
    pub area: f32,
    /// Fraction of its in-frame pixels hidden by foreground occluders.
    pub occluded: f32,
    /// The occluder in front of the bird was a branch (else leaves), if any.
    pub occluder_is_branch: bool,
    /// The tight box of the bird's pixels as rendered (in frame, not hidden by occluders);
    /// `None` when none shows.
    pub bbox: Option<PixelBox>,
}

impl BirdView {
    /// Whether enough of `part` shows to be described.
    pub fn is_visible(&self, part: Part) -> bool {
        self.visible[usize::from(part.label())]
    }
}

/// A rendered frame and what it shows.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The 8-bit RGB image.
    pub image: RgbImage,
    /// Rendered with the night (infrared grey) look.
    pub night: bool,
    /// The backdrop's contents.
    pub backdrop: Backdrop,
    /// The bird, or `None` for an empty frame.
    pub bird: Option<BirdView>,
}

/// Renders one `size`×`size` frame of `species` (or an empty frame) from `rng`.
pub fn render_frame<R: Rng>(
    rng: &mut R,
    species: Option<&Attributes>,
    size: u32,
    night: bool,
    framing: Framing,
) -> Frame {
    let s = size as f32;
    let mut canvas = Canvas::new(size as usize, size as usize, [0.0; 3]);
    let mut backdrop = paint_backdrop(&mut canvas, rng);
    let bird = species.map(|attrs| {
        let pose = sample_pose(rng, s, framing);
        let look = sample_look(rng);
        if !pose.flying {
            paint_perch(&mut canvas, rng, &pose, s, None);
            backdrop.branches += 1;
        }
        let colours = sample_colours(rng, look);
        draw_bird(&mut canvas, attrs, &colours, &pose);
        (pose, look.0, colours, *attrs)
    });
    if bird.is_none() && chance(rng, EMPTY_PERCH_PROBABILITY) {
        let pose = sample_pose(rng, s, framing);
        paint_perch(&mut canvas, rng, &pose, s, None);
        backdrop.branches += 1;
    }
    let before = canvas.label_counts();
    let centre = match &bird {
        Some((pose, ..)) => (pose.centre, EXTENT * pose.scale),
        None => (
            (uniform(rng, 0.2, 0.8) * s, uniform(rng, 0.2, 0.8) * s),
            0.3 * s,
        ),
    };
    let occluder_is_branch = paint_foreground(&mut canvas, rng, centre, s, &mut backdrop);
    let after = canvas.label_counts();
    let view = bird.map(|(pose, body, colours, attrs)| {
        let full = unobstructed(&attrs, &colours, &pose).label_counts();
        let counts = LabelCounts {
            before: &before,
            after: &after,
            full: &full,
            frame: s * s,
        };
        let bbox = canvas.label_box(is_bird);
        bird_view(&pose, body, &counts, occluder_is_branch, bbox)
    });
    Frame {
        image: Exposure::sample(rng, night).develop(&mut canvas, rng),
        night,
        backdrop,
        bird: view,
    }
}

fn sample_pose<R: Rng>(rng: &mut R, s: f32, framing: Framing) -> Pose {
    let (scale_range, (centre_x, centre_y)) = (framing.scale(), framing.centre());
    let scale = s * uniform(rng, scale_range.0, scale_range.1);
    let flying = chance(rng, FLYING_PROBABILITY);
    let facing_left = chance(rng, 0.5);
    let tilt = uniform(rng, -MAX_TILT, MAX_TILT);
    let mut cx = uniform(rng, centre_x.0, centre_x.1);
    let mut cy = uniform(rng, centre_y.0, centre_y.1);
    if chance(rng, framing.edge_probability()) {
        let near = uniform(rng, EDGE_NEAR.0, EDGE_NEAR.1);
        match between(rng, 0, 2) {
            0 => cx = near,
            1 => cx = 1.0 - near,
            _ => cy = 1.0 - near,
        }
    }
    Pose {
        centre: (cx * s, cy * s),
        scale,
        tilt,
        facing_left,
        flying,
    }
}

/// Body, head and wing colours of one image.
pub(crate) fn sample_look<R: Rng>(rng: &mut R) -> (BodyColour, BodyColour, BodyColour) {
    let body = pick(rng, &BodyColour::ALL);
    let other_head = pick(rng, &BodyColour::ALL);
    let head = if chance(rng, SAME_HEAD_PROBABILITY) {
        body
    } else {
        other_head
    };
    (body, head, pick(rng, &BodyColour::ALL))
}

/// The jittered paint colours of a look drawn by [`sample_look`].
pub(crate) fn sample_colours<R: Rng>(
    rng: &mut R,
    (body, head, wing): (BodyColour, BodyColour, BodyColour),
) -> BirdLook {
    BirdLook {
        body: jitter(rng, body.rgb()),
        head: jitter(rng, head.rgb()),
        wing: jitter(rng, wing.rgb()),
    }
}

/// A branch under the feet of `pose`, entering from the side of a frame whose longer side is
/// `s`, painted with `label` (if any) so that it can hide a bird drawn before it.
pub(crate) fn paint_perch<R: Rng>(
    canvas: &mut Canvas,
    rng: &mut R,
    pose: &Pose,
    s: f32,
    label: Option<u8>,
) {
    let feet = pose.feet();
    let angle = uniform(rng, -MAX_PERCH_ANGLE, MAX_PERCH_ANGLE);
    let dir = if chance(rng, 0.5) { 1.0 } else { -1.0 };
    let (dx, dy) = (dir * angle.cos(), dir * angle.sin());
    let reach = pose.scale * uniform(rng, PERCH_REACH.0, PERCH_REACH.1);
    let from = (feet.0 - dx * 2.0 * s, feet.1 - dy * 2.0 * s);
    let to = (feet.0 + dx * reach, feet.1 + dy * reach);
    let width = pose.scale * uniform(rng, PERCH_WIDTH.0, PERCH_WIDTH.1);
    let colour = pick_jittered(rng, &BARK);
    // Shift down by half the width so the feet rest on top.
    let shift = |p: (f32, f32)| (p.0, p.1 + width / 2.0);
    let paint = Paint {
        colour,
        alpha: 1.0,
        label,
    };
    canvas.fill(&Shape::segment(shift(from), shift(to), width), paint);
}

/// Foreground leaves or a branch near `(centre, radius)`, labelled as occluders and sized for a
/// frame of side `s`; returns whether it was a branch. Nothing is drawn most of the time.
pub(crate) fn paint_foreground<R: Rng>(
    canvas: &mut Canvas,
    rng: &mut R,
    (centre, radius): ((f32, f32), f32),
    s: f32,
    backdrop: &mut Backdrop,
) -> bool {
    if !chance(rng, OCCLUSION_PROBABILITY) {
        return false;
    }
    let near = |rng: &mut R| {
        (
            centre.0 + uniform(rng, -0.7, 0.7) * radius,
            centre.1 + uniform(rng, -0.7, 0.7) * radius,
        )
    };
    if chance(rng, OCCLUDER_BRANCH_PROBABILITY) {
        let through = near(rng);
        let angle = uniform(rng, 0.0, std::f32::consts::PI);
        let (dx, dy) = (2.0 * s * angle.cos(), 2.0 * s * angle.sin());
        let width = s * uniform(rng, OCCLUDER_BRANCH_WIDTH.0, OCCLUDER_BRANCH_WIDTH.1);
        let colour = shade(pick_jittered(rng, &BARK), OCCLUDER_SHADE);
        let segment = Shape::segment(
            (through.0 - dx, through.1 - dy),
            (through.0 + dx, through.1 + dy),
            width,
        );
        canvas.fill(&segment, Paint::labelled(colour, OCCLUDER));
        backdrop.branches += 1;
        return true;
    }
    let count = between(rng, OCCLUDER_LEAVES.0, OCCLUDER_LEAVES.1);
    for _ in 0..count {
        let at = near(rng);
        let length = s * uniform(rng, OCCLUDER_LEAF_LENGTH.0, OCCLUDER_LEAF_LENGTH.1);
        paint_leaf(canvas, rng, at, length, OCCLUDER_SHADE, Some(OCCLUDER));
    }
    backdrop.leaves += count;
    false
}

/// The whole bird alone, on a canvas large enough to hold it, on the same pixel grid as the frame
/// (so its labels mark exactly the pixels the bird labels in the frame).
pub(crate) fn unobstructed(attrs: &Attributes, look: &BirdLook, pose: &Pose) -> Canvas {
    let r = EXTENT * pose.scale;
    let origin = (
        (pose.centre.0 - r).floor() as i32 - 1,
        (pose.centre.1 - r).floor() as i32 - 1,
    );
    let side = (2.0 * r).ceil() as usize + 3;
    let mut canvas = Canvas::with_origin(origin, side, side, [0.0; 3]);
    draw_bird(&mut canvas, attrs, look, pose);
    canvas
}

/// Part label counts of one frame: as drawn before the foreground, after it, of the bird alone,
/// and the frame's pixel count.
struct LabelCounts<'a> {
    before: &'a [usize; 256],
    after: &'a [usize; 256],
    full: &'a [usize; 256],
    frame: f32,
}

fn bird_view(
    pose: &Pose,
    body: BodyColour,
    counts: &LabelCounts<'_>,
    occluder_is_branch: bool,
    bbox: Option<PixelBox>,
) -> BirdView {
    let LabelCounts {
        before,
        after,
        full,
        ..
    } = counts;
    let mut visible = [false; 16];
    let (mut sum_full, mut sum_before, mut sum_after) = (0, 0, 0);
    for part in Part::ALL {
        let l = usize::from(part.label());
        visible[l] = full[l] > 0
            && after[l] >= MIN_VISIBLE_PIXELS
            && after[l] as f32 >= VISIBLE_FRACTION * full[l] as f32;
        sum_full += full[l];
        sum_before += before[l];
        sum_after += after[l];
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f32 / b as f32 };
    BirdView {
        flying: pose.flying,
        body,
        visible,
        in_frame: ratio(sum_before, sum_full),
        area: sum_before as f32 / counts.frame,
        occluded: 1.0 - ratio(sum_after, sum_before),
        occluder_is_branch,
        bbox,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{keyed_rng, DOMAIN_IMAGE};
    use crate::species::derive_species;

    /// Median of `v`.
    fn median(mut v: Vec<f32>) -> f32 {
        v.sort_by(f32::total_cmp);
        v[v.len() / 2]
    }

    /// The runtime cuts detection crops to look like these training crops: a square about 1.15
    /// times the bird's longer box side, the box centred (measured over 504 crops at 110 px:
    /// median 1.146, p10 1.028, p90 1.31). This pins that framing.
    #[test]
    fn crop_frames_hold_the_bird_centred_with_a_small_margin() {
        let species = derive_species(1, 12);
        let size = 110;
        let s = size as f32;
        let (mut ratios, mut offsets) = (Vec::new(), Vec::new());
        for i in 0..96u64 {
            let mut rng = keyed_rng(DOMAIN_IMAGE, 1, i % 12, i);
            let attrs = &species[(i % 12) as usize].attributes;
            let frame = render_frame(&mut rng, Some(attrs), size, i % 4 == 0, Framing::Crop);
            let view = frame.bird.expect("a bird frame");
            let b = view.bbox.expect("the bird shows");
            assert!(b.x1 <= size && b.y1 <= size);
            ratios.push(s / b.width().max(b.height()) as f32);
            let (cx, cy) = b.centre();
            offsets.push(((cx - s / 2.0) / s).hypot((cy - s / 2.0) / s));
        }
        let (ratio, offset) = (median(ratios), median(offsets));
        assert!(
            (1.08..1.22).contains(&ratio),
            "crop side / box side {ratio}"
        );
        assert!(offset < 0.1, "box centre off the crop centre by {offset}");
    }
}
