//! Large camera-trap frames with known boxes: up to [`MAX_BIRDS`] birds at realistic sizes in a
//! frame of any width and height (trail cameras write 1280×720 to 2048×1440), the ground-truth
//! box of every bird as rendered, and bursts of one fixed scene into which a bird arrives (what
//! a motion gate sees).
//!
//! A bird's size is drawn as the width of its box, log-uniformly between 5 % and 60 % of the
//! frame's width ([`BOX_WIDTH`]), so that most birds are small, as in real camera traps. Birds are
//! placed so that no two nominal boxes overlap much; nearer (larger) birds are drawn over farther
//! ones. A bird's ground-truth box is the tight box of the pixels it labels in the finished frame:
//! clipped to the frame, less what foreground leaves, a nearer bird or a nearer bird's perch
//! hides. Which pixels belong to which bird is known from an off-screen copy of each bird on the
//! frame's pixel grid ([`unobstructed`]), which labels exactly the pixels the bird labels in the
//! frame.
//!
//! Everything else (backdrop, perches, foreground occluders, exposure, the night look) is drawn
//! by the code that draws [`super::scene::render_frame`]'s frames, so both look alike.

use image::RgbImage;
use rand::Rng;

use super::backdrop::{paint_backdrop, Backdrop};
use super::bird::{draw_bird, BirdLook, Pose, EXTENT};
use super::lighting::{is_bird, Exposure};
use super::random::{between, chance, keyed_rng, log_uniform, uniform, DOMAIN_FOREGROUND};
use super::render::{Bounds, Canvas, PixelBox};
use super::scene::{
    paint_foreground, paint_perch, sample_colours, sample_look, unobstructed,
    EMPTY_PERCH_PROBABILITY, FLYING_PROBABILITY, MAX_TILT, SCENE_SCALE,
};
use super::species::Species;

/// Most birds in one frame.
pub const MAX_BIRDS: usize = 3;
/// Range of a bird's box width, as a fraction of the frame's width (drawn log-uniformly).
pub const BOX_WIDTH: (f32, f32) = (0.05, 0.6);
/// Fewest frames in a sequence: at least one without the bird and one with it.
pub const MIN_SEQUENCE_LENGTH: usize = 2;

/// Largest fraction of the smaller of two nominal boxes that the other may cover.
const MAX_OVERLAP: f32 = 0.15;
/// Positions tried for a bird before it is made smaller...
const PLACEMENT_TRIES: usize = 24;
/// ...how many times it is made smaller, and by what factor, before it is left out.
const SHRINK_STEPS: i32 = 3;
const SHRINK: f32 = 0.7;
/// Fraction of birds allowed partly out of the frame, and how much of their box may be out on a
/// side.
const EDGE_PROBABILITY: f64 = 0.1;
const EDGE_OVERHANG: f32 = 0.4;
/// Pixels per bird unit of the off-screen render that measures a pose's extent (1 % of a bird's
/// width is about one pixel there).
const MEASURE_SCALE: f32 = 24.0;
/// Width of a perched bird in bird units, roughly: sizes the perch of an empty frame.
const PERCHED_WIDTH: f32 = 4.0;
/// Label of perches, so that a nearer bird's perch hides the farther bird behind it.
const PERCH: u8 = 254;
/// Largest move of a bird's centre between two frames of a sequence, in bird units.
const SEQUENCE_STEP: f32 = 0.08;
/// Largest change of a sequence's exposure between frames (auto-exposure drift), as a gain.
const EXPOSURE_DRIFT: f32 = 0.03;

/// The ground truth of one bird in a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxedBird {
    /// Species index (position in the world's species list).
    pub species: usize,
    /// Tight box of the bird's pixels as rendered, inside the frame.
    pub bbox: PixelBox,
    /// Box width as a fraction of the frame's width.
    pub width_fraction: f32,
    /// Fraction of the bird's pixels that show (in frame and not hidden).
    pub visible: f32,
    /// In flight (else perched).
    pub flying: bool,
}

/// A rendered scene frame and its ground truth.
#[derive(Debug, Clone)]
pub struct SceneFrame {
    /// The 8-bit RGB image.
    pub image: RgbImage,
    /// Rendered with the night (infrared grey) look.
    pub night: bool,
    /// Every bird that shows, farthest first; empty for an empty frame.
    pub birds: Vec<BoxedBird>,
}

