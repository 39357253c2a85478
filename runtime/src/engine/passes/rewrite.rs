//! What our passes over the decluttered model share: following a chain of single consumers,
//! reading constants off it, and replacing each matched chain by one op of ours.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::{BinMiniOp, TypedBinOp};

/// A matched chain: the op that replaces it, the outlets it reads and the outlet it replaces.
pub(super) struct Replacement<O> {
    pub op: O,
    pub inputs: TVec<OutletId>,
    pub output: OutletId,
}

/// Replaces every chain that `matched` finds starting at a node by one node, named after that
/// node with `.{suffix}`; returns how many were replaced.
pub(super) fn replace_each<O: TypedOp>(
    model: &mut TypedModel,
    suffix: &str,
    matched: impl Fn(&TypedModel, usize) -> TractResult<Option<Replacement<O>>>,
) -> TractResult<usize> {
    let mut replaced = 0;
    for id in 0..model.nodes().len() {
        let Some(found) = matched(model, id)? else {
            continue;
        };
        let name = format!("{}.{suffix}", model.node(id).name);
        let mut patch = TypedModelPatch::new(format!("{suffix} at {}", model.node(id).name));
        let inputs = found
            .inputs
            .iter()
            .map(|&outlet| patch.tap_model(model, outlet))
            .collect::<TractResult<TVec<_>>>()?;
        let output = patch.wire_node(name, found.op, &inputs)?[0];
        patch.shunt_outside(model, found.output, output)?;
        patch.apply(model)?;
        replaced += 1;
    }
    if replaced > 0 {
        model.compact()?;
    }
    Ok(replaced)
}

/// The single consumer of node `id`'s only output, unless that output is also a model output.
pub(super) fn only_successor(model: &TypedModel, id: usize) -> TractResult<Option<&TypedNode>> {
    if model.output_outlets()?.contains(&OutletId::new(id, 0)) {
        return Ok(None);
    }
    model.single_succ(id)
}

/// If `node` is the binary op `B` of `from`'s output and a constant holding one value or one
/// per column (shape `[1…, N]`), that constant as n values.
pub(super) fn column_constant<B: BinMiniOp>(
    model: &TypedModel,
    node: &TypedNode,
    from: usize,
    n: usize,
) -> TractResult<Option<Vec<f32>>> {
    let Some(op) = node.op_as::<TypedBinOp>() else {
        return Ok(None);
    };
    if !op.0.is::<B>() || node.inputs.len() != 2 || op.1.is_some() {
        return Ok(None);
    }
    let other = match (node.inputs[0].node == from, node.inputs[1].node == from) {
        (true, false) => node.inputs[1],
        (false, true) => node.inputs[0],
        _ => return Ok(None),
    };
    let fact = model.outlet_fact(other)?;
    if fact.datum_type != f32::datum_type() {
        return Ok(None);
    }
    let Some(values) = constant_values(fact)? else {
        return Ok(None);
    };
    let Some(shape) = fact.shape.as_concrete() else {
        return Ok(None);
    };
    let per_column = shape.last() == Some(&n) && ones_except(shape, &[shape.len() - 1]);
    Ok(match values.as_slice() {
        [v] => Some(vec![*v; n]),
        _ if per_column => Some(values),
        _ => None,
    })
}

/// The values of a constant input as f32 (exact for the integer types involved).
pub(super) fn constant_values(fact: &TypedFact) -> TractResult<Option<Vec<f32>>> {
    let Some(tensor) = fact.konst.as_ref() else {
        return Ok(None);
    };
    let floats = tensor.cast_to::<f32>()?;
    let plain = floats.try_as_plain_ram()?;
    Ok(Some(plain.as_slice::<f32>()?.to_vec()))
}

/// Whether every axis but `keep` has length 1.
fn ones_except(shape: &[usize], keep: &[usize]) -> bool {
    shape
        .iter()
        .enumerate()
        .all(|(axis, &len)| keep.contains(&axis) || len == 1)
}
