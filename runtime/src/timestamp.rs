//! Timestamps without a date library: seconds since the Unix epoch to civil date and time
//! (proleptic Gregorian) and back, formatted as RFC 3339 (manifests, logs) or
//! `YYYY-MM-DD HH:MM:SS` (MegaDetector batch files).
//!
//! [`UtcTime`] is a UTC instant. [`CivilTime`] is a wall-clock reading with no zone (what a
//! camera writes into EXIF), and [`UtcOffset`] the fixed offset that places it in time.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

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

/// A wall-clock date and time to the second with no time zone, e.g. EXIF `DateTimeOriginal`:
/// a camera's clock reading, which means an instant only together with a [`UtcOffset`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilTime {
    // Field order makes the derived ordering chronological.
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl CivilTime {
    /// The given reading, or `None` when a field is out of range (month 1–12, a day that exists
    /// in that month, hour 0–23, minute 0–59, second 0–59; leap seconds are not represented).
    pub fn new(
        year: i64,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
    ) -> Option<Self> {
        let valid = (1..=12).contains(&month)
            && (1..=days_in_month(year, month)).contains(&day)
            && hour < 24
            && minute < 60
            && second < 60;
        valid.then_some(Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// The reading of a clock at UTC+0, `secs` seconds after 1970-01-01 00:00:00 (negative
    /// before it).
    pub fn from_unix(secs: i64) -> Self {
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400) as u32;
        Self {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }

    /// Seconds since 1970-01-01 00:00:00 of this reading on a UTC+0 clock.
    pub fn unix_seconds_at_utc(&self) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        days * 86_400 + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
    }

    /// The instant of this reading on a clock at `offset`, as seconds since the Unix epoch.
    pub fn unix_seconds(&self, offset: UtcOffset) -> i64 {
        self.unix_seconds_at_utc() - i64::from(offset.minutes()) * 60
    }

    /// RFC 3339 with the offset, e.g. `2021-05-31T08:25:38+02:00` (`Z` for a zero offset).
    pub fn rfc3339(&self, offset: UtcOffset) -> String {
        format!("{}T{}{offset}", self.date(), self.clock())
    }

    /// `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `HH:MM:SS`.
    pub fn clock(&self) -> String {
        format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }
}

/// The largest offset in use anywhere (UTC+14:00, Line Islands), in minutes.
const MAX_OFFSET_MINUTES: i32 = 14 * 60;

/// A fixed offset from UTC, whole minutes east of UTC, within ±14:00. A field camera keeps one
/// offset for a deployment: its clock does not follow daylight saving.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
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
    pub const UTC: Self = Self { minutes: 0 };

    /// `minutes` east of UTC (negative west), or `None` beyond ±14:00.
    pub fn from_minutes(minutes: i32) -> Option<Self> {
        (minutes.abs() <= MAX_OFFSET_MINUTES).then_some(Self { minutes })
    }

    /// Parses `±HH:MM` (EXIF `OffsetTime*`, RFC 3339) or `Z`.
    pub fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }

    /// Minutes east of UTC.
    pub fn minutes(&self) -> i32 {
        self.minutes
    }

    /// Seconds east of UTC.
    pub fn seconds(&self) -> i64 {
        i64::from(self.minutes) * 60
    }

    /// The reading of a clock at this offset at `t`.
    pub fn civil(&self, t: SystemTime) -> CivilTime {
        CivilTime::from_unix(unix_seconds(t) + self.seconds())
    }

    /// `t` as local time at this offset in RFC 3339, e.g. `2026-11-21T13:00:00+10:00`.
    pub fn rfc3339(&self, t: SystemTime) -> String {
        self.civil(t).rfc3339(*self)
    }
}

impl std::str::FromStr for UtcOffset {
    type Err = UtcOffsetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || UtcOffsetError {
            text: text.to_string(),
        };
        if text == "Z" {
            return Ok(Self::UTC);
        }
        let sign = match text.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(error()),
        };
        let (hours, minutes) = text[1..].split_once(':').ok_or_else(error)?;
        let two_digits = |s: &str| -> Option<i32> {
            (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
        };
        let hours = two_digits(hours).ok_or_else(error)?;
        let minutes = two_digits(minutes).ok_or_else(error)?;
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

impl std::fmt::Display for UtcOffset {
    /// `±HH:MM`; UTC is `+00:00`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.minutes < 0 { '-' } else { '+' };
        let m = self.minutes.abs();
        write!(f, "{sign}{:02}:{:02}", m / 60, m % 60)
    }
}

/// The instant an RFC 3339 timestamp to the second names (`2021-04-11T20:43:09+01:00`, or `Z`),
/// as this module writes them; `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let (date, rest) = text.split_once('T')?;
    let (clock, offset) = rest.split_at_checked(8)?;
    let mut d = date.splitn(3, '-');
    let mut c = clock.splitn(3, ':');
    let number = |part: Option<&str>, digits: usize| -> Option<i64> {
        let part = part.filter(|p| p.len() == digits && p.bytes().all(|b| b.is_ascii_digit()))?;
        part.parse().ok()
    };
    let civil = CivilTime::new(
        number(d.next(), 4)?,
        u32::try_from(number(d.next(), 2)?).ok()?,
        u32::try_from(number(d.next(), 2)?).ok()?,
        u32::try_from(number(c.next(), 2)?).ok()?,
        u32::try_from(number(c.next(), 2)?).ok()?,
        u32::try_from(number(c.next(), 2)?).ok()?,
    )?;
    let seconds = civil.unix_seconds(UtcOffset::parse(offset)?);
    Some(match u64::try_from(seconds) {
        Ok(after) => UNIX_EPOCH + std::time::Duration::from_secs(after),
        Err(_) => UNIX_EPOCH - std::time::Duration::from_secs(seconds.unsigned_abs()),
    })
}

