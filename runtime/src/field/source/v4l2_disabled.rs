//! V4L2 cameras in a build without the `camera` feature: the same names as the real module, but
//! opening a camera says how to get a build that can.

use super::camera_settings::CameraSettings;
use super::reconnect::{Connect, Reconnecting};
use super::{FrameSource, SourceError, SourceEvent};
use crate::field::clock::SystemClock;

/// A V4L2 camera that reopens itself after it vanishes (never built without `camera`).
pub type Camera = Reconnecting<V4l2Connector, SystemClock>;

/// Always [`SourceError::NotBuilt`]: this build has no V4L2 support.
pub fn open_camera(_settings: CameraSettings) -> Result<Camera, SourceError> {
    Err(not_built())
}

/// [`SourceError::NotBuilt`] naming the `camera` feature; the run loop calls this to reject a
/// camera configuration up front.
pub fn camera_support() -> Result<(), SourceError> {
    Err(not_built())
}

fn not_built() -> SourceError {
    SourceError::NotBuilt {
        feature: "camera",
        what: "V4L2 cameras",
    }
}

/// Cannot exist in this build.
#[derive(Debug)]
pub enum V4l2Connector {}

/// Cannot exist in this build.
#[derive(Debug)]
pub enum V4l2Stream {}

impl Connect for V4l2Connector {
    type Source = V4l2Stream;

    fn connect(&mut self, _first_sequence: u64) -> Result<V4l2Stream, SourceError> {
        match *self {}
    }

    fn describe(&self) -> String {
        match *self {}
    }
}

impl FrameSource for V4l2Stream {
    fn next_frame(&mut self) -> Result<SourceEvent, SourceError> {
        match *self {}
    }

    fn describe(&self) -> String {
        match *self {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::source::camera_settings::PixelFormat;
    use crate::field::source::SourceErrorKind;

    #[test]
    fn asking_for_a_camera_says_which_feature_to_build_with() {
        let settings = CameraSettings {
            device: "/dev/video0".into(),
            format: PixelFormat::Yuyv,
            width: 640,
            height: 480,
            fps: 30,
        };
        let err = open_camera(settings).expect_err("no camera support");
        assert_eq!(err.kind(), SourceErrorKind::Config);
        assert_eq!(
            err.to_string(),
            "this xrvlm was built without the `camera` feature, needed for V4L2 cameras; \
             rebuild with --features camera"
        );
    }
}
