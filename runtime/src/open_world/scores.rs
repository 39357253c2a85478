//! The candidate open-world scores of a frame, each larger when the frame looks more like one
//! of the bundle's classes. `BENCHMARKS.md` ("Unknown species") measures how well each one
//! separates species the model never saw from those it knows; the export writes the chosen one
//! into `[open_world]`.
//!
//! With logits `z` (C), parts `V` (M, D), prompt features `T` (P, C, D), the bundle's part
//! prototypes `μ` (C, M, D, [`super::prototypes`]) and ĉ the class the frame is answered:
//!
//! ```text
//! max_softmax        = max_c softmax(z)_c                       Hendrycks & Gimpel, ICLR 2017
//! max_logit          = max_c z_c                                Hendrycks et al., ICML 2022
//! energy             = log Σ_c exp(z_c)  (= −E(x) at T = 1)     Liu et al., NeurIPS 2020
//! part_prompt        = max_c (1/M) Σ_m max_p cos(V[m], T[p,c])  each part against its best
//!                                                               prompt of the nearest class
//! part_prototype     = (1/M) Σ_m cos(V[m], μ_ĉ[m])              the parts against the answered
//!                                                               class's mean parts
//! nearest_prototype  = max_c (1/M) Σ_m cos(V[m], μ_c[m])        … the nearest class's
//! ```
//!
//! The logits are the CRM's as they are (its feature scale included). `part_prompt` costs
//! M·P·C·D multiply-adds and the prototype scores at most C·M·D, nothing next to the image
//! model. The prototype scores need prototypes, which only a bundle calibrated for one of them
//! carries (NaN without).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::prototypes::PartPrototypes;
use crate::scoring::{CrmWeights, NORM_EPS};

/// Which score a bundle rejects by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreKind {
    /// The largest softmax probability.
    MaxSoftmax,
    /// The largest logit.
    MaxLogit,
    /// The log-sum-exp of the logits (the negative free energy).
    Energy,
    /// The image parts' cosine similarity to the nearest class's prompts.
    PartPrompt,
    /// The image parts' cosine similarity to the mean parts (the bundle's prototype) of the
    /// class the frame is answered.
    PartPrototype,
    /// The image parts' cosine similarity to the nearest class's mean parts.
    NearestPrototype,
}

impl ScoreKind {
    /// Every score, in the order reports list them.
    pub const ALL: [ScoreKind; 6] = [
        ScoreKind::MaxSoftmax,
        ScoreKind::MaxLogit,
        ScoreKind::Energy,
        ScoreKind::PartPrompt,
        ScoreKind::PartPrototype,
        ScoreKind::NearestPrototype,
    ];

    /// The name used in the manifest, the outputs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ScoreKind::MaxSoftmax => "max_softmax",
            ScoreKind::MaxLogit => "max_logit",
            ScoreKind::Energy => "energy",
            ScoreKind::PartPrompt => "part_prompt",
            ScoreKind::PartPrototype => "part_prototype",
            ScoreKind::NearestPrototype => "nearest_prototype",
        }
    }

    /// Whether the score needs the bundle's part prototypes.
    pub fn needs_prototypes(self) -> bool {
        matches!(self, ScoreKind::PartPrototype | ScoreKind::NearestPrototype)
    }
}

