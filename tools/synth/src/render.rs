//! A small anti-aliased rasteriser: filled ellipses, polygons and thick line segments on a float
//! RGB canvas, with a per-pixel part label buffer.
//!
//! Anti-aliasing is by supersampling: a pixel's coverage is the fraction of a
//! [`SUPERSAMPLE`]×[`SUPERSAMPLE`] grid of points inside the shape, and the paint is blended with
//! that weight. A pixel whose coverage reaches [`LABEL_COVERAGE`] takes the paint's label, so the
//! label buffer records which part of the scene is on top at each pixel; the scene uses it to tell
//! which bird parts are visible.
//!
//! Coordinates are image pixels as floats, `x` to the right and `y` down; pixel `(i, j)` of a
//! canvas covers `[x0 + i, x0 + i + 1) × [y0 + j, y0 + j + 1)`, where `(x0, y0)` is the canvas'
//! origin (zero for an image, elsewhere for an off-screen canvas). Out-of-canvas parts of a shape
//! are discarded, never an error.

use image::RgbImage;

use super::palette::Rgb;

/// A 2-D point `(x, y)` in pixels (or in a model's local units before an
/// [`super::affine::Affine`]).
pub type Point = (f32, f32);

/// Sub-samples per pixel side: coverage is measured on a 4×4 grid (17 levels).
pub const SUPERSAMPLE: usize = 4;

/// Minimum coverage for a pixel to take a paint's label.
pub const LABEL_COVERAGE: f32 = 0.5;

/// The label of pixels no labelled paint has covered.
pub const NO_LABEL: u8 = 0;

/// A filled shape in canvas coordinates.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A rotated ellipse.
    Ellipse {
        /// Centre.
        centre: Point,
        /// Radius along the ellipse's first axis.
        rx: f32,
        /// Radius along its second axis.
        ry: f32,
        /// Cosine of the first axis' angle to the x axis.
        cos: f32,
        /// Sine of that angle.
        sin: f32,
    },
    /// A simple or self-intersecting polygon, filled by the even-odd rule.
    Polygon(Vec<Point>),
    /// A segment of the given half width with round caps (a capsule).
    Segment {
        /// One end.
        a: Point,
        /// The other end.
        b: Point,
        /// Half of the stroke width.
        half_width: f32,
    },
}

/// An axis-aligned box `[x0, x1] × [y0, y1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// Left edge.
    pub x0: f32,
    /// Top edge.
    pub y0: f32,
    /// Right edge.
    pub x1: f32,
    /// Bottom edge.
    pub y1: f32,
}

impl Shape {
    /// An ellipse with radii `rx`, `ry`, its first axis at `angle` radians from the x axis.
    pub fn ellipse(centre: Point, rx: f32, ry: f32, angle: f32) -> Self {
        Shape::Ellipse {
            centre,
            rx,
            ry,
            cos: angle.cos(),
            sin: angle.sin(),
        }
    }

    /// A circle.
    pub fn circle(centre: Point, r: f32) -> Self {
        Shape::ellipse(centre, r, r, 0.0)
    }

    /// A thick segment of total width `width`.
    pub fn segment(a: Point, b: Point, width: f32) -> Self {
        Shape::Segment {
            a,
            b,
            half_width: width / 2.0,
        }
    }

    /// The shape's bounding box.
    pub fn bounds(&self) -> Bounds {
        match self {
            Shape::Ellipse {
                centre,
                rx,
                ry,
                cos,
                sin,
            } => {
                let hx = ((rx * cos).powi(2) + (ry * sin).powi(2)).sqrt();
                let hy = ((rx * sin).powi(2) + (ry * cos).powi(2)).sqrt();
                Bounds {
                    x0: centre.0 - hx,
                    y0: centre.1 - hy,
                    x1: centre.0 + hx,
                    y1: centre.1 + hy,
                }
            }
            Shape::Polygon(points) => points.iter().fold(
                Bounds {
                    x0: f32::INFINITY,
                    y0: f32::INFINITY,
                    x1: f32::NEG_INFINITY,
                    y1: f32::NEG_INFINITY,
                },
                |b, p| Bounds {
                    x0: b.x0.min(p.0),
                    y0: b.y0.min(p.1),
                    x1: b.x1.max(p.0),
                    y1: b.y1.max(p.1),
                },
            ),
            Shape::Segment { a, b, half_width } => Bounds {
                x0: a.0.min(b.0) - half_width,
                y0: a.1.min(b.1) - half_width,
                x1: a.0.max(b.0) + half_width,
                y1: a.1.max(b.1) + half_width,
            },
        }
    }

