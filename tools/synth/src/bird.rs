//! The one body plan every synthetic species shares, and how a species' parts are drawn on it.
//!
//! A bird is modelled in local units facing right (`u` toward the beak, `v` down), the body an
//! ellipse of half-length 1 at the origin. Every species has the same body, head, wing and tail
//! outline; only the small parts differ: beak shape and colour, crest, wing bars, tail pattern, eye
//! ring and leg colour ([`super::species::Attributes`]). Body, head and wing colours come from the
//! per-image [`BirdLook`], never from the species.
//!
//! Each drawn shape writes its [`Part`] label, so the scene can count which parts stay visible
//! once the bird is clipped by the frame or hidden behind foreground leaves.

use super::affine::Affine;
use super::palette::{shade, PartColour, Rgb};
use super::render::{Canvas, Paint, Point};
use super::species::{Attributes, BeakShape, CrestKind, TailPattern, WingBars};

/// The labelled parts of a bird, as written into the canvas' label buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Part {
    /// The body ellipse.
    Body = 1,
    /// The head disc.
    Head = 2,
    /// The wing (folded or raised).
    Wing = 3,
    /// The tail and its pattern.
    Tail = 4,
    /// The beak.
    Beak = 5,
    /// The crest.
    Crest = 6,
    /// The wing bars.
    WingBar = 7,
    /// The eye ring.
    EyeRing = 8,
    /// The eye itself.
    Eye = 9,
    /// The legs and feet.
    Legs = 10,
}

impl Part {
    /// Every part.
    pub const ALL: [Part; 10] = [
        Part::Body,
        Part::Head,
        Part::Wing,
        Part::Tail,
        Part::Beak,
        Part::Crest,
        Part::WingBar,
        Part::EyeRing,
        Part::Eye,
        Part::Legs,
    ];

    /// The part's label value.
    pub fn label(self) -> u8 {
        self as u8
    }
}

/// Per-image colours of the large areas: never a species attribute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BirdLook {
    /// Body colour.
    pub body: Rgb,
    /// Head colour.
    pub head: Rgb,
    /// Wing and tail colour.
    pub wing: Rgb,
}

/// Where and how a bird is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    /// Image position of the body centre (local origin).
    pub centre: Point,
    /// Pixels per local unit.
    pub scale: f32,
    /// Rotation in radians (positive turns the beak down when facing right).
    pub tilt: f32,
    /// Facing left (mirrored) instead of right.
    pub facing_left: bool,
    /// Wing raised and legs tucked (in flight) instead of folded and perched.
    pub flying: bool,
}

impl Pose {
    /// The transform from local units to image pixels.
    pub fn transform(&self) -> Affine {
        Affine::similarity(self.centre, self.scale, self.tilt, self.facing_left)
    }

    /// Image position of the feet (where a perch branch passes).
    pub fn feet(&self) -> Point {
        self.transform().apply(FEET)
    }
}

/// Local radius around the body centre that contains every part of every species and pose.
pub const EXTENT: f32 = 2.8;

/// Local position of the feet, on the perch.
const FEET: Point = (-0.07, 1.1);

// === The shared body plan (local units) ===
const BODY_RX: f32 = 1.0;
const BODY_RY: f32 = 0.62;
const BODY_ANGLE: f32 = -0.2;
const HEAD_CENTRE: Point = (0.95, -0.62);
const HEAD_R: f32 = 0.5;
const EYE_CENTRE: Point = (1.13, -0.72);
const EYE_R: f32 = 0.1;
const EYE_RING_R: f32 = 0.22;
const EYE_RING_OUTLINE_R: f32 = 0.27;

