//! Similarity transforms from a model's local units to canvas pixels, and the images of shapes
//! under them: how the bird's body plan, drawn once in its own frame, lands in a frame at any
//! position, scale, tilt and facing.

use super::render::{Point, Shape};

/// A similarity transform (uniform scale, rotation, optional mirror, translation) from a model's
/// local units to canvas pixels: `x' = a·x + b·y + tx`, `y' = c·x + d·y + ty`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    a: f32,
    b: f32,
    c: f32,
    d: f32,
    tx: f32,
    ty: f32,
}

impl Affine {
    /// Mirror local `x` (when `mirror`), then scale by `scale`, rotate by `angle` radians and move
    /// the local origin to `origin`.
    pub fn similarity(origin: Point, scale: f32, angle: f32, mirror: bool) -> Self {
        let (sin, cos) = angle.sin_cos();
        let m = if mirror { -1.0 } else { 1.0 };
        Affine {
            a: scale * cos * m,
            b: -scale * sin,
            c: scale * sin * m,
            d: scale * cos,
            tx: origin.0,
            ty: origin.1,
        }
    }

    /// `self ∘ inner`: first `inner`, then `self`.
    pub fn then(&self, inner: &Affine) -> Affine {
        Affine {
            a: self.a * inner.a + self.b * inner.c,
            b: self.a * inner.b + self.b * inner.d,
            c: self.c * inner.a + self.d * inner.c,
            d: self.c * inner.b + self.d * inner.d,
            tx: self.a * inner.tx + self.b * inner.ty + self.tx,
            ty: self.c * inner.tx + self.d * inner.ty + self.ty,
        }
    }

    /// The image of a point.
    pub fn apply(&self, p: Point) -> Point {
        (
            self.a * p.0 + self.b * p.1 + self.tx,
            self.c * p.0 + self.d * p.1 + self.ty,
        )
    }

    /// The uniform scale factor.
    pub fn scale(&self) -> f32 {
        (self.a * self.d - self.b * self.c).abs().sqrt()
    }

    /// The image of a local ellipse (first axis at `angle` in local units).
    pub fn ellipse(&self, centre: Point, rx: f32, ry: f32, angle: f32) -> Shape {
        let (sin, cos) = angle.sin_cos();
        let (ux, uy) = (self.a * cos + self.b * sin, self.c * cos + self.d * sin);
        let s = self.scale();
        let norm = (ux * ux + uy * uy).sqrt().max(f32::MIN_POSITIVE);
        Shape::Ellipse {
            centre: self.apply(centre),
            rx: rx * s,
            ry: ry * s,
            cos: ux / norm,
            sin: uy / norm,
        }
    }

    /// The image of a local circle.
    pub fn circle(&self, centre: Point, r: f32) -> Shape {
        self.ellipse(centre, r, r, 0.0)
    }

    /// The image of a local polygon.
    pub fn polygon(&self, points: &[Point]) -> Shape {
        Shape::Polygon(points.iter().map(|&p| self.apply(p)).collect())
    }

    /// The image of a local thick segment of width `width`.
    pub fn segment(&self, a: Point, b: Point, width: f32) -> Shape {
        Shape::segment(self.apply(a), self.apply(b), width * self.scale())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affine_mirrors_rotates_and_scales() {
        let t = Affine::similarity((10.0, 10.0), 2.0, 0.0, true);
        let p = t.apply((1.0, 1.0));
        assert!((p.0 - 8.0).abs() < 1e-6 && (p.1 - 12.0).abs() < 1e-6);
        let r = Affine::similarity((0.0, 0.0), 1.0, std::f32::consts::FRAC_PI_2, false);
        let q = r.apply((1.0, 0.0));
        assert!(q.0.abs() < 1e-6 && (q.1 - 1.0).abs() < 1e-6);
        let both = t.then(&r);
        let z = both.apply((1.0, 0.0));
        assert!((z.0 - 10.0).abs() < 1e-5 && (z.1 - 12.0).abs() < 1e-5);
        assert!((both.scale() - 2.0).abs() < 1e-6);
        match t.ellipse((0.0, 0.0), 2.0, 1.0, 0.0) {
            Shape::Ellipse { rx, ry, cos, .. } => {
                assert_eq!((rx, ry), (4.0, 2.0));
                assert!((cos + 1.0).abs() < 1e-6, "mirrored axis points left");
            }
            other => panic!("expected an ellipse, got {other:?}"),
        }
    }
}
