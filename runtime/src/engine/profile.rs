//! Where a plan's time goes: one image run node by node with a clock around each node, summed
//! per kind of operation (`xrvlm bench --profile`). Runs on the plan's own thread pool, so the
//! figures are the ones a normal run has.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::matmul::optimized::OptMatMul;
use tract_onnx::tract_core::plan::{eval, SimpleState};

use super::{EngineError, Plan};

/// The time of one kind of operation over a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpTime {
    /// tract's name of the operation, e.g. `Softmax`, or `OptMatMul [kernel]` for a matrix
    /// product.
    pub op: String,
    /// Nodes of this kind in the plan.
    pub nodes: usize,
    /// Their time together.
    pub total: Duration,
}

/// Per-operation times of one run, slowest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Every kind of operation that ran, slowest first.
    pub ops: Vec<OpTime>,
}

impl Profile {
    /// The time of every node together.
    pub fn total(&self) -> Duration {
        self.ops.iter().map(|o| o.total).sum()
    }

    /// Adds the times of another run of the same plan.
    fn accumulate(&mut self, other: Profile) {
        let mut by_op: BTreeMap<String, OpTime> =
            self.ops.drain(..).map(|o| (o.op.clone(), o)).collect();
        for o in other.ops {
            by_op
                .entry(o.op.clone())
                .and_modify(|t| t.total += o.total)
                .or_insert(o);
        }
        self.ops = sorted(by_op.into_values().collect());
    }
}

fn sorted(mut ops: Vec<OpTime>) -> Vec<OpTime> {
    ops.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.op.cmp(&b.op)));
    ops
}

/// The operation's name, with the kernels of a matrix product (`OptMatMul
/// [avx512vnni_mmm_i32_16x16]`), so that integer and float products are told apart.
fn op_label(node: &TypedNode) -> String {
    match node.op_as::<OptMatMul>() {
        Some(matmul) => {
            let mut kernels: Vec<String> =
                matmul.mmm.iter().map(|k| k.name().to_string()).collect();
            kernels.dedup();
            format!("{} [{}]", node.op().name(), kernels.join(", "))
        }
        None => node.op().name().to_string(),
    }
}

impl Plan {
    /// Runs one preprocessed image (3, S, S) `runs` times, timing every node, and returns the
    /// per-operation times summed over the runs.
    pub fn profile(&self, image: &[f32], runs: usize) -> Result<Profile, EngineError> {
        if image.len() != self.input_len() {
            return Err(EngineError::InputShape {
                len: image.len(),
                per_image: self.input_len(),
            });
        }
        let mut profile = Profile { ops: Vec::new() };
        for _ in 0..runs {
            let one = self
                .in_pool(|| self.profile_once(image))
                .map_err(|e| EngineError::Run(format!("{e:#}")))?;
            profile.accumulate(one);
        }
        Ok(profile)
    }

    fn profile_once(&self, image: &[f32]) -> TractResult<Profile> {
        let s = self.image_size;
        let mut input = Tensor::from_shape(&[1, 3, s, s], image)?;
        if self.options.precision == super::Precision::F16 {
            input = input.cast_to::<f16>()?.into_owned();
        }
        let mut by_op: BTreeMap<String, OpTime> = BTreeMap::new();
        let mut state = SimpleState::new(&self.runnable)?;
        state.run_plan_with_eval(tvec!(input.into_tvalue()), |ctx, op_state, node, inputs| {
            let start = Instant::now();
            let outputs = eval(ctx, op_state, node, inputs);
            let op = op_label(node);
            let time = by_op.entry(op.clone()).or_insert(OpTime {
                op,
                nodes: 0,
                total: Duration::ZERO,
            });
            time.nodes += 1;
            time.total += start.elapsed();
            outputs
        })?;
        Ok(Profile {
            ops: sorted(by_op.into_values().collect()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{tiny_plan, Precision};
    use crate::test_support::onnx_model::TinyModel;
    use crate::test_support::rng::Rng;

    #[test]
    fn every_node_is_timed_and_counted_once_per_run() {
        let model = TinyModel::random(12, 2, 5, 4);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("visual.onnx");
        std::fs::write(&file, model.fp32_onnx(Some("N"))).unwrap();
        let plan = tiny_plan(&file, Precision::Fp32, &model);
        let image = Rng::new(3).vec(3 * 12 * 12, -2.0, 2.0);
        let profile = plan.profile(&image, 3).unwrap();

        let nodes: usize = profile.ops.iter().map(|o| o.nodes).sum();
        assert_eq!(nodes, plan.runnable.order_without_consts().len());
        assert!(profile.ops.iter().any(|o| o.op.contains("MatMul")));
        assert!(profile.total() > std::time::Duration::ZERO);
        assert!(profile.ops.windows(2).all(|w| w[0].total >= w[1].total));
        assert!(plan.profile(&image[1..], 1).is_err());
    }
}
