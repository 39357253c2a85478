//! Training: optimiser, learning-rate schedule, metrics, logs, curves, checkpoints and the loop.

pub mod checkpoint;
pub mod curves;
pub mod evaluate;
pub mod metrics;
pub mod metrics_log;
pub mod run;
pub mod schedule;
pub mod sgd;
pub mod trainer;
