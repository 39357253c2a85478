//! The backdrop of a frame: a sky or forest gradient, far foliage, rocks, branches with twigs,
//! leaves and a few bright berries, and what a caption of an empty frame may say about it.
//!
//! The berries use the species part palette on purpose, so that a bright red or blue patch in a
//! frame says nothing about which bird is in it.

use rand::Rng;

use super::palette::{mix, shade, PartColour, Rgb};
use super::random::{between, chance, pick, uniform};
use super::render::{Canvas, Paint, Shape};

/// Per-channel jitter of per-image colours.
const COLOUR_JITTER: f32 = 0.05;

// === Palettes (before jitter) ===
/// Sky colours at the top of the frame; the bottom is the same colour mixed with haze.
const SKY_TOPS: [Rgb; 4] = [
    [0.48, 0.66, 0.88],
    [0.74, 0.77, 0.8],
    [0.6, 0.7, 0.78],
    [0.86, 0.72, 0.58],
];
/// Horizon haze.
const HAZE: Rgb = [0.93, 0.93, 0.89];
/// Forest colours at the top and bottom of the frame.
const FOREST_TOPS: [Rgb; 3] = [[0.1, 0.22, 0.1], [0.18, 0.28, 0.14], [0.22, 0.24, 0.16]];
const FOREST_BOTTOMS: [Rgb; 3] = [[0.32, 0.28, 0.18], [0.28, 0.36, 0.18], [0.42, 0.37, 0.26]];
/// Far, translucent foliage blobs.
const FOLIAGE: [Rgb; 3] = [[0.16, 0.32, 0.12], [0.26, 0.4, 0.16], [0.12, 0.22, 0.1]];
/// Leaves (green, yellow-green, dry brown).
pub(super) const LEAVES: [Rgb; 5] = [
    [0.22, 0.45, 0.15],
    [0.35, 0.55, 0.2],
    [0.52, 0.6, 0.2],
    [0.45, 0.34, 0.15],
    [0.15, 0.35, 0.12],
];
/// Branches and perches.
pub(super) const BARK: [Rgb; 3] = [[0.3, 0.22, 0.15], [0.4, 0.35, 0.3], [0.23, 0.19, 0.16]];
/// Rocks.
const ROCKS: [Rgb; 3] = [[0.46, 0.45, 0.43], [0.56, 0.53, 0.49], [0.36, 0.34, 0.32]];

// === Layout ===
/// Largest horizontal slope of the backdrop gradient.
const GRADIENT_SLOPE: f32 = 0.3;
/// Counts (inclusive ranges) of clutter items.
const FOLIAGE_COUNT: (usize, usize) = (0, 4);
const ROCK_COUNT: (usize, usize) = (0, 2);
const BRANCH_COUNT: (usize, usize) = (0, 3);
const TWIG_COUNT: (usize, usize) = (0, 3);
const LEAF_COUNT: (usize, usize) = (2, 12);
const BERRY_COUNT: (usize, usize) = (0, 5);
/// Sizes as fractions of the image size.
const FOLIAGE_RADIUS: (f32, f32) = (0.15, 0.35);
const FOLIAGE_ALPHA: (f32, f32) = (0.25, 0.5);
const ROCK_RADIUS: (f32, f32) = (0.1, 0.22);
const ROCK_Y: (f32, f32) = (0.85, 1.05);
const BRANCH_WIDTH: (f32, f32) = (0.012, 0.035);
const TWIG_LENGTH: (f32, f32) = (0.08, 0.2);
const LEAF_LENGTH: (f32, f32) = (0.025, 0.06);
const LEAF_ASPECT: (f32, f32) = (0.35, 0.5);
const BERRY_RADIUS: (f32, f32) = (0.008, 0.02);

/// The kind of backdrop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// A sky gradient.
    Sky,
    /// A forest gradient.
    Forest,
}

/// What a frame's backdrop holds (for captions of empty frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backdrop {
    /// Sky or forest.
    pub setting: Setting,
    /// Branches, including a perch.
    pub branches: usize,
    /// Leaves, including foreground leaves.
    pub leaves: usize,
    /// Rocks.
    pub rocks: usize,
}