/// Renders a `width`×`height` frame holding one bird of each of `birds` (at most [`MAX_BIRDS`];
/// extra ones are ignored, and a bird that finds no place without heavy overlap is left out).
pub fn render_scene<R: Rng>(
    rng: &mut R,
    birds: &[&Species],
    width: u32,
    height: u32,
    night: bool,
) -> SceneFrame {
    let (mut canvas, truth) = paint_scene(rng, birds, width, height);
    SceneFrame {
        image: Exposure::sample(rng, night).develop(&mut canvas, rng),
        night,
        birds: truth,
    }
}

/// Renders `length` frames (at least [`MIN_SEQUENCE_LENGTH`]) of one fixed `width`×`height`
/// scene: the camera, backdrop, perch, foreground and exposure stay, only the sensor noise and
/// a slight exposure drift change. `bird` is absent from the first frame or frames, then present,
/// moving slightly from frame to frame.
pub fn render_sequence<R: Rng>(
    rng: &mut R,
    bird: &Species,
    width: u32,
    height: u32,
    night: bool,
    length: usize,
) -> Vec<SceneFrame> {
    let frame = (width as f32, height as f32);
    let mut still = Canvas::new(width as usize, height as usize, [0.0; 3]);
    let mut backdrop = paint_backdrop(&mut still, rng);
    let placed = place_birds(rng, &[bird], frame);
    for p in placed.iter().filter(|p| !p.pose.flying) {
        paint_perch(&mut still, rng, &p.pose, frame.0.max(frame.1), Some(PERCH));
    }
    let absent = between(rng, 1, (length / 2).max(1));
    let exposure = Exposure::sample(rng, night);
    let foreground_key: u64 = rng.random();
    let mut moving = placed.clone();
    let mut frames = Vec::with_capacity(length);
    for i in 0..length {
        let mut canvas = still.clone();
        let here: &[Placed] = if i < absent { &[] } else { &moving };
        let masks = draw_birds(&mut canvas, here);
        let mut replay = keyed_rng(DOMAIN_FOREGROUND, foreground_key, 0, 0);
        for p in &placed {
            paint_occluders(&mut canvas, &mut replay, &p.pose, &mut backdrop);
        }
        let truth = ground_truth(&canvas, here, &masks);
        let drift = 1.0 + uniform(rng, -EXPOSURE_DRIFT, EXPOSURE_DRIFT);
        frames.push(SceneFrame {
            image: exposure.drifted(drift).develop(&mut canvas, rng),
            night,
            birds: truth,
        });
        if i + 1 >= absent {
            moving.iter_mut().for_each(|p| step(rng, &mut p.pose));
        }
    }
    frames
}

/// The painted canvas of a scene frame (before exposure) and its ground truth.
fn paint_scene<R: Rng>(
    rng: &mut R,
    birds: &[&Species],
    width: u32,
    height: u32,
) -> (Canvas, Vec<BoxedBird>) {
    let frame = (width as f32, height as f32);
    let mut canvas = Canvas::new(width as usize, height as usize, [0.0; 3]);
    let mut backdrop = paint_backdrop(&mut canvas, rng);
    let placed = place_birds(rng, birds, frame);
    let longer = frame.0.max(frame.1);
    if placed.is_empty() && chance(rng, EMPTY_PERCH_PROBABILITY) {
        let pose = empty_perch_pose(rng, frame);
        paint_perch(&mut canvas, rng, &pose, longer, Some(PERCH));
    }
    let mut masks = Vec::with_capacity(placed.len());
    for p in &placed {
        if !p.pose.flying {
            paint_perch(&mut canvas, rng, &p.pose, longer, Some(PERCH));
        }
        masks.extend(draw_birds(&mut canvas, std::slice::from_ref(p)));
    }
    for p in &placed {
        paint_occluders(&mut canvas, rng, &p.pose, &mut backdrop);
    }
    let truth = ground_truth(&canvas, &placed, &masks);
    (canvas, truth)
}

/// A bird ready to draw: its species, pose and colours.
#[derive(Debug, Clone)]
struct Placed<'a> {
    species: &'a Species,
    pose: Pose,
    look: BirdLook,
}

/// A bird before placement: its pose at scale 1 around the origin, its extent there (bird
/// units) and the box width drawn for it (pixels).
struct Draft<'a> {
    bird: Placed<'a>,
    extent: Bounds,
    width: f32,
}

