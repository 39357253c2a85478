//! One camera frame of the synthetic world: a backdrop ([`super::backdrop`]), an optional bird in
//! a random pose, foreground occluders, lighting, sensor noise and the night (infrared) look.
//!
//! The frame also reports what a caption may say: which bird parts stay visible after clipping by
//! the frame and occlusion by foreground leaves or branches, the pose, the per-image body colour and
//! what the backdrop holds. Visibility is measured by counting part labels twice: in the frame as
//! rendered, and on an off-screen canvas holding the whole bird with nothing in front of it.

use image::RgbImage;
use rand::Rng;

use super::backdrop::{jitter, paint_backdrop, paint_leaf, pick_jittered, Backdrop, BARK};
use super::bird::{draw_bird, BirdLook, Part, Pose, EXTENT};
use super::palette::{shade, BodyColour, Rgb};
use super::random::{between, chance, gaussian, pick, uniform};
use super::render::{Canvas, Paint, Shape};
use super::species::Attributes;

/// Label of foreground occluders in the label buffer.
const OCCLUDER: u8 = 255;

/// A part counts as visible when at least this fraction of its unobstructed pixels shows...
const VISIBLE_FRACTION: f32 = 0.6;
/// ...and at least this many pixels show.
const MIN_VISIBLE_PIXELS: usize = 2;

// === Pose and perch ===
/// Bird scale (pixels per body half-length) as a fraction of the image size, whole scene.
const SCENE_SCALE: (f32, f32) = (0.12, 0.17);
/// The same in a detector crop: the animal's box plus a margin fills most of the frame.
const CROP_SCALE: (f32, f32) = (0.2, 0.25);
/// Largest tilt either way, radians.
const MAX_TILT: f32 = 0.35;
/// Fraction of birds in flight (wing raised, legs tucked, no perch).
const FLYING_PROBABILITY: f64 = 0.3;
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
const EMPTY_PERCH_PROBABILITY: f64 = 0.5;

// === Foreground occlusion ===
const OCCLUSION_PROBABILITY: f64 = 0.3;
const OCCLUDER_BRANCH_PROBABILITY: f64 = 0.3;
const OCCLUDER_LEAVES: (usize, usize) = (1, 3);
const OCCLUDER_LEAF_LENGTH: (f32, f32) = (0.07, 0.14);
const OCCLUDER_BRANCH_WIDTH: (f32, f32) = (0.03, 0.06);
/// Foreground leaves are darker (in shadow, closer to the lens).
const OCCLUDER_SHADE: f32 = 0.7;

