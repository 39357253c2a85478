//! Class prototypes of the image parts, the reference of the prototype scores: for each class
//! c of the bundle and part m, `μ_c[m]` is the unit vector of the mean of the unit parts `V̂[m]`
//! of the class's calibration images. Two scores compare a frame's parts with them:
//!
//! ```text
//! part_prototype     = (1/M) Σ_m cos(V[m], μ_ĉ[m])          ĉ the class the frame is answered
//! nearest_prototype  = max_c (1/M) Σ_m cos(V[m], μ_c[m])
//! ```
//!
//! A species the model never saw shares parts with known ones, but not all of them with one
//! class: its parts sit farther from the prototype of the class it is taken for than a known
//! species' parts from their own (`BENCHMARKS.md`, "Unknown species"). The export builds them
//! ([`PrototypeBuilder`]) and stores them in the bundle as `open_world.safetensors`, one F32
//! tensor `part_prototypes` (C, M, D) in class order.
//!
//! The builder also scores each calibration image against the prototypes built without it
//! ([`PrototypeBuilder::without`]), so the threshold is chosen on scores of images the
//! prototypes did not see, as every frame in the field will be.

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// File name of the prototypes in a bundle.
pub const PROTOTYPES_FILE: &str = "open_world.safetensors";
/// Name of the tensor in it, (C, M, D).
pub const PROTOTYPES_TENSOR: &str = "part_prototypes";

/// Why prototypes were refused or could not be built.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PrototypesError {
    /// Not a safetensors file.
    #[error("not a valid safetensors file: {0}")]
    Parse(String),
    /// The tensor is missing, or of the wrong type, shape or values.
    #[error("tensor {PROTOTYPES_TENSOR}: {0}")]
    Tensor(String),
    /// A class without an image to make its prototype from.
    #[error("class {0} has no calibration image to make its part prototype from")]
    NoImages(usize),
}

/// One prototype of M parts of width D per class, each part a unit vector.
#[derive(Clone, Debug, PartialEq)]
pub struct PartPrototypes {
    parts: usize,
    embed: usize,
    /// (C, M, D) row-major, every row of unit length.
    data: Vec<f32>,
}

impl PartPrototypes {
    /// Prototypes from (C, M, D) row-major `data` (each row is normalised): C at least 1,
    /// every value finite, no zero row.
    pub fn new(parts: usize, embed: usize, data: Vec<f32>) -> Result<Self, PrototypesError> {
        let per = parts * embed;
        if per == 0 || data.is_empty() || !data.len().is_multiple_of(per) {
            return Err(PrototypesError::Tensor(format!(
                "{} values are not C ≥ 1 prototypes of M·D = {parts}·{embed}",
                data.len()
            )));
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(PrototypesError::Tensor(format!(
                "non-finite value {} at flat index {i}",
                data[i]
            )));
        }
        let mut unit = Vec::with_capacity(data.len());
        for (row, v) in data.chunks_exact(embed).enumerate() {
            let norm = v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
            if norm == 0.0 {
                return Err(PrototypesError::Tensor(format!("row {row} is zero")));
            }
            unit.extend(v.iter().map(|&x| (f64::from(x) / norm) as f32));
        }
        Ok(Self {
            parts,
            embed,
            data: unit,
        })
    }

    /// C, the number of prototypes (one per class).
    pub fn classes(&self) -> usize {
        self.data.len() / (self.parts * self.embed)
    }

