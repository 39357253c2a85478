//! The accuracy check a device runs on itself (`xrvlm check`): the bundle's golden images
//! (always) and a labelled set (optional) through the precision the device will use, compared
//! with the reference figures the export recorded in the manifest.
//!
//! # Layout
//! - [`labelled_set`]: a labelled set from an ImageFolder tree or a JSONL file.
//! - [`measure`]: golden parity, accuracy (top-1/top-5, per class, confusions) and latency.
//! - [`verdict`]: the tolerances, the reference figures and the regressions found.

pub mod labelled_set;
pub mod measure;
pub mod verdict;
