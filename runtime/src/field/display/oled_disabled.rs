//! SSD1306 OLEDs in a build without the `oled` feature: the same names as the real module, but
//! opening one says how to get a build that can.

use std::path::Path;

use super::{DisplayError, Status, StatusDisplay};

/// The SSD1306's usual I2C address (0x3D when its address pin is pulled high).
pub const DEFAULT_ADDRESS: u8 = 0x3C;

/// Cannot exist in this build.
#[derive(Debug)]
pub enum OledDisplay {}

impl OledDisplay {
    /// Always [`DisplayError::NotBuilt`]: this build has no OLED support.
    pub fn open(_device: &Path, _address: u8) -> Result<Self, DisplayError> {
        Err(DisplayError::NotBuilt {
            feature: "oled",
            what: "SSD1306 OLED displays",
        })
    }
}

impl StatusDisplay for OledDisplay {
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
    fn opening_an_oled_says_which_feature_to_build_with() {
        let err =
            OledDisplay::open(Path::new("/dev/i2c-1"), DEFAULT_ADDRESS).expect_err("not built");
        assert!(err.to_string().contains("--features oled"), "{err}");
    }
}
