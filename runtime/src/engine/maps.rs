//! Part maps: the UnA attention of each part over the image's tokens, read off the image model
//! as a second output of its plan (`xrvlm-method.md` §2.3).
//!
//! The bundle names, per image-model file, the tensor holding UnA's softmax maps
//! `A1 = softmax over tokens (N, M+1, T)` (the manifest's `part_maps`; the last of the M+1
//! rows is the background map). A plan built with that name ([`super::Plan::load_explained`])
//! gets the tensor as its second output *before* tract optimizes the graph, so tract keeps it
//! rather than fusing it away; a plan built without it is the plan `Plan::load` builds, graph
//! and speed alike. This file owns that rewiring of the outputs, the check of the tensor's
//! shape, and [`PartMaps`], one image's maps with the background dropped (as UnA drops it from
//! the parts).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

/// The maps of one image: M maps over a `grid × grid` layout of tokens, row-major, each the
/// softmax over the tokens (non-negative, summing to one).
#[derive(Clone, Debug, PartialEq)]
pub struct PartMaps {
    parts: usize,
    grid: usize,
    values: Vec<f32>,
}

impl PartMaps {
    /// Maps from `parts` rows of `grid²` values each.
    ///
    /// # Panics
    /// If `values` does not hold `parts · grid²` values.
    pub fn new(parts: usize, grid: usize, values: Vec<f32>) -> Self {
        assert_eq!(
            values.len(),
            parts * grid * grid,
            "{parts} maps of {grid}×{grid} tokens"
        );
        Self {
            parts,
            grid,
            values,
        }
    }

    /// M, the number of maps.
    pub fn parts(&self) -> usize {
        self.parts
    }

    /// The side of the token grid.
    pub fn grid(&self) -> usize {
        self.grid
    }

    /// Map `part` (0-based), `grid²` values, row-major (row = image row of tokens).
    pub fn map(&self, part: usize) -> &[f32] {
        let t = self.grid * self.grid;
        &self.values[part * t..(part + 1) * t]
    }

    /// Every map in order.
    pub fn maps(&self) -> impl Iterator<Item = &[f32]> {
        self.values.chunks_exact(self.grid * self.grid)
    }
}

/// Where the maps sit in a plan's second output (1, M+1, T), T = grid².
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct MapsShape {
    /// M + 1: the parts' maps and the background's.
    pub rows: usize,
    /// The side of the token grid.
    pub grid: usize,
}

impl MapsShape {
    /// The shape of the maps output of a plan with `parts` parts, if `shape` is
    /// `(1, parts + 1, g²)`.
    pub fn of(shape: &[usize], parts: usize) -> Option<Self> {
        let [1, rows, tokens] = *shape else {
            return None;
        };
        let grid = (tokens as f64).sqrt().round() as usize;
        (rows == parts + 1 && grid * grid == tokens && tokens > 0).then_some(Self { rows, grid })
    }

    /// The parts' maps of one image's output, the background row dropped.
    pub fn part_maps(&self, output: &[f32]) -> PartMaps {
        let t = self.grid * self.grid;
        PartMaps::new(
            self.rows - 1,
            self.grid,
            output[..(self.rows - 1) * t].to_vec(),
        )
    }
}

/// Makes the value called `tensor` (an ONNX node output) the model's second output, after its
/// own.
pub(super) fn add_maps_output(model: &mut InferenceModel, tensor: &str) -> TractResult<()> {
    let maps = model.find_outlet_label(tensor).with_context(|| {
        format!("the model has no tensor called {tensor:?} (the manifest's part_maps)")
    })?;
    let outputs = model.output_outlets()?.to_vec();
    if outputs.len() != 1 {
        bail!(
            "the image model has {} outputs; one (the parts) is expected",
            outputs.len()
        );
    }
    model.select_output_outlets(&[outputs[0], maps])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_shape_wants_one_image_m_plus_one_rows_and_a_square_grid() {
        assert_eq!(
            MapsShape::of(&[1, 5, 49], 4),
            Some(MapsShape { rows: 5, grid: 7 })
        );
        assert_eq!(
            MapsShape::of(&[1, 4, 49], 4),
            None,
            "background row missing"
        );
        assert_eq!(MapsShape::of(&[1, 5, 48], 4), None, "not a square grid");
        assert_eq!(MapsShape::of(&[2, 5, 49], 4), None, "two images");
        assert_eq!(MapsShape::of(&[5, 49], 4), None);
        assert_eq!(MapsShape::of(&[1, 1, 0], 0), None);
    }

    #[test]
    fn part_maps_drop_the_background_row() {
        let shape = MapsShape { rows: 3, grid: 2 };
        let output: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let maps = shape.part_maps(&output);
        assert_eq!(maps.parts(), 2);
        assert_eq!(maps.grid(), 2);
        assert_eq!(maps.map(0), &[0.0, 1.0, 2.0, 3.0]);
        assert_eq!(maps.map(1), &[4.0, 5.0, 6.0, 7.0]);
        assert_eq!(maps.maps().count(), 2);
    }
}
