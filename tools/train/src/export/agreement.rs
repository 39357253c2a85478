//! Accuracy-aware fallback of the int8 graph: which int8 layers go back to float so that the
//! int8 model's top-1 class agrees with the fp32 model's on the calibration images.
//!
//! A per-layer gate ([`super::int8`]) sees each layer alone; what a user is promised is the
//! classification. Both graphs run as a device runs them (the runtime's plan, batch 1, the
//! engine's passes: [`super::tract_run::device_plan`]) on the calibration images, their parts are scored
//! by the bundle's CRM ([`FoldedCrm`], the runtime's own scorer), and the top-1 agreement is
//! measured. When it is below the target:
//! 1. each int8 layer's *sensitivity* is measured: the mean squared logit error of a graph in
//!    which only that layer is int8;
//! 2. layers go back to float, most sensitive first, and the smallest such set that reaches the
//!    target is found by bisection over its size (agreement grows, up to noise, as layers go
//!    back to float; all float agrees exactly).
//!
//! The figures are measured on calibration images, never on the evaluation set, so the
//! manifest's int8 figures stay an honest held-out measurement.

use candle_core::Tensor;
use xrvlm_runtime::engine::Precision;
use xrvlm_runtime::ranking::argmax;
use xrvlm_runtime::scoring::FoldedCrm;

use super::linear::{LinearForm, LinearId, LinearPlan};
use super::source::VisualSource;
use super::tract_run::{device_plan, run_plan};
use super::visual::build;
use super::ExportError;

/// The int8 model against the fp32 model on the calibration images.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Agreement {
    /// Fraction of images whose top-1 class is the same.
    pub top1: f64,
    /// Mean over images and classes of (int8 − fp32 logit)².
    pub mean_sq_error: f64,
}

/// What the fallback did.
#[derive(Clone, Debug, PartialEq)]
pub struct FallbackReport {
    /// The target top-1 agreement.
    pub target: f64,
    /// Images measured.
    pub images: usize,
    /// Agreement of the plan the per-layer gate chose.
    pub before: Agreement,
    /// Agreement of the final plan.
    pub after: Agreement,
    /// Layers sent back to float, most sensitive first, with their sensitivity.
    pub floated: Vec<(LinearId, f64)>,
}

/// Scores the graphs of one model on a fixed set of images.
pub struct AgreementProbe<'a> {
    src: &'a VisualSource,
    crm: &'a FoldedCrm,
    images: &'a Tensor,
    batch: usize,
    fp32_logits: Vec<f32>,
}

impl<'a> AgreementProbe<'a> {
    /// Runs the fp32 graph once on `images` and keeps its logits.
    pub fn new(
        src: &'a VisualSource,
        crm: &'a FoldedCrm,
        images: &'a Tensor,
        batch: usize,
    ) -> Result<Self, ExportError> {
        let mut probe = Self {
            src,
            crm,
            images,
            batch,
            fp32_logits: Vec::new(),
        };
        probe.fp32_logits = probe.logits(&LinearPlan::float())?;
        Ok(probe)
    }

    /// The logits `(N, C)` of the graph `plan` describes, run as a device runs it.
    fn logits(&self, plan: &LinearPlan) -> Result<Vec<f32>, ExportError> {
        let proto = build(self.src, plan, false, "agreement")?.model;
        let precision = if plan.int8_count() > 0 {
            Precision::Int8
        } else {
            Precision::Fp32
        };
        let device = device_plan(&proto, self.src.model_shape(), precision, "agreement")?;
        let n = self.images.dim(0)?;
        let mut logits = Vec::with_capacity(n * self.crm.dims().classes());
        let mut start = 0;
        while start < n {
            let len = self.batch.min(n - start);
            let parts = run_plan(&device, &self.images.narrow(0, start, len)?, "agreement")?;
            let scored = self.crm.score(&parts).map_err(|e| ExportError::Tract {
                graph: "agreement",
                stage: "score",
                msg: e.to_string(),
            })?;
            logits.extend_from_slice(scored.as_slice());
            start += len;
        }
        Ok(logits)
    }

    /// The graph of `plan` against fp32.
    pub fn measure(&self, plan: &LinearPlan) -> Result<Agreement, ExportError> {
        Ok(compare(
            &self.fp32_logits,
            &self.logits(plan)?,
            self.crm.dims().classes(),
        ))
    }
}

/// Top-1 agreement and mean squared error of logits `b` against `a`, both `(N, classes)`.
pub fn compare(a: &[f32], b: &[f32], classes: usize) -> Agreement {
    let rows = a.len() / classes.max(1);
    let agree = a
        .chunks_exact(classes)
        .zip(b.chunks_exact(classes))
        .filter(|(x, y)| argmax(x) == argmax(y))
        .count();
    let sq: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    Agreement {
        top1: if rows > 0 {
            agree as f64 / rows as f64
        } else {
            1.0
        },
        mean_sq_error: if a.is_empty() {
            0.0
        } else {
            sq / a.len() as f64
        },
    }
}

/// `plan` with the first `k` of `order` float.
fn with_float(plan: &LinearPlan, order: &[(LinearId, f64)], k: usize) -> LinearPlan {
    let mut p = plan.clone();
    for &(id, _) in &order[..k] {
        p.set(id, LinearForm::Float);
    }
    p
}

