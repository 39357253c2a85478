use super::*;
use crate::random::DOMAIN_SCENE;
use crate::species::derive_species;

/// A small frame keeps the tests fast; the rules do not depend on the size.
const W: u32 = 320;
const H: u32 = 200;

fn world() -> Vec<Species> {
    derive_species(1, 6)
}

fn rng(i: u64) -> rand_chacha::ChaCha8Rng {
    keyed_rng(DOMAIN_SCENE, 11, 0, i)
}

#[test]
fn one_bird_box_is_the_tight_box_of_every_bird_pixel() {
    let species = world();
    for i in 0..12 {
        let (canvas, truth) = paint_scene(&mut rng(i), &[&species[i as usize % 6]], W, H);
        let all = canvas.label_box(is_bird);
        assert_eq!(truth.first().map(|b| b.bbox), all, "frame {i}");
        assert!(truth.len() <= 1);
    }
}

#[test]
fn several_birds_split_the_bird_pixels_between_them() {
    let species = world();
    let group = [&species[0], &species[1], &species[2]];
    let mut seen_three = 0;
    for i in 0..10 {
        let (canvas, truth) = paint_scene(&mut rng(100 + i), &group, W, H);
        seen_three += usize::from(truth.len() == 3);
        let union = truth
            .iter()
            .map(|b| b.bbox)
            .reduce(|a, b| a.including(b.x0, b.y0).including(b.x1 - 1, b.y1 - 1));
        assert_eq!(
            union,
            canvas.label_box(is_bird),
            "frame {i}: boxes cover the bird pixels"
        );
        let species_seen: Vec<usize> = truth.iter().map(|b| b.species).collect();
        assert!(species_seen.iter().all(|s| *s < 3), "{species_seen:?}");
    }
    assert!(
        seen_three >= 7,
        "three birds usually all show: {seen_three} of 10"
    );
}

#[test]
fn boxes_lie_inside_the_frame_and_sizes_span_the_range() {
    let species = world();
    let mut widths = Vec::new();
    for i in 0..60 {
        let frame = render_scene(&mut rng(200 + i), &[&species[0]], W, H, i % 4 == 0);
        assert_eq!(frame.image.dimensions(), (W, H));
        for b in &frame.birds {
            let bx = b.bbox;
            assert!(
                bx.x0 < bx.x1 && bx.y0 < bx.y1 && bx.x1 <= W && bx.y1 <= H,
                "{bx:?}"
            );
            assert_eq!(b.width_fraction, bx.width() as f32 / W as f32);
            assert!(b.visible > 0.0 && b.visible <= 1.0);
            widths.push(b.width_fraction);
        }
    }
    widths.sort_by(f32::total_cmp);
    let (min, max, median) = (
        widths[0],
        widths[widths.len() - 1],
        widths[widths.len() / 2],
    );
    assert!(widths.len() >= 58, "nearly every single bird shows");
    assert!(min < 0.08 && max > 0.4 && max <= 0.62, "{min} {max}");
    assert!(
        median > 0.1 && median < 0.3,
        "log-uniform: small birds common; median {median}"
    );
}

#[test]
fn same_key_same_frame_and_an_empty_frame_has_no_box() {
    let species = world();
    let a = render_scene(&mut rng(7), &[&species[3], &species[4]], W, H, false);
    let b = render_scene(&mut rng(7), &[&species[3], &species[4]], W, H, false);
    assert_eq!(a.image, b.image);
    assert_eq!(a.birds, b.birds);
    let c = render_scene(&mut rng(8), &[&species[3], &species[4]], W, H, false);
    assert_ne!(a.image, c.image);
    for i in 0..5 {
        let empty = render_scene(&mut rng(300 + i), &[], W, H, i % 2 == 0);
        assert!(empty.birds.is_empty());
        let (canvas, _) = paint_scene(&mut rng(300 + i), &[], W, H);
        assert_eq!(canvas.label_box(is_bird), None);
    }
}

#[test]
fn night_scenes_are_grey() {
    let species = world();
    let frame = render_scene(&mut rng(400), &[&species[2]], W, H, true);
    assert!(frame.night);
    assert!(frame.image.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
}

#[test]
fn overlap_is_relative_to_the_smaller_box() {
    let big = Bounds {
        x0: 0.0,
        y0: 0.0,
        x1: 10.0,
        y1: 10.0,
    };
    let inside = Bounds {
        x0: 2.0,
        y0: 2.0,
        x1: 4.0,
        y1: 4.0,
    };
    let apart = Bounds {
        x0: 20.0,
        y0: 0.0,
        x1: 30.0,
        y1: 10.0,
    };
    let half = Bounds {
        x0: 5.0,
        y0: 0.0,
        x1: 15.0,
        y1: 10.0,
    };
    assert_eq!(overlap(&big, &inside), 1.0);
    assert_eq!(overlap(&big, &apart), 0.0);
    assert_eq!(overlap(&big, &half), 0.5);
}

/// Mean absolute difference of two equal-sized images, over a box.
fn mean_diff(a: &RgbImage, b: &RgbImage, bx: PixelBox) -> f32 {
    let mut sum = 0u64;
    for y in bx.y0..bx.y1 {
        for x in bx.x0..bx.x1 {
            let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
            sum += (0..3).map(|c| u64::from(p[c].abs_diff(q[c]))).sum::<u64>();
        }
    }
    sum as f32 / (3 * bx.width() * bx.height()) as f32
}

#[test]
fn a_sequence_keeps_the_scene_and_the_bird_arrives() {
    let species = world();
    for (i, night) in [(0, false), (1, true), (2, false)] {
        let frames = render_sequence(&mut rng(500 + i), &species[1], W, H, night, 5);
        assert_eq!(frames.len(), 5);
        assert!(frames[0].birds.is_empty(), "the bird is absent at first");
        let arrival = frames
            .iter()
            .position(|f| !f.birds.is_empty())
            .expect("it arrives");
        assert!(
            (1..=2).contains(&arrival),
            "after one or two empty frames: {arrival}"
        );
        assert!(
            frames[arrival..].iter().all(|f| f.birds.len() == 1),
            "and stays"
        );
        let whole = PixelBox {
            x0: 0,
            y0: 0,
            x1: W,
            y1: H,
        };
        if arrival == 2 {
            let still = mean_diff(&frames[0].image, &frames[1].image, whole);
            assert!(still < 25.0, "fixed scene: noise and drift only, {still}");
        }
        let bird = frames[arrival].birds[0];
        let moved = mean_diff(&frames[0].image, &frames[arrival].image, bird.bbox);
        let noise = mean_diff(&frames[0].image, &frames[arrival].image, whole);
        assert!(
            moved > noise,
            "the bird's box changes more than the frame: {moved} vs {noise}"
        );
        for pair in frames[arrival..].windows(2) {
            let (a, b) = (pair[0].birds[0].bbox, pair[1].birds[0].bbox);
            let shift = a.centre().0 - b.centre().0;
            assert!(
                shift.abs() <= 0.1 * a.width() as f32 + 2.0,
                "slight moves: {a:?} {b:?}"
            );
        }
    }
}
