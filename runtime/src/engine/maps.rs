//! Part maps: the UnA attention of each part over the image's tokens, read off the image model
//! as a second output of its plan (`xrvlm-method.md` §2.3).
//!
//! The bundle names, per image-model file, the tensor holding UnA's softmax maps
//! `A1 = softmax over tokens (N, M+1, T)` (the manifest's `part_maps`; the last of the M+1
//! rows is the background map). A plan built with that name ([`super::Plan::load_explained`])
//! is the plan `Plan::load` builds, optimized exactly as it is, with the softmax's output added
//! as a second output *after* tract has optimized the graph. Added before, the output pins the
//! maps' (M+1, T) layout, and tract then computes UnA in another order (it keeps the
//! transpose and runs the softmax over a strided axis), which moved the demo's parts by one or
//! two ulp; added after, the parts are bit for bit those of the plain plan. The cost is that
//! the maps are read in whatever layout tract chose: the softmax op says which axis is the
//! tokens', and the one other axis longer than one holds the M+1 rows ([`MapsShape::of`]).
//!
//! This file owns the plans built with the maps ([`Plan::load_explained`],
//! [`Plan::from_onnx_explained`], [`Plan::run_explained`]), the tap on the optimized graph, the
//! check of the maps' shape, and [`PartMaps`], one image's maps with the background dropped (as
//! UnA drops it from the parts).

use std::path::Path;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::nn::Softmax;

use super::{
    build, check_available, executor, plain_f32, EngineError, ModelShape, Plan, PlanOptions,
};
use crate::bundle::Bundle;

/// The maps of one image: M maps over a `grid × grid` layout of tokens, row-major, each the
/// softmax over the tokens (non-negative, summing to one).
#[derive(Clone, Debug, PartialEq)]
pub struct PartMaps {
    parts: usize,
    grid: usize,
    values: Vec<f32>,
    /// Per map, the attention on tokens that are not on the grid: a ViT tower's class token
    /// (0 for a ResNet tower, whose tokens are all patches).
    off_grid: Vec<f32>,
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
            off_grid: vec![0.0; parts],
        }
    }

    /// The attention of map `part` on tokens off the grid (a ViT's class token): what the
    /// grid's values fall short of one.
    pub fn off_grid(&self, part: usize) -> f32 {
        self.off_grid[part]
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

/// Where the maps sit in a plan's second output, in the layout tract chose: M+1 rows of
/// T = grid² tokens, each at its stride in the flat output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct MapsShape {
    /// M + 1: the parts' maps and the background's.
    pub rows: usize,
    /// The side of the token grid.
    pub grid: usize,
    /// Tokens before the grid's: 1 for a ViT tower's class token (T = g² + 1), else 0.
    pub skip: usize,
    /// Elements from one row to the next in the output.
    pub row_stride: usize,
    /// Elements from one token to the next in the output.
    pub token_stride: usize,
}

impl MapsShape {
    /// The layout of a softmax output of `shape` over `axis` for a plan of `parts` parts: the
    /// softmax axis holds g² patch tokens (a ResNet tower) or a class token and then g² (a ViT
    /// tower, as the CLIP towers order them), one other axis the M+1 rows, every other axis 1.
    pub fn of(shape: &[usize], axis: usize, parts: usize) -> Option<Self> {
        let tokens = *shape.get(axis)?;
        let square = |t: usize| {
            let g = (t as f64).sqrt().round() as usize;
            (t > 0 && g * g == t).then_some(g)
        };
        let (grid, skip) = match square(tokens) {
            Some(g) => (g, 0),
            None => (square(tokens.checked_sub(1)?)?, 1),
        };
        let stride = |i: usize| shape[i + 1..].iter().product::<usize>();
        let mut others = (0..shape.len()).filter(|&i| i != axis && shape[i] != 1);
        let rows_axis = others.next()?;
        if others.next().is_some() || shape[rows_axis] != parts + 1 {
            return None;
        }
        Some(Self {
            rows: parts + 1,
            grid,
            skip,
            row_stride: stride(rows_axis),
            token_stride: stride(axis),
        })
    }

