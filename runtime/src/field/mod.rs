//! The field runtime's parts, which `xrvlm run` wires together: the board profile, the
//! decision on each prediction and its grouping into events, the append-only detection log,
//! saved frames under a storage budget, and the Camtrap DP export of a log.

pub mod camtrap;
pub mod config;
pub mod decision;
pub mod detection_log;
pub mod frame_store;
