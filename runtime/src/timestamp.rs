//! UTC timestamps without a date library: seconds since the Unix epoch to civil date and time
//! (proleptic Gregorian), formatted as RFC 3339 (manifests, logs) or `YYYY-MM-DD HH:MM:SS`
//! (MegaDetector batch files).

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC date and time to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcTime {
    /// Year.
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
    /// Day of the month, 1–31.
    pub day: u32,
    /// Hour, 0–23.
    pub hour: u32,
    /// Minute, 0–59.
    pub minute: u32,
    /// Second, 0–59.
    pub second: u32,
}

impl UtcTime {
    /// The time `secs` seconds after 1970-01-01 00:00:00 UTC.
    pub fn from_unix(secs: u64) -> Self {
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let rem = (secs % 86_400) as u32;
        Self {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }

    /// `t` (times before the epoch read as the epoch).
    pub fn from_system(t: SystemTime) -> Self {
        Self::from_unix(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn rfc3339(&self) -> String {
        format!("{}T{}Z", self.date(), self.clock())
    }

    /// `YYYY-MM-DD HH:MM:SS`.
    pub fn space_separated(&self) -> String {
        format!("{} {}", self.date(), self.clock())
    }

    fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    fn clock(&self) -> String {
        format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }
}

/// `t` as RFC 3339 UTC, e.g. `2026-11-21T03:00:00Z`.
pub fn rfc3339_utc(t: SystemTime) -> String {
    UtcTime::from_system(t).rfc3339()
}

/// Year, month, day of the day `days` after 1970-01-01 (Hinnant's days-to-civil algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(UtcTime::from_unix(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            UtcTime::from_unix(951_782_400).space_separated(),
            "2000-02-29 00:00:00"
        );
        assert_eq!(
            UtcTime::from_unix(1_700_000_000).rfc3339(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            UtcTime::from_unix(4_107_542_400 + 3661).space_separated(),
            "2100-03-01 01:01:01"
        );
    }
}