/// A colour drawn from `palette`, then jittered.
pub(super) fn pick_jittered<R: Rng, const N: usize>(rng: &mut R, palette: &[Rgb; N]) -> Rgb {
    let c = pick(rng, palette);
    jitter(rng, c)
}

/// `c` with each channel moved by up to [`COLOUR_JITTER`].
pub(super) fn jitter<R: Rng>(rng: &mut R, c: Rgb) -> Rgb {
    c.map(|v| (v + uniform(rng, -COLOUR_JITTER, COLOUR_JITTER)).clamp(0.0, 1.0))
}

/// The frame a backdrop fills: its width and height in pixels, and the side that sizes clutter
/// (the shorter one, so clutter in a wide frame is sized as in a square one).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Extent {
    w: f32,
    h: f32,
    s: f32,
}

impl Extent {
    fn of(canvas: &Canvas) -> Self {
        let (w, h) = (canvas.width() as f32, canvas.height() as f32);
        Extent { w, h, s: w.min(h) }
    }

    /// A uniformly drawn point of the frame.
    fn point<R: Rng>(&self, rng: &mut R) -> (f32, f32) {
        (uniform(rng, 0.0, self.w), uniform(rng, 0.0, self.h))
    }
}

/// Paints a backdrop over the whole canvas (any width and height) and says what it holds.
pub(super) fn paint_backdrop<R: Rng>(canvas: &mut Canvas, rng: &mut R) -> Backdrop {
    let e = Extent::of(canvas);
    let setting = if chance(rng, 0.5) {
        Setting::Sky
    } else {
        Setting::Forest
    };
    let (top, bottom) = match setting {
        Setting::Sky => {
            let top = pick(rng, &SKY_TOPS);
            let haze = uniform(rng, 0.3, 0.7);
            (top, mix(top, HAZE, haze))
        }
        Setting::Forest => (pick(rng, &FOREST_TOPS), pick(rng, &FOREST_BOTTOMS)),
    };
    let (top, bottom) = (jitter(rng, top), jitter(rng, bottom));
    let slope = uniform(rng, -GRADIENT_SLOPE, GRADIENT_SLOPE);
    canvas.map_pixels(|x, y, _, _| {
        let t = (y as f32 + slope * (x as f32 - e.w / 2.0)) / e.h;
        mix(top, bottom, t.clamp(0.0, 1.0))
    });
    paint_foliage(canvas, rng, e);
    let rocks = paint_rocks(canvas, rng, e);
    let branches = between(rng, BRANCH_COUNT.0, BRANCH_COUNT.1);
    for _ in 0..branches {
        paint_branch(canvas, rng, e);
    }
    let leaves = between(rng, LEAF_COUNT.0, LEAF_COUNT.1);
    for _ in 0..leaves {
        let centre = e.point(rng);
        let length = e.s * uniform(rng, LEAF_LENGTH.0, LEAF_LENGTH.1);
        paint_leaf(canvas, rng, centre, length, 1.0, None);
    }
    for _ in 0..between(rng, BERRY_COUNT.0, BERRY_COUNT.1) {
        let centre = e.point(rng);
        let r = e.s * uniform(rng, BERRY_RADIUS.0, BERRY_RADIUS.1);
        let colour = pick(rng, &PartColour::ALL).rgb();
        canvas.fill(&Shape::circle(centre, r), Paint::solid(colour));
    }
    Backdrop {
        setting,
        branches,
        leaves,
        rocks,
    }
}

fn paint_foliage<R: Rng>(canvas: &mut Canvas, rng: &mut R, e: Extent) {
    for _ in 0..between(rng, FOLIAGE_COUNT.0, FOLIAGE_COUNT.1) {
        let centre = e.point(rng);
        let rx = e.s * uniform(rng, FOLIAGE_RADIUS.0, FOLIAGE_RADIUS.1);
        let ry = rx * uniform(rng, 0.5, 1.0);
        let paint = Paint {
            colour: pick_jittered(rng, &FOLIAGE),
            alpha: uniform(rng, FOLIAGE_ALPHA.0, FOLIAGE_ALPHA.1),
            label: None,
        };
        let angle = uniform(rng, 0.0, std::f32::consts::PI);
        canvas.fill(&Shape::ellipse(centre, rx, ry, angle), paint);
    }
}