/// Draws each bird's pose, colours and size, places them largest first, and returns them
/// farthest (smallest) first, the order in which they are drawn.
fn place_birds<'a, R: Rng>(
    rng: &mut R,
    birds: &[&'a Species],
    frame: (f32, f32),
) -> Vec<Placed<'a>> {
    let mut drafts: Vec<Draft<'a>> = birds
        .iter()
        .take(MAX_BIRDS)
        .map(|species| draft(rng, species, frame.0))
        .collect();
    drafts.sort_by(|a, b| b.width.total_cmp(&a.width));
    let mut boxes: Vec<Bounds> = Vec::with_capacity(drafts.len());
    let mut placed = Vec::with_capacity(drafts.len());
    for d in drafts {
        if let Some(pose) = place(rng, &d, &boxes, frame) {
            boxes.push(nominal_box(&pose, d.extent));
            placed.push(Placed { pose, ..d.bird });
        }
    }
    placed.sort_by(|a, b| a.pose.scale.total_cmp(&b.pose.scale));
    placed
}

fn draft<'a, R: Rng>(rng: &mut R, species: &'a Species, frame_width: f32) -> Draft<'a> {
    let pose = Pose {
        centre: (0.0, 0.0),
        scale: 1.0,
        tilt: uniform(rng, -MAX_TILT, MAX_TILT),
        facing_left: chance(rng, 0.5),
        flying: chance(rng, FLYING_PROBABILITY),
    };
    let look = sample_look(rng);
    let bird = Placed {
        species,
        pose,
        look: sample_colours(rng, look),
    };
    let extent = measure(&bird);
    let width = frame_width * log_uniform(rng, BOX_WIDTH.0, BOX_WIDTH.1);
    Draft {
        bird,
        extent,
        width,
    }
}

/// The extent of a bird's pose in bird units around its centre, measured on an off-screen render.
fn measure(bird: &Placed<'_>) -> Bounds {
    let probe = Pose {
        centre: (0.0, 0.0),
        scale: MEASURE_SCALE,
        ..bird.pose
    };
    let canvas = unobstructed(&bird.species.attributes, &bird.look, &probe);
    let (ox, oy) = canvas.origin();
    let unit = |v: u32, o: i32| (v as i32 + o) as f32 / MEASURE_SCALE;
    match canvas.label_box(is_bird) {
        Some(b) => Bounds {
            x0: unit(b.x0, ox),
            y0: unit(b.y0, oy),
            x1: unit(b.x1, ox),
            y1: unit(b.y1, oy),
        },
        None => Bounds {
            x0: -EXTENT,
            y0: -EXTENT,
            x1: EXTENT,
            y1: EXTENT,
        },
    }
}

/// A pose for `draft` whose nominal box overlaps no box in `taken` much, shrinking the bird
/// when it finds no place; `None` when even the smallest size finds none.
fn place<R: Rng>(
    rng: &mut R,
    draft: &Draft<'_>,
    taken: &[Bounds],
    frame: (f32, f32),
) -> Option<Pose> {
    let e = draft.extent;
    let overhang = if chance(rng, EDGE_PROBABILITY) {
        EDGE_OVERHANG
    } else {
        0.0
    };
    for shrink in 0..=SHRINK_STEPS {
        let scale = draft.width * SHRINK.powi(shrink) / (e.x1 - e.x0);
        for _ in 0..PLACEMENT_TRIES {
            let centre = (
                axis(rng, e.x0 * scale, e.x1 * scale, frame.0, overhang),
                axis(rng, e.y0 * scale, e.y1 * scale, frame.1, overhang),
            );
            let pose = Pose {
                centre,
                scale,
                ..draft.bird.pose
            };
            let b = nominal_box(&pose, e);
            if taken.iter().all(|t| overlap(t, &b) <= MAX_OVERLAP) {
                return Some(pose);
            }
        }
    }
    None
}

/// A centre coordinate that keeps `[c + lo, c + hi]` inside `[0, len]`, or lets up to
/// `overhang` of its length out on either side.
fn axis<R: Rng>(rng: &mut R, lo: f32, hi: f32, len: f32, overhang: f32) -> f32 {
    let out = overhang * (hi - lo);
    uniform(rng, -lo - out, len - hi + out)
}

/// The pixel box of `extent` (bird units) under `pose`.
fn nominal_box(pose: &Pose, extent: Bounds) -> Bounds {
    let (cx, cy) = pose.centre;
    Bounds {
        x0: cx + extent.x0 * pose.scale,
        y0: cy + extent.y0 * pose.scale,
        x1: cx + extent.x1 * pose.scale,
        y1: cy + extent.y1 * pose.scale,
    }
}