// === Lighting and sensor ===
const BRIGHTNESS: (f32, f32) = (0.72, 1.2);
const CONTRAST: (f32, f32) = (0.75, 1.15);
const COLOUR_CAST: (f32, f32) = (0.9, 1.1);
const DAY_NOISE: (f32, f32) = (0.006, 0.025);
/// Infrared response: weights of R, G and B, and the extra brightness of foliage (green above
/// red and blue), which reflects near infrared strongly.
const IR_WEIGHTS: Rgb = [0.45, 0.35, 0.2];
const IR_FOLIAGE_BOOST: f32 = 0.6;
const NIGHT_GAIN: (f32, f32) = (0.75, 1.15);
/// The infrared flash lights the bird, closer to the camera than the backdrop, more strongly.
const IR_SUBJECT_GAIN: f32 = 1.3;
const NIGHT_CONTRAST: (f32, f32) = (0.8, 1.1);
const VIGNETTE: (f32, f32) = (0.35, 0.7);
const NIGHT_NOISE: (f32, f32) = (0.03, 0.06);

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
    let mut backdrop = paint_backdrop(&mut canvas, rng, s);
    let bird = species.map(|attrs| {
        let pose = sample_pose(rng, s, framing);
        let look = sample_look(rng);
        if !pose.flying {
            paint_perch(&mut canvas, rng, &pose, s);
            backdrop.branches += 1;
        }
        let colours = BirdLook {
            body: jitter(rng, look.0.rgb()),
            head: jitter(rng, look.1.rgb()),
            wing: jitter(rng, look.2.rgb()),
        };
        draw_bird(&mut canvas, attrs, &colours, &pose);
        (pose, look.0, colours, *attrs)
    });
    if bird.is_none() && chance(rng, EMPTY_PERCH_PROBABILITY) {
        let pose = sample_pose(rng, s, framing);
        paint_perch(&mut canvas, rng, &pose, s);
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
        let full = unobstructed_counts(&attrs, &colours, &pose);
        let counts = LabelCounts {
            before: &before,
            after: &after,
            full: &full,
            frame: s * s,
        };
        bird_view(&pose, body, &counts, occluder_is_branch)
    });
    Frame {
        image: finish(&mut canvas, rng, night, s),
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
fn sample_look<R: Rng>(rng: &mut R) -> (BodyColour, BodyColour, BodyColour) {
    let body = pick(rng, &BodyColour::ALL);
    let other_head = pick(rng, &BodyColour::ALL);
    let head = if chance(rng, SAME_HEAD_PROBABILITY) {
        body
    } else {
        other_head
    };
    (body, head, pick(rng, &BodyColour::ALL))
}

/// A branch under the feet of `pose`, entering from the frame's side.
fn paint_perch<R: Rng>(canvas: &mut Canvas, rng: &mut R, pose: &Pose, s: f32) {
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
    canvas.fill(
        &Shape::segment(shift(from), shift(to), width),
        Paint::solid(colour),
    );
}

/// Foreground leaves or a branch near `(centre, radius)`, labelled as occluders; returns whether
/// it was a branch. Nothing is drawn most of the time.
fn paint_foreground<R: Rng>(
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

/// Part label counts of the whole bird alone, on a canvas large enough to hold it, on the same
/// pixel grid as the frame.
fn unobstructed_counts(attrs: &Attributes, look: &BirdLook, pose: &Pose) -> [usize; 256] {
    let r = EXTENT * pose.scale;
    let origin = (
        (pose.centre.0 - r).floor() as i32 - 1,
        (pose.centre.1 - r).floor() as i32 - 1,
    );
    let side = (2.0 * r).ceil() as usize + 3;
    let mut canvas = Canvas::with_origin(origin, side, side, [0.0; 3]);
    draw_bird(&mut canvas, attrs, look, pose);
    canvas.label_counts()
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
    }
}

/// Lighting, the night look and sensor noise, then quantisation.
fn finish<R: Rng>(canvas: &mut Canvas, rng: &mut R, night: bool, s: f32) -> RgbImage {
    if night {
        let gain = uniform(rng, NIGHT_GAIN.0, NIGHT_GAIN.1);
        let contrast = uniform(rng, NIGHT_CONTRAST.0, NIGHT_CONTRAST.1);
        let vignette = uniform(rng, VIGNETTE.0, VIGNETTE.1);
        let sigma = uniform(rng, NIGHT_NOISE.0, NIGHT_NOISE.1);
        let half = s / 2.0;
        canvas.map_pixels(|x, y, label, c| {
            let (dx, dy) = (
                (x as f32 + 0.5 - half) / half,
                (y as f32 + 0.5 - half) / half,
            );
            let falloff = 1.0 - vignette * (dx * dx + dy * dy) / 2.0;
            let flash = if is_bird(label) { IR_SUBJECT_GAIN } else { 1.0 };
            let g = ((infrared(c) - 0.5) * contrast + 0.5) * gain * falloff * flash;
            [g + sigma * gaussian(rng); 3]
        });
    } else {
        let brightness = uniform(rng, BRIGHTNESS.0, BRIGHTNESS.1);
        let contrast = uniform(rng, CONTRAST.0, CONTRAST.1);
        let cast = [(); 3].map(|_| uniform(rng, COLOUR_CAST.0, COLOUR_CAST.1));
        let sigma = uniform(rng, DAY_NOISE.0, DAY_NOISE.1);
        canvas.map_pixels(|_, _, _, c| {
            let mut out = [0.0; 3];
            for ch in 0..3 {
                let v = ((c[ch] - 0.5) * contrast + 0.5) * brightness * cast[ch];
                out[ch] = v + sigma * gaussian(rng);
            }
            out
        });
    }
    canvas.to_image()
}

/// Whether a label belongs to a bird part.
fn is_bird(label: u8) -> bool {
    Part::ALL.iter().any(|p| p.label() == label)
}

/// Grey level of a colour under infrared illumination: a fixed channel mix, plus the strong
/// near-infrared reflectance of green foliage. Different colours map to similar greys.
fn infrared(c: Rgb) -> f32 {
    let base = IR_WEIGHTS[0] * c[0] + IR_WEIGHTS[1] * c[1] + IR_WEIGHTS[2] * c[2];
    base + IR_FOLIAGE_BOOST * (c[1] - c[0].max(c[2])).max(0.0)
}
