//! The SoC temperature, where the board reports one through the Linux thermal framework
//! (Jetson, Raspberry Pi): `thermal_zone0/temp`, in millidegrees Celsius.

use std::path::Path;

/// Where Linux reports thermal zones.
pub const THERMAL_ZONES: &str = "/sys/class/thermal";

/// The temperature of the first thermal zone under `zones`, in °C, or `None` where there is
/// none (a container, a desktop without the driver) or it does not read as a number.
pub fn soc_temperature(zones: &Path) -> Option<f32> {
    let text = std::fs::read_to_string(zones.join("thermal_zone0/temp")).ok()?;
    let millidegrees: i64 = text.trim().parse().ok()?;
    Some(millidegrees as f32 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_millidegrees_and_ignores_what_is_not_there() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(soc_temperature(dir.path()), None);
        std::fs::create_dir(dir.path().join("thermal_zone0")).unwrap();
        std::fs::write(dir.path().join("thermal_zone0/temp"), "48250\n").unwrap();
        assert_eq!(soc_temperature(dir.path()), Some(48.25));
        std::fs::write(dir.path().join("thermal_zone0/temp"), "hot\n").unwrap();
        assert_eq!(soc_temperature(dir.path()), None);
    }
}
