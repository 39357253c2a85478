//! An SSD1306 128×64 OLED on a Linux I2C bus (feature `oled`), the usual status screen of
//! Raspberry Pi and Jetson camera boxes.

use std::path::{Path, PathBuf};

use linux_embedded_hal::I2cdev;
use ssd1306::mode::BufferedGraphicsMode;
use ssd1306::prelude::*;
use ssd1306::{I2CDisplayInterface, Ssd1306};

use super::{draw_status, DisplayError, Status, StatusDisplay};

/// The SSD1306's usual I2C address (0x3D when its address pin is pulled high).
pub const DEFAULT_ADDRESS: u8 = 0x3C;

type Driver =
    Ssd1306<I2CInterface<I2cdev>, DisplaySize128x64, BufferedGraphicsMode<DisplaySize128x64>>;

/// An initialised SSD1306 drawn through a RAM buffer, flushed on every show.
pub struct OledDisplay {
    device: PathBuf,
    address: u8,
    driver: Driver,
}

impl std::fmt::Debug for OledDisplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OledDisplay")
            .field("device", &self.device)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl OledDisplay {
    /// Opens the I2C bus `device` (e.g. `/dev/i2c-1`) and initialises the display at `address`.
    pub fn open(device: &Path, address: u8) -> Result<Self, DisplayError> {
        let i2c = I2cdev::new(device)
            .map_err(|e| device_error(device, address, "cannot open the I2C bus", e))?;
        let interface = I2CDisplayInterface::new_custom_address(i2c, address);
        let mut driver = Ssd1306::new(interface, DisplaySize128x64, DisplayRotation::Rotate0)
            .into_buffered_graphics_mode();
        driver
            .init()
            .map_err(|e| device_error(device, address, "no SSD1306 answered", e))?;
        Ok(Self {
            device: device.to_path_buf(),
            address,
            driver,
        })
    }
}

fn device_error(device: &Path, address: u8, what: &str, e: impl std::fmt::Debug) -> DisplayError {
    DisplayError::Device {
        device: format!("{} address {address:#04x}", device.display()),
        what: format!("{what}: {e:?}"),
    }
}

impl StatusDisplay for OledDisplay {
    fn show(&mut self, status: &Status) -> Result<(), DisplayError> {
        let (device, address) = (&self.device, self.address);
        draw_status(&mut self.driver, status)
            .map_err(|e| device_error(device, address, "drawing failed", e))?;
        self.driver
            .flush()
            .map_err(|e| device_error(device, address, "cannot send the screen", e))
    }

    fn describe(&self) -> String {
        format!(
            "SSD1306 128x64 on {} address {:#04x}",
            self.device.display(),
            self.address
        )
    }
}