/// Each int8 layer of `plan` with its sensitivity (the mean squared logit error of `plan`'s
/// form of that layer alone), most sensitive first.
fn sensitivities(
    measure: &dyn Fn(&LinearPlan) -> Result<Agreement, ExportError>,
    plan: &LinearPlan,
) -> Result<Vec<(LinearId, f64)>, ExportError> {
    let mut out = Vec::new();
    for id in plan.int8_ids() {
        let mut alone = LinearPlan::float();
        alone.set(id, plan.form(id));
        out.push((id, measure(&alone)?.mean_sq_error));
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(out)
}

/// The plan that keeps as many of `plan`'s int8 layers as it can while its top-1 agreement
/// with fp32 on the probe's images is at least `target`.
pub fn fall_back(
    probe: &AgreementProbe<'_>,
    plan: &LinearPlan,
    target: f64,
) -> Result<(LinearPlan, FallbackReport), ExportError> {
    let (plan, mut report) = search(&|p| probe.measure(p), plan, target)?;
    report.images = probe.images.dim(0)?;
    Ok((plan, report))
}

/// [`fall_back`] over any measurement of a plan's agreement (`images` left 0).
fn search(
    measure: &dyn Fn(&LinearPlan) -> Result<Agreement, ExportError>,
    plan: &LinearPlan,
    target: f64,
) -> Result<(LinearPlan, FallbackReport), ExportError> {
    let before = measure(plan)?;
    let mut report = FallbackReport {
        target,
        images: 0,
        before,
        after: before,
        floated: Vec::new(),
    };
    if before.top1 >= target {
        return Ok((plan.clone(), report));
    }
    let order = sensitivities(measure, plan)?;
    // Invariant: `hi` floated layers reach the target (all float agrees exactly), `lo` do not.
    let (mut lo, mut hi) = (0, order.len());
    let mut best = Agreement {
        top1: 1.0,
        mean_sq_error: 0.0,
    };
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        let a = measure(&with_float(plan, &order, mid))?;
        if a.top1 >= target {
            hi = mid;
            best = a;
        } else {
            lo = mid;
        }
    }
    report.after = best;
    report.floated = order[..hi].to_vec();
    Ok((with_float(plan, &order, hi), report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::quant::ActivationQuant;

    #[test]
    fn compare_counts_top1_matches_and_squared_error() {
        let a = [1.0, 0.0, 0.0, 2.0];
        let b = [0.0, 1.0, 0.0, 3.0];
        let c = compare(&a, &b, 2);
        assert_eq!(c.top1, 0.5);
        assert!((c.mean_sq_error - 3.0 / 4.0).abs() < 1e-12);
        assert_eq!(compare(&a, &a, 2).top1, 1.0);
    }

    /// A model whose layers each cost a known amount of agreement: block `i`'s qkv costs
    /// `cost[i]`, and the squared error grows with the cost.
    fn fake_measure(cost: &[f64]) -> impl Fn(&LinearPlan) -> Result<Agreement, ExportError> + '_ {
        move |plan: &LinearPlan| {
            let lost: f64 = plan
                .int8_ids()
                .iter()
                .map(|id| match id {
                    LinearId::Qkv(i) => cost[*i],
                    _ => 0.0,
                })
                .sum();
            Ok(Agreement {
                top1: 1.0 - lost,
                mean_sq_error: lost,
            })
        }
    }

    fn all_int8(n: usize) -> LinearPlan {
        let mut plan = LinearPlan::float();
        for i in 0..n {
            plan.set(
                LinearId::Qkv(i),
                LinearForm::int8(ActivationQuant::for_range(12.7, false)),
            );
        }
        plan
    }

    #[test]
    fn the_fewest_most_sensitive_layers_go_back_to_float() {
        let cost = [0.001, 0.02, 0.004, 0.003];
        let measure = fake_measure(&cost);
        // 97.2 % as planned; floating block 1 (the worst) gives 99.2 %.
        let (plan, r) = search(&measure, &all_int8(4), 0.99).unwrap();
        assert!((r.before.top1 - 0.972).abs() < 1e-12);
        assert_eq!(
            r.floated.iter().map(|f| f.0).collect::<Vec<_>>(),
            [LinearId::Qkv(1)]
        );
        assert_eq!(
            plan.int8_ids(),
            [LinearId::Qkv(0), LinearId::Qkv(2), LinearId::Qkv(3)]
        );
        assert!(r.after.top1 >= 0.99);
        // 99.5 % needs blocks 1 and 2 float.
        let (plan, r) = search(&measure, &all_int8(4), 0.995).unwrap();
        assert_eq!(plan.int8_ids(), [LinearId::Qkv(0), LinearId::Qkv(3)]);
        assert_eq!(r.floated.len(), 2);
        // Already good enough: nothing changes. Unreachable but exact: everything float.
        let (plan, r) = search(&measure, &all_int8(4), 0.9).unwrap();
        assert_eq!(plan.int8_count(), 4);
        assert!(r.floated.is_empty());
        let (plan, r) = search(&measure, &all_int8(4), 1.0).unwrap();
        assert_eq!(plan.int8_count(), 0);
        assert_eq!(r.after.top1, 1.0);
    }
}