/// Perched (folded) wing: centre, angle of its long axis, half length, half width.
const WING_FOLDED: WingFrame = WingFrame {
    centre: (-0.2, -0.12),
    angle: -0.15,
    half_length: 0.9,
    half_width: 0.38,
};
/// Raised wing in flight.
const WING_RAISED: WingFrame = WingFrame {
    centre: (-0.25, -1.05),
    angle: 1.1,
    half_length: 0.95,
    half_width: 0.4,
};
/// Wing bar positions along the wing's long axis, as a fraction of its half length.
const ONE_BAR: &[f32] = &[0.1];
const TWO_BARS: &[f32] = &[0.35, -0.15];
const BAR_HALF_THICKNESS: f32 = 0.1;
const BAR_OUTLINE: f32 = 0.05;
const BAR_SPAN: f32 = 0.86;

/// Tail root in local units and its direction when perched and in flight (radians).
const TAIL_ROOT: Point = (-0.85, 0.1);
const TAIL_ANGLE_PERCHED: f32 = std::f32::consts::PI - 0.6;
const TAIL_ANGLE_FLYING: f32 = std::f32::consts::PI - 0.15;
/// Tail length and its half width at the root and at the end.
const TAIL_LENGTH: f32 = 1.2;
const TAIL_ROOT_HALF: f32 = 0.22;
const TAIL_END_HALF: f32 = 0.38;
/// Dark tail bars: spans along the tail.
const TAIL_BARS: &[(f32, f32)] = &[(0.48, 0.62), (0.8, 0.94)];
/// White tail tip: span along the tail.
const TAIL_TIP: (f32, f32) = (0.94, 1.2);
/// Forked tail: outer prong length and notch depth.
const FORK_PRONG: f32 = 1.38;
const FORK_NOTCH: f32 = 0.92;
const FORK_PRONG_HALF: f32 = 0.46;
/// Shade of the dark tail bars relative to the tail colour.
const TAIL_BAR_SHADE: f32 = 0.25;

const CONICAL_BEAK: &[Point] = &[(1.3, -0.88), (1.88, -0.64), (1.3, -0.42)];
const HOOKED_BEAK: &[Point] = &[
    (1.3, -0.9),
    (1.6, -0.9),
    (1.82, -0.78),
    (1.9, -0.6),
    (1.84, -0.4),
    (1.77, -0.53),
    (1.55, -0.54),
    (1.3, -0.46),
];
const LONG_THIN_BEAK: &[Point] = &[
    (1.3, -0.76),
    (1.9, -0.67),
    (2.5, -0.5),
    (2.48, -0.45),
    (1.88, -0.57),
    (1.3, -0.55),
];
const SHORT_STUBBY_BEAK: &[Point] = &[
    (1.3, -0.94),
    (1.56, -0.86),
    (1.68, -0.66),
    (1.56, -0.45),
    (1.3, -0.38),
];

const SHORT_CREST: &[&[Point]] = &[
    &[(0.6, -0.95), (0.9, -1.08), (0.52, -1.4)],
    &[(0.85, -1.06), (1.12, -1.05), (0.86, -1.42)],
];
const TALL_CREST: &[&[Point]] = &[
    &[(0.55, -0.9), (0.85, -1.05), (0.15, -1.95)],
    &[(0.75, -1.05), (1.0, -1.1), (0.55, -2.1)],
    &[(0.95, -1.08), (1.2, -1.0), (1.0, -1.85)],
];

/// Legs when perched: (hip, foot, toe) per leg.
const LEGS_PERCHED: &[(Point, Point, Point)] = &[
    ((0.15, 0.5), (0.1, 1.08), (0.34, 1.1)),
    ((-0.2, 0.5), (-0.25, 1.08), (-0.01, 1.1)),
];
/// Legs tucked back in flight: (hip, foot) per leg.
const LEGS_TUCKED: &[(Point, Point)] = &[((-0.1, 0.5), (-0.6, 0.88)), ((-0.3, 0.45), (-0.8, 0.78))];
const LEG_WIDTH: f32 = 0.1;
const TOE_WIDTH: f32 = 0.08;

