//! Unit-test support shared with the integration tests: the files under `tests/common/` that
//! need nothing but this crate are compiled here once, through `#[path]`.
#![allow(dead_code)]

#[path = "../tests/common/onnx_model.rs"]
pub(crate) mod onnx_model;
#[path = "../tests/common/rng.rs"]
pub(crate) mod rng;
#[path = "../tests/common/weights.rs"]
pub(crate) mod weights;

use crate::scoring::{CrmDims, CrmWeights, WeightsError};
