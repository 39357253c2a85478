//! Test support shared by the integration tests: tiny ONNX models, bundles written on the
//! fly, and a seeded generator. Each test binary uses part of it.
#![allow(dead_code)]

pub mod bundle_writer;
pub mod onnx_model;
pub mod rng;
pub mod weights;

use xrvlm_runtime::scoring::{CrmDims, CrmWeights, WeightsError};