/// Colour of outlines around the small parts (eye ring, wing bars), so that a part always shows
/// against a body of similar colour.
const OUTLINE: Rgb = [0.06, 0.05, 0.05];
/// Eye colour.
const EYE: Rgb = [0.03, 0.03, 0.03];
/// Shade of the beak's lower half relative to its colour, to show its outline.
const BEAK_EDGE_SHADE: f32 = 0.6;
/// How much darker the wing is drawn than the look's wing colour, to set it off the body.
const WING_SHADE: f32 = 0.85;

/// A wing's own frame: `u` along its long axis toward the shoulder.
#[derive(Debug, Clone, Copy)]
struct WingFrame {
    centre: Point,
    angle: f32,
    half_length: f32,
    half_width: f32,
}

/// Draws a bird of species `attrs` in `pose`, writing [`Part`] labels.
pub fn draw_bird(canvas: &mut Canvas, attrs: &Attributes, look: &BirdLook, pose: &Pose) {
    let t = pose.transform();
    draw_tail(canvas, &t, attrs.tail, look.wing, pose.flying);
    draw_legs(canvas, &t, attrs.leg_colour.rgb(), pose.flying);
    canvas.fill(
        &t.ellipse((0.0, 0.0), BODY_RX, BODY_RY, BODY_ANGLE),
        Paint::labelled(look.body, Part::Body.label()),
    );
    let wing = if pose.flying {
        WING_RAISED
    } else {
        WING_FOLDED
    };
    draw_wing(canvas, &t, &wing, attrs, shade(look.wing, WING_SHADE));
    draw_crest(canvas, &t, attrs);
    canvas.fill(
        &t.circle(HEAD_CENTRE, HEAD_R),
        Paint::labelled(look.head, Part::Head.label()),
    );
    draw_eye(canvas, &t, attrs);
    draw_beak(canvas, &t, attrs);
}

fn draw_tail(canvas: &mut Canvas, t: &Affine, pattern: TailPattern, colour: Rgb, flying: bool) {
    let angle = if flying {
        TAIL_ANGLE_FLYING
    } else {
        TAIL_ANGLE_PERCHED
    };
    let tail = t.then(&Affine::similarity(TAIL_ROOT, 1.0, angle, false));
    let label = Part::Tail.label();
    let outline: Vec<Point> = match pattern {
        TailPattern::Forked => vec![
            (0.0, -TAIL_ROOT_HALF),
            (FORK_PRONG, -FORK_PRONG_HALF),
            (FORK_NOTCH, 0.0),
            (FORK_PRONG, FORK_PRONG_HALF),
            (0.0, TAIL_ROOT_HALF),
        ],
        _ => tail_band(0.0, TAIL_LENGTH),
    };
    canvas.fill(&tail.polygon(&outline), Paint::labelled(colour, label));
    match pattern {
        TailPattern::Barred => {
            let dark = shade(colour, TAIL_BAR_SHADE);
            for &(a, b) in TAIL_BARS {
                canvas.fill(
                    &tail.polygon(&tail_band(a, b)),
                    Paint::labelled(dark, label),
                );
            }
        }
        TailPattern::WhiteTipped => {
            let white = PartColour::White.rgb();
            let band = tail_band(TAIL_TIP.0, TAIL_TIP.1);
            canvas.fill(&tail.polygon(&band), Paint::labelled(white, label));
        }
        TailPattern::Plain | TailPattern::Forked => {}
    }
}

/// The quad of the tail fan between distances `a` and `b` from the root.
fn tail_band(a: f32, b: f32) -> Vec<Point> {
    let half = |x: f32| TAIL_ROOT_HALF + (TAIL_END_HALF - TAIL_ROOT_HALF) * x / TAIL_LENGTH;
    vec![(a, -half(a)), (b, -half(b)), (b, half(b)), (a, half(a))]
}