    /// Whether the point `p` lies inside the shape.
    pub fn contains(&self, p: Point) -> bool {
        match self {
            Shape::Ellipse {
                centre,
                rx,
                ry,
                cos,
                sin,
            } => {
                let (dx, dy) = (p.0 - centre.0, p.1 - centre.1);
                let u = (dx * cos + dy * sin) / rx;
                let v = (dy * cos - dx * sin) / ry;
                u * u + v * v <= 1.0
            }
            Shape::Polygon(points) => polygon_contains(points, p),
            Shape::Segment { a, b, half_width } => {
                segment_distance_sq(*a, *b, p) <= half_width * half_width
            }
        }
    }

    /// Fraction of the pixel `[x, x+1) × [y, y+1)` inside the shape, on the supersampling grid.
    pub fn coverage(&self, x: f32, y: f32) -> f32 {
        if let Some(all_or_none) = self.uniform_coverage((x + 0.5, y + 0.5)) {
            return all_or_none;
        }
        let step = 1.0 / SUPERSAMPLE as f32;
        let mut inside = 0usize;
        for j in 0..SUPERSAMPLE {
            let sy = y + (j as f32 + 0.5) * step;
            for i in 0..SUPERSAMPLE {
                let sx = x + (i as f32 + 0.5) * step;
                inside += usize::from(self.contains((sx, sy)));
            }
        }
        inside as f32 / (SUPERSAMPLE * SUPERSAMPLE) as f32
    }
}

impl Shape {
    /// 1 or 0 when every sub-sample of the pixel centred at `c` is certainly inside or outside
    /// (an exact shortcut: the answer equals the supersampled one), `None` near the edge and for
    /// polygons.
    fn uniform_coverage(&self, c: Point) -> Option<f32> {
        let (distance, edge, unit) = match self {
            Shape::Ellipse {
                centre,
                rx,
                ry,
                cos,
                sin,
            } => {
                let (dx, dy) = (c.0 - centre.0, c.1 - centre.1);
                let u = (dx * cos + dy * sin) / rx;
                let v = (dy * cos - dx * sin) / ry;
                ((u * u + v * v).sqrt(), 1.0, 1.0 / rx.min(*ry))
            }
            Shape::Segment { a, b, half_width } => {
                (segment_distance_sq(*a, *b, c).sqrt(), *half_width, 1.0)
            }
            Shape::Polygon(_) => return None,
        };
        let margin = SUBSAMPLE_REACH * unit;
        if distance + margin < edge {
            Some(1.0)
        } else if distance - margin > edge {
            Some(0.0)
        } else {
            None
        }
    }
}

/// Upper bound on the distance from a pixel's centre to its farthest sub-sample
/// (`(0.5 - 0.5 / SUPERSAMPLE) · √2 ≈ 0.53`), with a little slack for rounding.
const SUBSAMPLE_REACH: f32 = 0.54;

/// Even-odd point-in-polygon test (crossing number).
fn polygon_contains(points: &[Point], p: Point) -> bool {
    let mut inside = false;
    let mut prev = match points.last() {
        Some(&last) => last,
        None => return false,
    };
    for &cur in points {
        if (cur.1 > p.1) != (prev.1 > p.1) {
            let x_cross = cur.0 + (p.1 - cur.1) * (prev.0 - cur.0) / (prev.1 - cur.1);
            if p.0 < x_cross {
                inside = !inside;
            }
        }
        prev = cur;
    }
    inside
}

/// Squared distance from `p` to the segment `a`–`b`.
fn segment_distance_sq(a: Point, b: Point, p: Point) -> f32 {
    let (abx, aby) = (b.0 - a.0, b.1 - a.1);
    let len_sq = abx * abx + aby * aby;
    let t = if len_sq > 0.0 {
        (((p.0 - a.0) * abx + (p.1 - a.1) * aby) / len_sq).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (dx, dy) = (p.0 - (a.0 + t * abx), p.1 - (a.1 + t * aby));
    dx * dx + dy * dy
}

/// A box of whole pixels `[x0, x1) × [y0, y1)` in canvas indices (exclusive ends), such as the
/// tight box of the pixels carrying some labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PixelBox {
    /// First column.
    pub x0: u32,
    /// First row.
    pub y0: u32,
    /// One past the last column.
    pub x1: u32,
    /// One past the last row.
    pub y1: u32,
}