    /// The parts' maps of one image's output, the background row dropped.
    pub fn part_maps(&self, output: &[f32]) -> PartMaps {
        let t = self.grid * self.grid;
        let at = |r: usize, i: usize| output[r * self.row_stride + i * self.token_stride];
        let values = (0..self.rows - 1)
            .flat_map(|r| (self.skip..self.skip + t).map(move |i| at(r, i)))
            .collect();
        let mut maps = PartMaps::new(self.rows - 1, self.grid, values);
        maps.off_grid = (0..self.rows - 1)
            .map(|r| (0..self.skip).map(|i| at(r, i)).sum())
            .collect();
        maps
    }
}

/// The concrete shape of the optimized model's second output (the tap of [`tap_maps`]), and
/// its layout as maps for `parts` parts if it is one.
pub(super) fn maps_output(
    model: &TypedModel,
    parts: usize,
) -> TractResult<(Option<Vec<usize>>, Option<MapsShape>)> {
    let outlet = model.output_outlets()?[1];
    let shape = model
        .outlet_fact(outlet)?
        .shape
        .as_concrete()
        .map(<[usize]>::to_vec);
    let axis = match model.node(outlet.node).op_as::<Softmax>() {
        Some(op) if op.axes.len() == 1 => op.axes[0],
        _ => return Ok((shape, None)),
    };
    let layout = shape.as_deref().and_then(|s| MapsShape::of(s, axis, parts));
    Ok((shape, layout))
}

/// Makes the output of the softmax that computed `tensor` (the manifest's `part_maps`) the
/// optimized model's second output, after its own. tract names
/// the node after the ONNX value (or after the ONNX node, `{tensor}#node`, when it kept it).
pub(super) fn tap_maps(model: &mut TypedModel, tensor: &str) -> TractResult<()> {
    let node_name = format!("{tensor}#node");
    let softmax = model
        .nodes()
        .iter()
        .filter(|n| n.name == tensor || n.name == node_name)
        .find_map(|n| Some((n.id, n.op_as::<Softmax>()?.axes.clone())));
    let Some((id, axes)) = softmax else {
        bail!(
            "the optimized image model has no softmax called {tensor:?} (the manifest's \
             part_maps names UnA's softmax maps)"
        );
    };
    if axes.len() != 1 {
        bail!(
            "the softmax {tensor:?} runs over {} axes, not one (the tokens)",
            axes.len()
        );
    }
    let outputs = model.output_outlets()?.to_vec();
    if outputs.len() != 1 {
        bail!(
            "the image model has {} outputs; one (the parts) is expected",
            outputs.len()
        );
    }
    model.select_output_outlets(&[outputs[0], OutletId::new(id, 0)])
}

impl Plan {
    /// [`Plan::load`] with the part maps as a second output ([`Plan::run_explained`]): the
    /// tensor the manifest's `part_maps` names for the precision's file. The first output is
    /// bit for bit that of [`Plan::load`]'s plan.
    pub fn load_explained(bundle: &Bundle, options: PlanOptions) -> Result<Self, EngineError> {
        let precision = options.precision;
        check_available(precision)?;
        let not_in_bundle = || EngineError::NotInBundle {
            dir: bundle.dir().to_path_buf(),
            precision,
            needed: precision.source(),
        };
        let entry = bundle
            .manifest()
            .visual_file(precision.source())
            .ok_or_else(not_in_bundle)?;
        let model = bundle
            .image_model(precision.source())
            .ok_or_else(not_in_bundle)??;
        let tensor = entry
            .part_maps
            .as_deref()
            .ok_or_else(|| EngineError::NoPartMaps {
                file: model.path().to_path_buf(),
            })?;
        let shape = ModelShape::of(bundle);
        Self::from_onnx_explained(model.path(), model.bytes(), shape, options, tensor)
    }

    /// [`Plan::from_onnx`] with the softmax that computes `maps_tensor`, UnA's maps
    /// (1, M+1, T), as a second output (this module); the first output is bit for bit
    /// [`Plan::from_onnx`]'s.
    pub fn from_onnx_explained(
        name: &Path,
        onnx: &[u8],
        shape: ModelShape,
        options: PlanOptions,
        maps_tensor: &str,
    ) -> Result<Self, EngineError> {
        check_available(options.precision)?;
        let executor = executor(options);
        let load_error = |e: TractError| EngineError::Load {
            file: name.to_path_buf(),
            message: format!("{e:#}"),
        };
        let runnable = build(
            onnx,
            shape.image_size,
            options,
            &executor,
            Some(maps_tensor),
        )
        .map_err(load_error)?;
        let (found, maps) = maps_output(runnable.model(), shape.parts).map_err(load_error)?;
        let maps = maps.ok_or_else(|| EngineError::PartMapsShape {
            file: name.to_path_buf(),
            tensor: maps_tensor.to_string(),
            rows: shape.parts + 1,
            found,
        })?;
        Ok(Self::assemble(
            options,
            runnable,
            executor,
            shape,
            Some(maps),
        ))
    }

