//! End-to-end tests across the workspace crates, in one test binary.
//!
//! Modules:
//! - `shared_preprocessing`: the training crate's evaluation batches are bit-for-bit the
//!   runtime's preprocessing of the same files (the edge sees what training saw).

mod shared_preprocessing;
