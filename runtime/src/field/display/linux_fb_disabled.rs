//! The Linux framebuffer in a build without the `framebuffer` feature: the same names as the
//! real module, but opening one says how to get a build that can.

use std::path::Path;

use super::{DisplayError, Status, StatusDisplay};

/// Cannot exist in this build.
#[derive(Debug)]
pub enum FramebufferDisplay {}

impl FramebufferDisplay {
    /// Always [`DisplayError::NotBuilt`]: this build has no framebuffer support.
    pub fn open(_device: &Path) -> Result<Self, DisplayError> {
        Err(DisplayError::NotBuilt {
            feature: "framebuffer",
            what: "Linux framebuffer displays",
        })
    }
}

impl StatusDisplay for FramebufferDisplay {
    fn show(&mut self, _status: &Status) -> Result<(), DisplayError> {
        match *self {}
    }

    fn describe(&self) -> String {
        match *self {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_a_framebuffer_says_which_feature_to_build_with() {
        let err = FramebufferDisplay::open(Path::new("/dev/fb0")).expect_err("not built");
        assert!(err.to_string().contains("--features framebuffer"), "{err}");
    }
}
