//! The unattended field loop's parts: where frames come from, which of them are worth scoring,
//! and the status screen.
//!
//! # Layout
//! - [`frame`]: a captured frame, its sequence number, media name and capture time.
//! - [`source`]: frame sources (image folder, synthetic world, V4L2 camera) behind one trait,
//!   pixel-format conversion, reconnection with backoff and a fault injector.
//! - [`motion`]: the motion gate and the timelapse cadence.
//! - [`display`]: the status screen, drawn with embedded-graphics onto a PNG, an SSD1306 OLED or
//!   the Linux framebuffer.

pub mod display;
pub mod frame;
pub mod motion;
pub mod source;
