//! End-to-end tests across the workspace crates, in one test binary.
//!
//! Modules:
//! - `demo_bundle_parity`: the committed demo bundle through the runtime (tract fp32 and int8)
//!   against the training crate it was exported from.
//! - `open_world_calibration`: the export's unknown-species calibration on the demo bundle
//!   through the runtime, and the manifest rewrite that leaves every other file as it was.
//! - `shared_preprocessing`: the training crate's evaluation batches are bit-for-bit the
//!   runtime's preprocessing of the same files (the edge sees what training saw).

mod demo_bundle_parity;
mod open_world_calibration;
mod shared_preprocessing;
