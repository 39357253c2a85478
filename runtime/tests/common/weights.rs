//! Random CRM weights for tests (shared by the unit tests through `#[path]`; the including
//! module provides `CrmDims`, `CrmWeights`, `WeightsError` and `rng`).

use super::rng::Rng;
use super::{CrmDims, CrmWeights, WeightsError};

/// Random weights of `dims`, s = 64; BN scales are kept positive as real BNs mostly are.
pub fn random_weights(dims: CrmDims, seed: u64) -> CrmWeights {
    let mut rng = Rng::new(seed);
    CrmWeights::from_named(dims, 64.0, |name, shape| {
        let n: usize = shape.iter().product();
        let (lo, hi) = if name.ends_with(".scale") {
            (0.2, 1.5)
        } else {
            (-0.5, 0.5)
        };
        Ok::<_, WeightsError>(rng.vec(n, lo, hi))
    })
    .expect("shapes come from tensor_specs")
}