    /// The unit prototypes, (C, M, D) row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The prototype of `class`, (M, D).
    fn prototype(&self, class: usize) -> impl Iterator<Item = f64> + '_ {
        let per = self.parts * self.embed;
        self.data[class * per..(class + 1) * per]
            .iter()
            .map(|&x| f64::from(x))
    }

    /// `part_prototype`: `(1/M) Σ_m cos(V[m], μ_class[m])` of one image's parts (M, D); NaN
    /// for a class out of range.
    pub fn answered(&self, parts: &[f32], class: usize) -> f32 {
        if class >= self.classes() {
            return f32::NAN;
        }
        let unit = unit_rows(parts, self.embed);
        mean_part_cosine(&unit, self.prototype(class), self.parts) as f32
    }

    /// `nearest_prototype`: `max_c (1/M) Σ_m cos(V[m], μ_c[m])` of one image's parts (M, D).
    pub fn nearest(&self, parts: &[f32]) -> f32 {
        let unit = unit_rows(parts, self.embed);
        (0..self.classes())
            .map(|c| mean_part_cosine(&unit, self.prototype(c), self.parts))
            .fold(f64::NEG_INFINITY, f64::max) as f32
    }

    /// The bundle file's bytes: one F32 tensor [`PROTOTYPES_TENSOR`] (C, M, D).
    pub fn to_safetensors(&self) -> Vec<u8> {
        let bytes: Vec<u8> = self.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        let shape = vec![self.classes(), self.parts, self.embed];
        let view = TensorView::new(Dtype::F32, shape, &bytes).expect("the shape fits the data");
        safetensors::serialize([(PROTOTYPES_TENSOR, view)], None)
            .expect("one F32 tensor serialises")
    }

    /// Prototypes of C = `classes`, M = `parts`, D = `embed` from the bundle file's bytes.
    pub fn from_safetensors(
        bytes: &[u8],
        classes: usize,
        parts: usize,
        embed: usize,
    ) -> Result<Self, PrototypesError> {
        let tensors =
            SafeTensors::deserialize(bytes).map_err(|e| PrototypesError::Parse(e.to_string()))?;
        let names = tensors.names();
        if names != [PROTOTYPES_TENSOR] {
            return Err(PrototypesError::Tensor(format!(
                "expected exactly this tensor, found {names:?}"
            )));
        }
        let view = tensors
            .tensor(PROTOTYPES_TENSOR)
            .map_err(|e| PrototypesError::Tensor(e.to_string()))?;
        if view.dtype() != Dtype::F32 {
            return Err(PrototypesError::Tensor(format!(
                "is {:?}, expected F32",
                view.dtype()
            )));
        }
        if view.shape() != [classes, parts, embed] {
            return Err(PrototypesError::Tensor(format!(
                "has shape {:?}, expected ({classes}, {parts}, {embed}): C classes, M = \
                 head.parts, D = head.embed_dim",
                view.shape()
            )));
        }
        let data = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Self::new(parts, embed, data)
    }
}

/// Every row of `x` (rows of `width`) divided by its norm (a zero row stays zero), in f64.
fn unit_rows<T: Copy + Into<f64>>(x: &[T], width: usize) -> Vec<f64> {
    x.chunks_exact(width)
        .flat_map(|row| {
            let norm = row.iter().map(|&v| v.into().powi(2)).sum::<f64>().sqrt();
            let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
            row.iter().map(move |&v| v.into() * scale)
        })
        .collect()
}

/// `(1/M) Σ_m ⟨u[m], μ[m]⟩` of M unit parts `u` and a unit prototype `μ`, both (M, D)
/// row-major: the sum of the element products is the sum of the M cosines.
fn mean_part_cosine(unit_parts: &[f64], prototype: impl Iterator<Item = f64>, parts: usize) -> f64 {
    let dot: f64 = unit_parts.iter().zip(prototype).map(|(a, b)| a * b).sum();
    dot / parts as f64
}

/// The per-class sums of unit parts that make prototypes.
#[derive(Clone, Debug)]
pub struct PrototypeBuilder {
    parts: usize,
    embed: usize,
    /// Per class: Σ of its images' unit parts (M·D), and how many.
    sums: Vec<(Vec<f64>, usize)>,
}

impl PrototypeBuilder {
    /// An empty builder for `classes` classes of parts (M, D).
    pub fn new(classes: usize, parts: usize, embed: usize) -> Self {
        Self {
            parts,
            embed,
            sums: vec![(vec![0.0; parts * embed], 0); classes],
        }
    }