impl fmt::Display for ScoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A score name that is none of [`ScoreKind::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an open-world score; expected max_softmax, max_logit, energy, part_prompt, \
     part_prototype or nearest_prototype"
)]
pub struct UnknownScoreError(pub String);

impl FromStr for ScoreKind {
    type Err = UnknownScoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ScoreKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownScoreError(s.to_string()))
    }
}

/// The largest softmax probability of `logits`, computed stably.
pub fn max_softmax(logits: &[f32]) -> f32 {
    // max softmax = exp(max − logsumexp).
    (f64::from(max_logit(logits)) - log_sum_exp(logits)).exp() as f32
}

/// The largest logit (−∞ for no logits; NaN when one is NaN).
pub fn max_logit(logits: &[f32]) -> f32 {
    logits.iter().fold(f32::NEG_INFINITY, |m, &z| {
        if m.is_nan() || z.is_nan() {
            f32::NAN
        } else {
            m.max(z)
        }
    })
}

/// log Σ exp(z), computed stably (the maximum is taken out first).
pub fn energy(logits: &[f32]) -> f32 {
    log_sum_exp(logits) as f32
}

/// log Σ exp(z) in f64.
fn log_sum_exp(logits: &[f32]) -> f64 {
    let max = f64::from(max_logit(logits));
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = logits.iter().map(|&z| (f64::from(z) - max).exp()).sum();
    max + sum.ln()
}

/// The prompt features as unit vectors, for [`PromptMatcher::similarity`].
#[derive(Clone, Debug)]
pub struct PromptMatcher {
    classes: usize,
    prompts: usize,
    embed: usize,
    /// (P, C, D) row-major, each row of unit length.
    unit_prompts: Vec<f64>,
}

impl PromptMatcher {
    /// Normalises the bundle's cached prompt features once.
    pub fn new(weights: &CrmWeights) -> Self {
        let dims = weights.dims();
        let unit_prompts = weights
            .prompt_features()
            .chunks_exact(dims.embed())
            .flat_map(unit)
            .collect();
        Self {
            classes: dims.classes(),
            prompts: dims.prompts(),
            embed: dims.embed(),
            unit_prompts,
        }
    }

    /// `max_c (1/M) Σ_m max_p cos(V[m], T[p,c])` of one image's parts (M, D).
    pub fn similarity(&self, parts: &[f32]) -> f32 {
        let parts: Vec<Vec<f64>> = parts.chunks_exact(self.embed).map(unit).collect();
        let per_class = (0..self.classes).map(|c| {
            let total: f64 = parts
                .iter()
                .map(|v| {
                    (0..self.prompts)
                        .map(|p| dot(v, self.prompt(p, c)))
                        .fold(f64::NEG_INFINITY, f64::max)
                })
                .sum();
            total / parts.len().max(1) as f64
        });
        per_class.fold(f64::NEG_INFINITY, f64::max) as f32
    }

    fn prompt(&self, p: usize, c: usize) -> &[f64] {
        let row = p * self.classes + c;
        &self.unit_prompts[row * self.embed..(row + 1) * self.embed]
    }
}

/// `x / max(‖x‖, 1e-6)` in f64.
fn unit(x: &[f32]) -> Vec<f64> {
    let norm = x
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt()
        .max(f64::from(NORM_EPS));
    x.iter().map(|&v| f64::from(v) / norm).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// What the scores are computed against: the prompts, and the bundle's part prototypes if it
/// has them.
#[derive(Clone, Debug)]
pub struct Scorer {
    matcher: PromptMatcher,
    prototypes: Option<PartPrototypes>,
}

impl Scorer {
    /// The scorer of a bundle's CRM weights and prototypes.
    pub fn new(weights: &CrmWeights, prototypes: Option<PartPrototypes>) -> Self {
        Self {
            matcher: PromptMatcher::new(weights),
            prototypes,
        }
    }

    /// The score of `kind` for a frame with `logits` (C) and `parts` (M, D), answered
    /// `class`; the prototype scores are NaN without prototypes.
    pub fn score(&self, kind: ScoreKind, logits: &[f32], parts: &[f32], class: usize) -> f32 {
        let prototypes = self.prototypes.as_ref();
        match kind {
            ScoreKind::MaxSoftmax => max_softmax(logits),
            ScoreKind::MaxLogit => max_logit(logits),
            ScoreKind::Energy => energy(logits),
            ScoreKind::PartPrompt => self.matcher.similarity(parts),
            ScoreKind::PartPrototype => prototypes.map_or(f32::NAN, |p| p.answered(parts, class)),
            ScoreKind::NearestPrototype => prototypes.map_or(f32::NAN, |p| p.nearest(parts)),
        }
    }

    /// Every candidate score of a frame answered `class`.
    pub fn candidates(&self, logits: &[f32], parts: &[f32], class: usize) -> CandidateScores {
        CandidateScores {
            values: ScoreKind::ALL.map(|kind| self.score(kind, logits, parts, class)),
        }
    }
}

/// Every candidate score of one frame, for measuring and calibrating.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CandidateScores {
    values: [f32; ScoreKind::ALL.len()],
}

impl CandidateScores {
    /// The score of `kind`.
    pub fn get(&self, kind: ScoreKind) -> f32 {
        let i = ScoreKind::ALL
            .iter()
            .position(|&k| k == kind)
            .expect("every kind is in ALL");
        self.values[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::probs::softmax;
    use crate::scoring::CrmDims;
    use crate::test_support::rng::Rng;
    use crate::test_support::weights::random_weights;

    #[test]
    fn logit_scores_match_their_definitions() {
        let z = [1.0f32, 3.0, -2.0];
        let lse = (1f64.exp() + 3f64.exp() + (-2f64).exp()).ln();
        assert!((f64::from(energy(&z)) - lse).abs() < 1e-6);
        assert_eq!(max_logit(&z), 3.0);
        let p = softmax(&z);
        assert!((max_softmax(&z) - p[1]).abs() < 1e-6);
        // Large logits do not overflow.
        let big = [1000.0f32, 1000.0];
        assert!((energy(&big) - (1000.0 + 2f32.ln())).abs() < 1e-3);
        assert!((max_softmax(&big) - 0.5).abs() < 1e-6);
        assert!(max_logit(&[1.0, f32::NAN]).is_nan());
        assert!(energy(&[f32::NAN, 1.0]).is_nan());
    }

    #[test]
    fn names_round_trip() {
        for kind in ScoreKind::ALL {
            assert_eq!(kind.name().parse::<ScoreKind>().unwrap(), kind);
            let toml = toml::to_string(&std::collections::BTreeMap::from([("s", kind)])).unwrap();
            assert_eq!(toml.trim(), format!("s = \"{}\"", kind.name()));
        }
        let err = "msp".parse::<ScoreKind>().unwrap_err().to_string();
        assert!(err.contains("\"msp\"") && err.contains("energy"), "{err}");
    }

    /// The loop form of `part_prompt`, every index spelled out.
    fn similarity_loop(w: &CrmWeights, parts: &[f32]) -> f64 {
        let d = w.dims();
        let cos = |a: &[f32], b: &[f32]| {
            let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
            let n = |v: &[f32]| v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
            dot / (n(a) * n(b))
        };
        let mut best = f64::NEG_INFINITY;
        for c in 0..d.classes() {
            let mut total = 0.0;
            for m in 0..d.parts() {
                let v = &parts[m * d.embed()..(m + 1) * d.embed()];
                let mut nearest = f64::NEG_INFINITY;
                for p in 0..d.prompts() {
                    let row = (p * d.classes() + c) * d.embed();
                    let t = &w.prompt_features()[row..row + d.embed()];
                    nearest = nearest.max(cos(v, t));
                }
                total += nearest;
            }
            best = best.max(total / d.parts() as f64);
        }
        best
    }

    #[test]
    fn part_prompt_matches_the_loop_form_and_is_one_for_a_prompt_copy() {
        let dims = CrmDims::new(5, 3, 2, 8, 6, 7).unwrap();
        let w = random_weights(dims, 7);
        let matcher = PromptMatcher::new(&w);
        let parts = Rng::new(8).vec(3 * 8, -1.0, 1.0);
        let got = f64::from(matcher.similarity(&parts));
        assert!((got - similarity_loop(&w, &parts)).abs() < 1e-6, "{got}");
        // Every part a scaled copy of prompt 0 of class 2 (row 0·C + 2): the similarity is 1.
        let prompt = &w.prompt_features()[2 * 8..3 * 8];
        let copies: Vec<f32> = (0..3)
            .flat_map(|_| prompt.iter().map(|x| 3.0 * x))
            .collect();
        assert!((matcher.similarity(&copies) - 1.0).abs() < 1e-6);
        let without = Scorer::new(&w, None).candidates(&[0.5, 1.5], &copies, 1);
        assert_eq!(
            without.get(ScoreKind::PartPrompt),
            matcher.similarity(&copies)
        );
        assert_eq!(without.get(ScoreKind::MaxLogit), 1.5);
        assert_eq!(without.get(ScoreKind::Energy), energy(&[0.5, 1.5]));
        assert!(without.get(ScoreKind::PartPrototype).is_nan());
        assert!(without.get(ScoreKind::NearestPrototype).is_nan());
        // Two classes: the copies themselves, and their negation.
        let negated = copies.iter().map(|x| -x);
        let data: Vec<f32> = copies.iter().copied().chain(negated).collect();
        let prototypes = PartPrototypes::new(3, 8, data).unwrap();
        let with = Scorer::new(&w, Some(prototypes));
        let answered = |class| with.candidates(&[0.5, 1.5], &copies, class);
        assert!((answered(0).get(ScoreKind::PartPrototype) - 1.0).abs() < 1e-6);
        assert!((answered(1).get(ScoreKind::PartPrototype) + 1.0).abs() < 1e-6);
        assert!((answered(1).get(ScoreKind::NearestPrototype) - 1.0).abs() < 1e-6);
    }
}