    /// Whether the plan was built with the part maps ([`Plan::run_explained`]).
    pub fn is_explained(&self) -> bool {
        self.maps.is_some()
    }

    /// Runs one preprocessed image (3, S, S) and returns its parts (M, D) and its part maps,
    /// on a plan built with them ([`Plan::load_explained`]).
    pub fn run_explained(&self, image: &[f32]) -> Result<(Vec<f32>, PartMaps), EngineError> {
        let maps = self.maps.ok_or(EngineError::NotExplained)?;
        if image.len() != self.input_len() {
            return Err(EngineError::InputShape {
                len: image.len(),
                per_image: self.input_len(),
            });
        }
        let outputs = self.run_outputs(image)?;
        let parts = self.parts_of(&outputs[0])?;
        let values = plain_f32(&outputs[1])?;
        Ok((parts, maps.part_maps(&values)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_shape_wants_a_square_softmax_axis_and_m_plus_one_rows() {
        // As exported, (1, M+1, T) over axis 2.
        let exported = MapsShape::of(&[1, 5, 9], 2, 4).unwrap();
        let expected = MapsShape {
            rows: 5,
            grid: 3,
            skip: 0,
            row_stride: 9,
            token_stride: 1,
        };
        assert_eq!(exported, expected);
        // As tract lays it out without the batch axis and the transpose, (T, M+1) over axis 0.
        let transposed = MapsShape::of(&[9, 5], 0, 4).unwrap();
        assert_eq!((transposed.row_stride, transposed.token_stride), (1, 5));
        assert_eq!(
            MapsShape::of(&[1, 4, 9], 2, 4),
            None,
            "background row missing"
        );
        assert_eq!(MapsShape::of(&[1, 5, 8], 2, 4), None, "not a square grid");
        // A ViT's class token and 4×4 patches.
        let vit = MapsShape::of(&[17, 4], 0, 3).unwrap();
        assert_eq!(
            (vit.grid, vit.skip, vit.row_stride, vit.token_stride),
            (4, 1, 1, 4)
        );
        let output: Vec<f32> = (0..17 * 4).map(|v| v as f32).collect();
        let maps = vit.part_maps(&output);
        assert_eq!(
            maps.map(0)[0],
            4.0,
            "token 1 of row 0, after the class token"
        );
        assert_eq!(maps.off_grid(1), 1.0, "row 1's class token");
        assert_eq!(MapsShape::of(&[2, 5, 9], 2, 4), None, "two images");
        assert_eq!(
            MapsShape::of(&[1, 5, 9], 1, 4),
            None,
            "softmax over the rows"
        );
        assert_eq!(MapsShape::of(&[1, 5, 9], 3, 4), None);
        assert_eq!(MapsShape::of(&[1, 5, 0], 2, 4), None);
    }

    #[test]
    fn part_maps_read_either_layout_and_drop_the_background_row() {
        // Three rows of 2×2 tokens, value = 10·row + token.
        let exported: Vec<f32> = (0..3)
            .flat_map(|r| (0..4).map(move |t| (10 * r + t) as f32))
            .collect();
        let transposed: Vec<f32> = (0..4)
            .flat_map(|t| (0..3).map(move |r| (10 * r + t) as f32))
            .collect();
        for (shape, axis, output) in [([3, 4], 1, &exported), ([4, 3], 0, &transposed)] {
            let maps = MapsShape::of(&shape, axis, 2).unwrap().part_maps(output);
            assert_eq!(maps.parts(), 2);
            assert_eq!(maps.grid(), 2);
            assert_eq!(maps.map(0), &[0.0, 1.0, 2.0, 3.0]);
            assert_eq!(maps.map(1), &[10.0, 11.0, 12.0, 13.0]);
            assert_eq!(maps.maps().count(), 2);
        }
    }
}