fn draw_legs(canvas: &mut Canvas, t: &Affine, colour: Rgb, flying: bool) {
    let paint = Paint::labelled(colour, Part::Legs.label());
    if flying {
        for &(hip, foot) in LEGS_TUCKED {
            canvas.fill(&t.segment(hip, foot, LEG_WIDTH), paint);
        }
    } else {
        for &(hip, foot, toe) in LEGS_PERCHED {
            canvas.fill(&t.segment(hip, foot, LEG_WIDTH), paint);
            canvas.fill(&t.segment(foot, toe, TOE_WIDTH), paint);
        }
    }
}

fn draw_wing(canvas: &mut Canvas, t: &Affine, frame: &WingFrame, attrs: &Attributes, colour: Rgb) {
    let w = t.then(&Affine::similarity(frame.centre, 1.0, frame.angle, false));
    canvas.fill(
        &w.ellipse((0.0, 0.0), frame.half_length, frame.half_width, 0.0),
        Paint::labelled(colour, Part::Wing.label()),
    );
    let positions = match attrs.wing_bars {
        WingBars::None => return,
        WingBars::One => ONE_BAR,
        WingBars::Two => TWO_BARS,
    };
    let Some(bar_colour) = attrs.wing_bar_colour else {
        return;
    };
    let label = Part::WingBar.label();
    let span = frame.half_width * BAR_SPAN;
    for &p in positions {
        let c = (p * frame.half_length, 0.0);
        let outline = w.ellipse(c, BAR_HALF_THICKNESS + BAR_OUTLINE, span + BAR_OUTLINE, 0.0);
        canvas.fill(&outline, Paint::labelled(OUTLINE, label));
        let bar = w.ellipse(c, BAR_HALF_THICKNESS, span, 0.0);
        canvas.fill(&bar, Paint::labelled(bar_colour.rgb(), label));
    }
}

fn draw_crest(canvas: &mut Canvas, t: &Affine, attrs: &Attributes) {
    let spikes = match attrs.crest {
        CrestKind::None => return,
        CrestKind::Short => SHORT_CREST,
        CrestKind::Tall => TALL_CREST,
    };
    let Some(colour) = attrs.crest_colour else {
        return;
    };
    for spike in spikes {
        canvas.fill(
            &t.polygon(spike),
            Paint::labelled(colour.rgb(), Part::Crest.label()),
        );
    }
}

fn draw_eye(canvas: &mut Canvas, t: &Affine, attrs: &Attributes) {
    if let Some(ring) = attrs.eye_ring {
        let label = Part::EyeRing.label();
        let outline = t.circle(EYE_CENTRE, EYE_RING_OUTLINE_R);
        canvas.fill(&outline, Paint::labelled(OUTLINE, label));
        let ring_shape = t.circle(EYE_CENTRE, EYE_RING_R);
        canvas.fill(&ring_shape, Paint::labelled(ring.rgb(), label));
    }
    canvas.fill(
        &t.circle(EYE_CENTRE, EYE_R),
        Paint::labelled(EYE, Part::Eye.label()),
    );
}

fn draw_beak(canvas: &mut Canvas, t: &Affine, attrs: &Attributes) {
    let outline = match attrs.beak_shape {
        BeakShape::Conical => CONICAL_BEAK,
        BeakShape::Hooked => HOOKED_BEAK,
        BeakShape::LongThin => LONG_THIN_BEAK,
        BeakShape::ShortStubby => SHORT_STUBBY_BEAK,
    };
    let colour = attrs.beak_colour.rgb();
    let label = Part::Beak.label();
    canvas.fill(&t.polygon(outline), Paint::labelled(colour, label));
    // A darker lower mandible: the part of the outline below the beak's mid line.
    let mid = outline.iter().map(|p| p.1).sum::<f32>() / outline.len() as f32;
    let lower: Vec<Point> = outline.iter().map(|&(u, v)| (u, v.max(mid))).collect();
    let edge = shade(colour, BEAK_EDGE_SHADE);
    canvas.fill(&t.polygon(&lower), Paint::labelled(edge, label));
}