impl PixelBox {
    /// The one-pixel box at `(x, y)`.
    pub fn pixel(x: u32, y: u32) -> Self {
        PixelBox {
            x0: x,
            y0: y,
            x1: x + 1,
            y1: y + 1,
        }
    }

    /// The smallest box holding `self` and pixel `(x, y)`.
    pub fn including(self, x: u32, y: u32) -> Self {
        PixelBox {
            x0: self.x0.min(x),
            y0: self.y0.min(y),
            x1: self.x1.max(x + 1),
            y1: self.y1.max(y + 1),
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.x1 - self.x0
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.y1 - self.y0
    }

    /// Centre, in pixels (continuous coordinates).
    pub fn centre(&self) -> Point {
        (
            (self.x0 + self.x1) as f32 / 2.0,
            (self.y0 + self.y1) as f32 / 2.0,
        )
    }
}

/// How a shape is painted: colour, opacity and the label it writes (if any).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paint {
    /// Fill colour.
    pub colour: Rgb,
    /// Opacity in `0..=1`, multiplied with the coverage.
    pub alpha: f32,
    /// Label written where the coverage reaches [`LABEL_COVERAGE`]; `None` leaves labels as they
    /// are (background paint).
    pub label: Option<u8>,
}

impl Paint {
    /// An opaque, unlabelled paint.
    pub fn solid(colour: Rgb) -> Self {
        Paint {
            colour,
            alpha: 1.0,
            label: None,
        }
    }

    /// An opaque paint writing `label`.
    pub fn labelled(colour: Rgb, label: u8) -> Self {
        Paint {
            colour,
            alpha: 1.0,
            label: Some(label),
        }
    }
}

/// A float RGB canvas with a label per pixel.
#[derive(Debug, Clone, PartialEq)]
pub struct Canvas {
    origin: (i32, i32),
    width: usize,
    height: usize,
    pixels: Vec<Rgb>,
    labels: Vec<u8>,
}

impl Canvas {
    /// A `width`×`height` canvas at the origin, filled with `background`, all labels
    /// [`NO_LABEL`].
    pub fn new(width: usize, height: usize, background: Rgb) -> Self {
        Canvas::with_origin((0, 0), width, height, background)
    }

