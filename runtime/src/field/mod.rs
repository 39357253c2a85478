//! The unattended field loop's parts, which `xrvlm run` wires together.
//!
//! # Layout
//! - [`config`]: the board profile (TOML), checked key by key.
//! - [`frame`]: a captured frame, its sequence number, media name and capture time.
//! - [`source`]: frame sources (image folder, synthetic world, V4L2 camera) behind one trait,
//!   pixel-format conversion, reconnection with backoff and a fault injector.
//! - [`motion`]: the motion gate (and where the frame changed) and the timelapse cadence.
//! - [`subject`]: what is classified in a frame: the changed region's crop or the whole frame.
//! - [`decision`]: the decision on each prediction and its grouping into events.
//! - [`detection_log`]: the append-only, fsynced JSONL detection log and its recovery.
//! - [`frame_store`]: saved event frames under a storage budget.
//! - [`display`]: the status screen, drawn with embedded-graphics onto a PNG, an SSD1306 OLED or
//!   the Linux framebuffer.
//! - [`clock`]: the loop's monotonic and wall time and its wait, real or fake.
//! - [`station`]: the loop itself, wiring all of the above together.
//! - [`camtrap`]: the Camtrap DP export of a log.

pub mod camtrap;
pub mod clock;
pub mod config;
pub mod decision;
pub mod detection_log;
pub mod display;
pub mod frame;
pub mod frame_store;
pub mod motion;
pub mod source;
pub mod station;
pub mod subject;