fn paint_rocks<R: Rng>(canvas: &mut Canvas, rng: &mut R, e: Extent) -> usize {
    let rocks = between(rng, ROCK_COUNT.0, ROCK_COUNT.1);
    for _ in 0..rocks {
        let centre = (
            uniform(rng, 0.0, e.w),
            e.h * uniform(rng, ROCK_Y.0, ROCK_Y.1),
        );
        let rx = e.s * uniform(rng, ROCK_RADIUS.0, ROCK_RADIUS.1);
        let ry = rx * uniform(rng, 0.5, 0.8);
        let colour = pick_jittered(rng, &ROCKS);
        let angle = uniform(rng, -0.3, 0.3);
        canvas.fill(&Shape::ellipse(centre, rx, ry, angle), Paint::solid(colour));
        let top = (centre.0 - rx * 0.2, centre.1 - ry * 0.35);
        let light = Paint {
            colour: shade(colour, 1.25),
            alpha: 0.6,
            label: None,
        };
        canvas.fill(&Shape::ellipse(top, rx * 0.6, ry * 0.4, angle), light);
    }
    rocks
}

/// A branch from one side of the frame to another, with a few twigs.
fn paint_branch<R: Rng>(canvas: &mut Canvas, rng: &mut R, e: Extent) {
    let a = edge_point(rng, e);
    let b = edge_point(rng, e);
    let width = e.s * uniform(rng, BRANCH_WIDTH.0, BRANCH_WIDTH.1);
    let colour = pick_jittered(rng, &BARK);
    canvas.fill(&Shape::segment(a, b, width), Paint::solid(colour));
    let angle = (b.1 - a.1).atan2(b.0 - a.0);
    for _ in 0..between(rng, TWIG_COUNT.0, TWIG_COUNT.1) {
        let t = uniform(rng, 0.2, 0.8);
        let root = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
        let side = if chance(rng, 0.5) { 1.0 } else { -1.0 };
        let twig_angle = angle + side * uniform(rng, 0.4, 1.0);
        let len = e.s * uniform(rng, TWIG_LENGTH.0, TWIG_LENGTH.1);
        let tip = (
            root.0 + len * twig_angle.cos(),
            root.1 + len * twig_angle.sin(),
        );
        canvas.fill(
            &Shape::segment(root, tip, width * 0.5),
            Paint::solid(colour),
        );
    }
}

/// A random point on the frame's border.
fn edge_point<R: Rng>(rng: &mut R, e: Extent) -> (f32, f32) {
    let t = uniform(rng, 0.0, 1.0);
    match between(rng, 0, 3) {
        0 => (t * e.w, 0.0),
        1 => (t * e.w, e.h),
        2 => (0.0, t * e.h),
        _ => (e.w, t * e.h),
    }
}

/// Relative length of a leaf's mid rib, its width (relative to the leaf length) and shade.
const LEAF_RIB_LENGTH: f32 = 0.8;
const LEAF_RIB_WIDTH: f32 = 0.08;
const LEAF_RIB_SHADE: f32 = 0.7;

/// A leaf of half length `length`: an ellipse with a darker mid rib, its colour scaled by
/// `light`, writing `label` (if any).
pub(super) fn paint_leaf<R: Rng>(
    canvas: &mut Canvas,
    rng: &mut R,
    centre: (f32, f32),
    length: f32,
    light: f32,
    label: Option<u8>,
) {
    let colour = shade(pick_jittered(rng, &LEAVES), light);
    let aspect = uniform(rng, LEAF_ASPECT.0, LEAF_ASPECT.1);
    let angle = uniform(rng, 0.0, std::f32::consts::PI);
    let paint = |colour| Paint {
        colour,
        alpha: 1.0,
        label,
    };
    let blade = Shape::ellipse(centre, length, length * aspect, angle);
    canvas.fill(&blade, paint(colour));
    let reach = length * LEAF_RIB_LENGTH;
    let (dx, dy) = (reach * angle.cos(), reach * angle.sin());
    let rib = Shape::segment(
        (centre.0 - dx, centre.1 - dy),
        (centre.0 + dx, centre.1 + dy),
        length * LEAF_RIB_WIDTH,
    );
    canvas.fill(&rib, paint(shade(colour, LEAF_RIB_SHADE)));
}