    /// Adds one image of `class` (its parts (M, D)).
    pub fn add(&mut self, class: usize, parts: &[f32]) {
        let (sum, count) = &mut self.sums[class];
        sum.iter_mut()
            .zip(unit_rows(parts, self.embed))
            .for_each(|(s, u)| *s += u);
        *count += 1;
    }

    /// One prototype per class; every class needs at least one image.
    pub fn build(&self) -> Result<PartPrototypes, PrototypesError> {
        if let Some(class) = self.sums.iter().position(|(_, n)| *n == 0) {
            return Err(PrototypesError::NoImages(class));
        }
        let data: Vec<f32> = self
            .sums
            .iter()
            .flat_map(|(sum, _)| unit_rows(sum, self.embed))
            .map(|v| v as f32)
            .collect();
        PartPrototypes::new(self.parts, self.embed, data)
    }

    /// The prototypes as they would be without one added image of `class` with `parts`: what
    /// the calibration scores that image against. Its class keeps no prototype (NaN scores)
    /// when the image was its only one.
    pub fn without(&self, class: usize, parts: &[f32]) -> LeftOut<'_> {
        LeftOut {
            builder: self,
            class,
            unit: unit_rows(parts, self.embed),
        }
    }

    /// The unit prototype of `class`, less `minus` when given; `None` for a class with no
    /// image left.
    fn prototype(&self, class: usize, minus: Option<&[f64]>) -> Option<Vec<f64>> {
        let (sum, count) = &self.sums[class];
        let left = count.saturating_sub(usize::from(minus.is_some()));
        (left > 0).then(|| match minus {
            Some(minus) => {
                let rest: Vec<f64> = sum.iter().zip(minus).map(|(s, u)| s - u).collect();
                unit_rows(&rest, self.embed)
            }
            None => unit_rows(sum, self.embed),
        })
    }
}

/// One calibration image against the prototypes built without it ([`PrototypeBuilder::without`]).
pub struct LeftOut<'a> {
    builder: &'a PrototypeBuilder,
    class: usize,
    unit: Vec<f64>,
}

