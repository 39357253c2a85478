//! A fixed offset from UTC (`+10:00`), the form Camtrap DP timestamps carry. A field camera
//! keeps one offset for a deployment: its clock does not follow daylight saving.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::timestamp::UtcTime;

/// The largest offset in use anywhere (UTC+14:00, Line Islands), in minutes.
const MAX_OFFSET_MINUTES: i32 = 14 * 60;

/// A fixed UTC offset, whole minutes east of UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UtcOffset {
    minutes: i32,
}

/// Why a UTC offset was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a UTC offset: expected \"+HH:MM\" or \"-HH:MM\" between -14:00 and +14:00, or \"Z\"")]
pub struct UtcOffsetError {
    text: String,
}

impl UtcOffset {
    /// UTC itself.
    pub const UTC: UtcOffset = UtcOffset { minutes: 0 };

    /// The offset of `minutes` east of UTC, if within ±14:00.
    pub fn from_minutes(minutes: i32) -> Option<Self> {
        (minutes.abs() <= MAX_OFFSET_MINUTES).then_some(Self { minutes })
    }

    /// Minutes east of UTC.
    pub fn minutes(&self) -> i32 {
        self.minutes
    }

    /// Seconds east of UTC.
    pub fn seconds(&self) -> i64 {
        i64::from(self.minutes) * 60
    }

    /// `t` as local time at this offset in RFC 3339, e.g. `2026-11-21T13:00:00+10:00`
    /// (to the second; times before 1970 read as 1970).
    pub fn rfc3339(&self, t: SystemTime) -> String {
        let utc = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let local = u64::try_from(utc as i64 + self.seconds()).unwrap_or(0);
        let text = UtcTime::from_unix(local).rfc3339();
        format!("{}{self}", text.trim_end_matches('Z'))
    }
}

impl FromStr for UtcOffset {
    type Err = UtcOffsetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || UtcOffsetError {
            text: text.to_string(),
        };
        if text == "Z" {
            return Ok(Self::UTC);
        }
        let (sign, rest) = match text.as_bytes().first() {
            Some(b'+') => (1, &text[1..]),
            Some(b'-') => (-1, &text[1..]),
            _ => return Err(error()),
        };
        let (hours, minutes) = rest.split_once(':').ok_or_else(error)?;
        let two_digits = |s: &str| -> Option<i32> {
            (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
        };
        let (hours, minutes) = (
            two_digits(hours).ok_or_else(error)?,
            two_digits(minutes).ok_or_else(error)?,
        );
        if minutes >= 60 {
            return Err(error());
        }
        Self::from_minutes(sign * (hours * 60 + minutes)).ok_or_else(error)
    }
}

impl TryFrom<String> for UtcOffset {
    type Error = UtcOffsetError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<UtcOffset> for String {
    fn from(offset: UtcOffset) -> String {
        offset.to_string()
    }
}

impl fmt::Display for UtcOffset {
    /// `+HH:MM` (UTC is `+00:00`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.minutes < 0 { '-' } else { '+' };
        let m = self.minutes.abs();
        write!(f, "{sign}{:02}:{:02}", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_offsets() {
        for text in ["+10:00", "-03:30", "+05:45", "+00:00", "+14:00", "-12:00"] {
            assert_eq!(text.parse::<UtcOffset>().unwrap().to_string(), text);
        }
        assert_eq!("Z".parse::<UtcOffset>().unwrap(), UtcOffset::UTC);
        assert_eq!("-03:30".parse::<UtcOffset>().unwrap().minutes(), -210);
    }

    #[test]
    fn formats_local_time_with_the_offset() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let brisbane: UtcOffset = "+10:00".parse().unwrap();
        assert_eq!(brisbane.rfc3339(t), "2023-11-15T08:13:20+10:00");
        let newfoundland: UtcOffset = "-03:30".parse().unwrap();
        assert_eq!(newfoundland.rfc3339(t), "2023-11-14T18:43:20-03:30");
    }

    #[test]
    fn refuses_what_is_not_an_offset() {
        for text in [
            "10:00",
            "+1:00",
            "+10",
            "+10:60",
            "+14:30",
            "Australia/Brisbane",
            "",
        ] {
            assert!(text.parse::<UtcOffset>().is_err(), "{text}");
        }
    }
}