/// Seconds since the Unix epoch of `t`, negative before it.
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(before) => -(before.duration().as_secs() as i64),
    }
}

fn is_leap_year(year: i64) -> bool {
    year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date (Hinnant's days-from-civil algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

    #[test]
    fn civil_time_round_trips_through_unix_seconds() {
        for secs in [-86_401, -1, 0, 951_782_400, 1_622_442_338, 4_107_545_999] {
            assert_eq!(CivilTime::from_unix(secs).unix_seconds_at_utc(), secs);
        }
        assert_eq!(
            CivilTime::from_unix(-1).rfc3339(UtcOffset::UTC),
            "1969-12-31T23:59:59+00:00"
        );
    }

    #[test]
    fn civil_time_rejects_impossible_readings() {
        assert!(CivilTime::new(2024, 2, 29, 23, 59, 59).is_some());
        assert!(CivilTime::new(2023, 2, 29, 0, 0, 0).is_none());
        assert!(CivilTime::new(2100, 2, 29, 0, 0, 0).is_none());
        assert!(CivilTime::new(2021, 4, 31, 0, 0, 0).is_none());
        assert!(CivilTime::new(2021, 13, 1, 0, 0, 0).is_none());
        assert!(CivilTime::new(2021, 1, 1, 24, 0, 0).is_none());
        assert!(CivilTime::new(2021, 1, 1, 0, 60, 0).is_none());
    }

    #[test]
    fn a_local_reading_with_an_offset_is_an_instant() {
        let t = CivilTime::new(2021, 5, 31, 8, 25, 38).expect("valid");
        let plus2 = UtcOffset::from_minutes(120).expect("valid");
        assert_eq!(t.rfc3339(plus2), "2021-05-31T08:25:38+02:00");
        assert_eq!(t.unix_seconds(plus2), 1_622_442_338);
        let utc = UNIX_EPOCH + std::time::Duration::from_secs(1_622_442_338);
        assert_eq!(plus2.civil(utc), t);
        let minus = UtcOffset::from_minutes(-(9 * 60 + 30)).expect("valid");
        assert_eq!(plus2.civil(utc).rfc3339(minus), "2021-05-31T08:25:38-09:30");
    }

    #[test]
    fn offsets_parse_and_print_as_rfc3339() {
        assert_eq!(UtcOffset::parse("+02:00").map(|o| o.minutes()), Some(120));
        assert_eq!(UtcOffset::parse("-03:30").map(|o| o.minutes()), Some(-210));
        assert_eq!(UtcOffset::parse("Z"), Some(UtcOffset::UTC));
        for bad in [
            "",
            "02:00",
            "+2:00",
            "+02:60",
            "+24:00",
            "+14:30",
            "+02:00x",
            "+0a:00",
            "+10",
            "Australia/Brisbane",
        ] {
            assert_eq!(UtcOffset::parse(bad), None, "{bad}");
        }
        assert_eq!(
            UtcOffset::from_minutes(-210).expect("valid").to_string(),
            "-03:30"
        );
        assert_eq!(UtcOffset::UTC.to_string(), "+00:00");
        assert!(UtcOffset::from_minutes(14 * 60 + 1).is_none());
        for text in ["+10:00", "-03:30", "+05:45", "+00:00", "+14:00", "-12:00"] {
            assert_eq!(text.parse::<UtcOffset>().unwrap().to_string(), text);
        }
    }
}

#[cfg(test)]
mod offset_formatting {
    use super::*;

    #[test]
    fn rfc3339_round_trips_and_refuses_other_forms() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_618_170_189);
        let text = UtcOffset::parse("+01:00").unwrap().rfc3339(t);
        assert_eq!(text, "2021-04-11T20:43:09+01:00");
        assert_eq!(parse_rfc3339(&text), Some(t));
        assert_eq!(parse_rfc3339("2021-04-11T19:43:09Z"), Some(t));
        for bad in [
            "",
            "2021-04-11 20:43:09+01:00",
            "2021-04-11T20:43:09",
            "2021-02-30T00:00:00Z",
            "2021-04-11T20:43:9+01:00",
            "2021-04-11T20:43:09+1:00",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_local_time_with_the_offset() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let brisbane: UtcOffset = "+10:00".parse().unwrap();
        assert_eq!(brisbane.rfc3339(t), "2023-11-15T08:13:20+10:00");
        let newfoundland: UtcOffset = "-03:30".parse().unwrap();
        assert_eq!(newfoundland.rfc3339(t), "2023-11-14T18:43:20-03:30");
    }
}