impl LeftOut<'_> {
    fn similarity(&self, class: usize) -> f64 {
        let minus = (class == self.class).then_some(self.unit.as_slice());
        self.builder.prototype(class, minus).map_or(f64::NAN, |p| {
            mean_part_cosine(&self.unit, p.into_iter(), self.builder.parts)
        })
    }

    /// [`PartPrototypes::answered`] for the image answered as `class`.
    pub fn answered(&self, class: usize) -> f32 {
        self.similarity(class) as f32
    }

    /// [`PartPrototypes::nearest`] (classes without a prototype left are skipped).
    pub fn nearest(&self) -> f32 {
        (0..self.builder.sums.len())
            .map(|c| self.similarity(c))
            .filter(|s| !s.is_nan())
            .fold(f64::NEG_INFINITY, f64::max) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::rng::Rng;

    const M: usize = 3;
    const D: usize = 4;

    fn cosine(a: &[f32], b: &[f32]) -> f64 {
        let dot: f64 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum();
        let n = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        dot / (n(a) * n(b))
    }

    /// `(1/M) Σ_m cos(parts[m], prototype[m])`, every index spelled out.
    fn similarity_loop(prototype: &[f32], parts: &[f32]) -> f64 {
        (0..M)
            .map(|m| cosine(&parts[m * D..(m + 1) * D], &prototype[m * D..(m + 1) * D]))
            .sum::<f64>()
            / M as f64
    }

    /// The prototype of `images`, every index spelled out: per part, the mean of unit vectors.
    fn prototype_loop(images: &[&Vec<f32>]) -> Vec<f32> {
        let mut out = Vec::new();
        for m in 0..M {
            let mut mean = [0f64; D];
            for image in images {
                let v = &image[m * D..(m + 1) * D];
                let n = v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
                for d in 0..D {
                    mean[d] += f64::from(v[d]) / n;
                }
            }
            out.extend(mean.iter().map(|&x| x as f32));
        }
        out
    }

    #[test]
    fn prototypes_and_scores_match_their_definitions_with_and_without_an_image() {
        let mut rng = Rng::new(3);
        let images: Vec<(usize, Vec<f32>)> =
            (0..9).map(|i| (i % 3, rng.vec(M * D, -1.0, 1.0))).collect();
        let mut builder = PrototypeBuilder::new(3, M, D);
        for (class, parts) in &images {
            builder.add(*class, parts);
        }
        let built = builder.build().unwrap();
        assert_eq!(built.classes(), 3);
        let reference = |class: usize, skip: Option<usize>| {
            let of_class: Vec<&Vec<f32>> = images
                .iter()
                .enumerate()
                .filter(|&(i, (c, _))| *c == class && Some(i) != skip)
                .map(|(_, (_, p))| p)
                .collect();
            prototype_loop(&of_class)
        };
        let probe = rng.vec(M * D, -1.0, 1.0);
        let each: Vec<f64> = (0..3)
            .map(|c| similarity_loop(&reference(c, None), &probe))
            .collect();
        for (c, want) in each.iter().enumerate() {
            assert!((f64::from(built.answered(&probe, c)) - want).abs() < 1e-6);
        }
        let nearest = each.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!((f64::from(built.nearest(&probe)) - nearest).abs() < 1e-6);
        assert!(built.answered(&probe, 3).is_nan());

        // Image 4 (class 1) against prototypes made without it.
        let left_out = builder.without(1, &images[4].1);
        let without: Vec<f64> = (0..3)
            .map(|c| similarity_loop(&reference(c, (c == 1).then_some(4)), &images[4].1))
            .collect();
        for (c, want) in without.iter().enumerate() {
            assert!(
                (f64::from(left_out.answered(c)) - want).abs() < 1e-6,
                "class {c}"
            );
        }
        let nearest = without.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!((f64::from(left_out.nearest()) - nearest).abs() < 1e-6);
        // Its own class's prototype is closer with it than without it.
        assert!(built.answered(&images[4].1, 1) > left_out.answered(1));
    }

    #[test]
    fn every_class_needs_an_image_and_a_copy_of_the_prototype_scores_one() {
        let mut builder = PrototypeBuilder::new(2, M, D);
        let only = Rng::new(5).vec(M * D, -1.0, 1.0);
        builder.add(0, &only);
        assert_eq!(builder.build(), Err(PrototypesError::NoImages(1)));
        builder.add(1, &Rng::new(6).vec(M * D, -1.0, 1.0));
        assert!(builder.without(0, &only).answered(0).is_nan());
        assert_eq!(
            builder.without(0, &only).nearest(),
            builder.without(0, &only).answered(1)
        );
        let built = builder.build().unwrap();
        let scaled: Vec<f32> = only.iter().map(|x| 2.5 * x).collect();
        assert!((built.answered(&scaled, 0) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn the_file_round_trips_and_bad_files_are_refused() {
        let built = PartPrototypes::new(M, D, Rng::new(9).vec(2 * M * D, -1.0, 1.0)).unwrap();
        let bytes = built.to_safetensors();
        let read = PartPrototypes::from_safetensors(&bytes, 2, M, D).unwrap();
        assert_eq!(read.classes(), 2);
        // Read rows are normalised again: equal up to the last bit.
        for (a, b) in read.as_slice().iter().zip(built.as_slice()) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        let err = PartPrototypes::from_safetensors(&bytes, 3, M, D).unwrap_err();
        assert!(err.to_string().contains("expected (3, 3, 4)"), "{err}");
        let err = PartPrototypes::from_safetensors(b"not safetensors", 2, M, D).unwrap_err();
        assert!(matches!(err, PrototypesError::Parse(_)), "{err}");
        let mut bad = vec![1.0; M * D];
        bad[5] = f32::NAN;
        let err = PartPrototypes::new(M, D, bad).unwrap_err();
        assert!(err.to_string().contains("index 5"), "{err}");
        let err = PartPrototypes::new(M, D, vec![0.0; M * D]).unwrap_err();
        assert!(err.to_string().contains("zero"), "{err}");
        assert!(PartPrototypes::new(M, D, vec![1.0; 5]).is_err());
    }
}