/// The area of `a ∩ b` as a fraction of the smaller box's area.
fn overlap(a: &Bounds, b: &Bounds) -> f32 {
    let w = (a.x1.min(b.x1) - a.x0.max(b.x0)).max(0.0);
    let h = (a.y1.min(b.y1) - a.y0.max(b.y0)).max(0.0);
    let area = |r: &Bounds| (r.x1 - r.x0) * (r.y1 - r.y0);
    w * h / area(a).min(area(b)).max(f32::MIN_POSITIVE)
}

/// Where the perch of an empty frame passes: the feet of a bird that has just left.
fn empty_perch_pose<R: Rng>(rng: &mut R, frame: (f32, f32)) -> Pose {
    let width = frame.0 * log_uniform(rng, BOX_WIDTH.0, BOX_WIDTH.1);
    Pose {
        centre: (uniform(rng, 0.0, frame.0), uniform(rng, 0.0, frame.1)),
        scale: width / PERCHED_WIDTH,
        tilt: 0.0,
        facing_left: false,
        flying: false,
    }
}

/// Draws `birds` in order; returns each one's off-screen copy (its labelled pixels).
fn draw_birds(canvas: &mut Canvas, birds: &[Placed<'_>]) -> Vec<Canvas> {
    birds
        .iter()
        .map(|p| {
            draw_bird(canvas, &p.species.attributes, &p.look, &p.pose);
            unobstructed(&p.species.attributes, &p.look, &p.pose)
        })
        .collect()
}

/// Foreground leaves or a branch near a bird (sometimes), sized as in a whole-scene frame in which
/// the bird has its usual size.
fn paint_occluders<R: Rng>(canvas: &mut Canvas, rng: &mut R, pose: &Pose, backdrop: &mut Backdrop) {
    let usual = (SCENE_SCALE.0 + SCENE_SCALE.1) / 2.0;
    let target = (pose.centre, EXTENT * pose.scale);
    paint_foreground(canvas, rng, target, pose.scale / usual, backdrop);
}

/// The box of each bird that shows, from the finished canvas and the birds' off-screen copies
/// (`masks[i]` is `birds[i]`'s, in drawing order).
fn ground_truth(canvas: &Canvas, birds: &[Placed<'_>], masks: &[Canvas]) -> Vec<BoxedBird> {
    let frame_width = canvas.width() as f32;
    birds
        .iter()
        .zip(masks)
        .enumerate()
        .filter_map(|(i, (bird, mask))| {
            let (bbox, shown, total) = visible_pixels(canvas, mask, &masks[i + 1..]);
            let bbox = bbox?;
            Some(BoxedBird {
                species: bird.species.index,
                bbox,
                width_fraction: bbox.width() as f32 / frame_width,
                visible: shown as f32 / total.max(1) as f32,
                flying: bird.pose.flying,
            })
        })
        .collect()
}

/// The tight box of the pixels of `mask`'s bird that show in `canvas` (a bird label there, and
/// no nearer bird's), how many show, and how many the bird has in all.
fn visible_pixels(
    canvas: &Canvas,
    mask: &Canvas,
    nearer: &[Canvas],
) -> (Option<PixelBox>, usize, usize) {
    let (ox, oy) = mask.origin();
    let mut found: Option<PixelBox> = None;
    let (mut shown, mut total) = (0, 0);
    for my in 0..mask.height() {
        for mx in 0..mask.width() {
            if !is_bird(mask.label(mx, my)) {
                continue;
            }
            total += 1;
            let (x, y) = (ox + mx as i32, oy + my as i32);
            let covered = |c: &Canvas| c.label_at(x, y).is_some_and(is_bird);
            if covered(canvas) && !nearer.iter().any(covered) {
                shown += 1;
                let (x, y) = (x as u32, y as u32);
                found = Some(found.map_or(PixelBox::pixel(x, y), |b| b.including(x, y)));
            }
        }
    }
    (found, shown, total)
}

/// Moves a bird slightly: along its perch when perched, in any direction in flight.
fn step<R: Rng>(rng: &mut R, pose: &mut Pose) {
    let reach = SEQUENCE_STEP * pose.scale;
    let dx = uniform(rng, -reach, reach);
    let dy = uniform(rng, -reach, reach);
    pose.centre.0 += dx;
    if pose.flying {
        pose.centre.1 += dy;
    }
}

#[cfg(test)]
mod tests;