    /// A canvas whose top-left pixel is at `origin` in image coordinates.
    pub fn with_origin(origin: (i32, i32), width: usize, height: usize, background: Rgb) -> Self {
        Canvas {
            origin,
            width,
            height,
            pixels: vec![background; width * height],
            labels: vec![NO_LABEL; width * height],
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The colour of pixel `(x, y)` (canvas indices).
    pub fn pixel(&self, x: usize, y: usize) -> Rgb {
        self.pixels[y * self.width + x]
    }

    /// The label of pixel `(x, y)` (canvas indices).
    pub fn label(&self, x: usize, y: usize) -> u8 {
        self.labels[y * self.width + x]
    }

    /// The label of the pixel at image position `(x, y)`, or `None` outside the canvas.
    pub fn label_at(&self, x: i32, y: i32) -> Option<u8> {
        let (cx, cy) = (x - self.origin.0, y - self.origin.1);
        let inside = (0..self.width as i32).contains(&cx) && (0..self.height as i32).contains(&cy);
        inside.then(|| self.labels[cy as usize * self.width + cx as usize])
    }

    /// Image position of the top-left pixel.
    pub fn origin(&self) -> (i32, i32) {
        self.origin
    }

    /// The tight box (canvas indices) of the pixels whose label satisfies `wanted`, or `None`
    /// when there is none.
    pub fn label_box(&self, wanted: impl Fn(u8) -> bool) -> Option<PixelBox> {
        let mut found: Option<PixelBox> = None;
        for (y, row) in self.labels.chunks_exact(self.width.max(1)).enumerate() {
            for (x, &l) in row.iter().enumerate() {
                if wanted(l) {
                    let (x, y) = (x as u32, y as u32);
                    found = Some(found.map_or(PixelBox::pixel(x, y), |b| b.including(x, y)));
                }
            }
        }
        found
    }

    /// How many pixels carry each label.
    pub fn label_counts(&self) -> [usize; 256] {
        let mut counts = [0usize; 256];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// Paints `shape` with `paint`, blending by coverage; parts outside the canvas are dropped.
    pub fn fill(&mut self, shape: &Shape, paint: Paint) {
        let b = shape.bounds();
        let Some((xs, ys)) = self.pixel_range(b) else {
            return;
        };
        for py in ys {
            let y = (py as i32 + self.origin.1) as f32;
            for px in xs.clone() {
                let x = (px as i32 + self.origin.0) as f32;
                let cov = shape.coverage(x, y);
                if cov > 0.0 {
                    self.blend(px, py, cov, paint);
                }
            }
        }
    }

    /// The canvas pixel index ranges a bounding box touches, or `None` when it misses.
    fn pixel_range(&self, b: Bounds) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
        let clamp_to = |v: f32, origin: i32, len: usize| -> usize {
            (v - origin as f32).clamp(0.0, len as f32) as usize
        };
        if !(b.x0.is_finite() && b.y0.is_finite() && b.x1.is_finite() && b.y1.is_finite()) {
            return None;
        }
        let x0 = clamp_to(b.x0.floor(), self.origin.0, self.width);
        let x1 = clamp_to(b.x1.floor() + 1.0, self.origin.0, self.width);
        let y0 = clamp_to(b.y0.floor(), self.origin.1, self.height);
        let y1 = clamp_to(b.y1.floor() + 1.0, self.origin.1, self.height);
        (x0 < x1 && y0 < y1).then_some((x0..x1, y0..y1))
    }

    fn blend(&mut self, px: usize, py: usize, coverage: f32, paint: Paint) {
        let i = py * self.width + px;
        let w = coverage * paint.alpha;
        let p = &mut self.pixels[i];
        for (c, &target) in p.iter_mut().zip(paint.colour.iter()) {
            *c += (target - *c) * w;
        }
        if let Some(label) = paint.label {
            if coverage >= LABEL_COVERAGE {
                self.labels[i] = label;
            }
        }
    }

    /// Replaces every pixel by `f(x, y, label, colour)` (canvas indices).
    pub fn map_pixels(&mut self, mut f: impl FnMut(usize, usize, u8, Rgb) -> Rgb) {
        for y in 0..self.height {
            for x in 0..self.width {
                let i = y * self.width + x;
                self.pixels[i] = f(x, y, self.labels[i], self.pixels[i]);
            }
        }
    }

    /// The canvas as an 8-bit image (channels clamped to `0..=1`, then rounded).
    pub fn to_image(&self) -> RgbImage {
        let to_u8 = |c: f32| (c.clamp(0.0, 1.0) * 255.0).round() as u8;
        let mut img = RgbImage::new(self.width as u32, self.height as u32);
        for (dst, src) in img.pixels_mut().zip(&self.pixels) {
            dst.0 = src.map(to_u8);
        }
        img
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLACK: Rgb = [0.0; 3];
    const WHITE: Rgb = [1.0; 3];

    fn total_coverage(canvas: &Canvas) -> f32 {
        let mut sum = 0.0;
        for y in 0..canvas.height() {
            for x in 0..canvas.width() {
                sum += canvas.pixel(x, y)[0];
            }
        }
        sum
    }

    #[test]
    fn filled_circle_covers_its_area_with_antialiased_rim() {
        let mut c = Canvas::new(32, 32, BLACK);
        c.fill(
            &Shape::circle((16.0, 16.0), 10.0),
            Paint::labelled(WHITE, 7),
        );
        assert_eq!(c.pixel(16, 16), WHITE, "centre is fully covered");
        assert_eq!(c.pixel(0, 0), BLACK, "corner is untouched");
        assert_eq!(c.pixel(16, 2), BLACK, "outside the radius");
        let rim = c.pixel(23, 22)[0];
        assert!(rim > 0.0 && rim < 1.0, "rim pixel is partial: {rim}");
        let area = std::f32::consts::PI * 100.0;
        let got = total_coverage(&c);
        assert!((got - area).abs() / area < 0.01, "area {got} vs {area}");
        assert_eq!(c.label(16, 16), 7);
        assert_eq!(c.label(0, 0), NO_LABEL);
    }

    #[test]
    fn pixel_aligned_square_is_exact() {
        let mut c = Canvas::new(16, 16, BLACK);
        let square = Shape::Polygon(vec![(4.0, 4.0), (12.0, 4.0), (12.0, 12.0), (4.0, 12.0)]);
        c.fill(&square, Paint::solid(WHITE));
        for y in 0..16 {
            for x in 0..16 {
                let inside = (4..12).contains(&x) && (4..12).contains(&y);
                assert_eq!(
                    c.pixel(x, y),
                    if inside { WHITE } else { BLACK },
                    "({x},{y})"
                );
            }
        }
    }

    #[test]
    fn half_pixel_square_has_half_and_quarter_edges() {
        let mut c = Canvas::new(16, 16, BLACK);
        let square = Shape::Polygon(vec![(4.5, 4.5), (8.5, 4.5), (8.5, 8.5), (4.5, 8.5)]);
        c.fill(&square, Paint::solid(WHITE));
        assert_eq!(c.pixel(6, 6)[0], 1.0);
        assert_eq!(c.pixel(4, 6)[0], 0.5, "left edge");
        assert_eq!(c.pixel(8, 6)[0], 0.5, "right edge");
        assert_eq!(c.pixel(4, 4)[0], 0.25, "corner");
        assert_eq!(c.pixel(3, 6)[0], 0.0);
        assert!((total_coverage(&c) - 16.0).abs() < 1e-4);
    }

    #[test]
    fn thick_segment_covers_a_band() {
        let mut c = Canvas::new(20, 10, BLACK);
        c.fill(
            &Shape::segment((2.0, 5.0), (18.0, 5.0), 2.0),
            Paint::solid(WHITE),
        );
        assert_eq!(c.pixel(10, 4)[0], 1.0);
        assert_eq!(c.pixel(10, 5)[0], 1.0);
        assert_eq!(c.pixel(10, 2)[0], 0.0);
        assert_eq!(c.pixel(10, 7)[0], 0.0);
        let band = 16.0 * 2.0 + std::f32::consts::PI;
        assert!((total_coverage(&c) - band).abs() < 1.0);
    }

    #[test]
    fn alpha_blends_and_low_coverage_keeps_label() {
        let mut c = Canvas::new(4, 4, BLACK);
        let paint = Paint {
            colour: WHITE,
            alpha: 0.5,
            label: Some(3),
        };
        c.fill(
            &Shape::Polygon(vec![(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0)]),
            paint,
        );
        assert_eq!(c.pixel(1, 1)[0], 0.5);
        assert_eq!(c.label(1, 1), 3);
        let mut d = Canvas::new(4, 4, BLACK);
        let sliver = Shape::Polygon(vec![(0.0, 0.0), (0.25, 0.0), (0.25, 4.0), (0.0, 4.0)]);
        d.fill(&sliver, Paint::labelled(WHITE, 3));
        assert_eq!(d.pixel(0, 0)[0], 0.25);
        assert_eq!(
            d.label(0, 0),
            NO_LABEL,
            "a quarter-covered pixel keeps its label"
        );
    }

    #[test]
    fn label_box_is_tight_around_labelled_pixels() {
        let mut c = Canvas::new(20, 12, BLACK);
        assert_eq!(c.label_box(|l| l == 4), None);
        let square = Shape::Polygon(vec![(3.0, 2.0), (9.0, 2.0), (9.0, 7.0), (3.0, 7.0)]);
        c.fill(&square, Paint::labelled(WHITE, 4));
        c.fill(&Shape::circle((15.0, 9.0), 1.0), Paint::labelled(WHITE, 5));
        let b = c.label_box(|l| l == 4).expect("the square is labelled");
        assert_eq!(
            b,
            PixelBox {
                x0: 3,
                y0: 2,
                x1: 9,
                y1: 7
            }
        );
        assert_eq!((b.width(), b.height(), b.centre()), (6, 5, (6.0, 4.5)));
        let both = c.label_box(|l| l != NO_LABEL).expect("two shapes");
        assert_eq!((both.x0, both.y0, both.x1, both.y1), (3, 2, 16, 10));
    }

    #[test]
    fn shapes_off_canvas_and_offset_origin() {
        let mut c = Canvas::new(8, 8, BLACK);
        c.fill(&Shape::circle((-20.0, -20.0), 3.0), Paint::solid(WHITE));
        assert_eq!(total_coverage(&c), 0.0);
        let mut o = Canvas::with_origin((100, 50), 8, 8, BLACK);
        o.fill(&Shape::circle((104.0, 54.0), 1.0), Paint::solid(WHITE));
        assert!(o.pixel(3, 3)[0] > 0.5 && o.pixel(4, 4)[0] > 0.5);
        assert_eq!(o.pixel(0, 0)[0], 0.0);
        o.fill(
            &Shape::circle((104.0, 54.0), 1.0),
            Paint::labelled(WHITE, 6),
        );
        assert_eq!(o.label_at(104, 54), Some(6), "image coordinates");
        assert_eq!(o.label_at(100, 50), Some(NO_LABEL));
        assert_eq!((o.label_at(99, 54), o.label_at(104, 58)), (None, None));
    }
}
