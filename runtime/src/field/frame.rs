//! A frame as the field loop sees it: the RGB pixels, where they came from and when they were
//! captured.
//!
//! Camera traps stamp their pictures with their own clock in EXIF `DateTimeOriginal`, a wall-clock
//! reading without a time zone (newer cameras add `OffsetTimeOriginal`). Live cameras have no such
//! stamp; the frame is stamped with the system clock, which is UTC. [`Capture`] keeps the two apart
//! so that neither is silently shifted: a reading without an offset is placed in time with the
//! site's configured offset only when it is rendered.

use std::time::SystemTime;

use image::RgbImage;

use crate::timestamp::{unix_seconds, CivilTime, UtcOffset};

/// One captured frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The pixels, RGB8.
    pub image: RgbImage,
    /// Position in its source's stream, from 0; failed frames use up a number too, so gaps are
    /// visible in the log.
    pub sequence: u64,
    /// What the frame is called in logs and saved files: the file's path relative to the watched
    /// folder (`DCIM/100MEDIA/IMG_0001.JPG`), or `<device>-<sequence>` (`video0-000123`).
    pub media: String,
    /// When it was captured.
    pub captured: Capture,
}

impl Frame {
    /// The capture time as RFC 3339, e.g. `2021-05-31T08:25:38+02:00`; see [`Capture::rfc3339`].
    pub fn timestamp(&self, site: UtcOffset) -> String {
        self.captured.rfc3339(site)
    }

    /// The capture time as seconds since the Unix epoch; see [`Capture::unix_seconds`].
    pub fn capture_seconds(&self, site: UtcOffset) -> i64 {
        self.captured.unix_seconds(site)
    }
}

/// When a frame was captured, and by which clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// The camera's own clock (EXIF `DateTimeOriginal`).
    Camera {
        /// The wall-clock reading.
        time: CivilTime,
        /// The recorded offset (EXIF `OffsetTimeOriginal`/`OffsetTime`), if any. Without it the
        /// camera's clock is assumed to run at the site's offset.
        offset: Option<UtcOffset>,
    },
    /// The system clock (UTC) at capture, or a file's modification time when it has no EXIF time.
    System(SystemTime),
}

impl Capture {
    /// The capture time as RFC 3339. A camera reading keeps its own recorded offset, or is
    /// printed unchanged with `site` when it has none; a system time is shown on a clock at `site`.
    pub fn rfc3339(&self, site: UtcOffset) -> String {
        match *self {
            Self::Camera { time, offset } => time.rfc3339(offset.unwrap_or(site)),
            Self::System(t) => site.civil(t).rfc3339(site),
        }
    }

    /// Seconds since the Unix epoch (a camera reading without an offset is taken at `site`).
    pub fn unix_seconds(&self, site: UtcOffset) -> i64 {
        match *self {
            Self::Camera { time, offset } => time.unix_seconds(offset.unwrap_or(site)),
            Self::System(t) => unix_seconds(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn offset(minutes: i32) -> UtcOffset {
        UtcOffset::from_minutes(minutes).expect("valid offset")
    }

    #[test]
    fn a_camera_reading_without_offset_is_printed_as_read_with_the_site_offset() {
        let time = CivilTime::new(2021, 5, 31, 8, 25, 38).expect("valid");
        let c = Capture::Camera { time, offset: None };
        assert_eq!(c.rfc3339(offset(120)), "2021-05-31T08:25:38+02:00");
        assert_eq!(c.unix_seconds(offset(120)), 1_622_442_338);
    }

    #[test]
    fn a_camera_reading_keeps_its_recorded_offset() {
        let time = CivilTime::new(2021, 5, 31, 8, 25, 38).expect("valid");
        let c = Capture::Camera {
            time,
            offset: Some(offset(-300)),
        };
        assert_eq!(c.rfc3339(offset(120)), "2021-05-31T08:25:38-05:00");
        assert_eq!(c.unix_seconds(offset(120)), 1_622_442_338 + 7 * 3600);
    }

    #[test]
    fn a_system_time_is_shown_on_the_site_clock() {
        let c = Capture::System(UNIX_EPOCH + Duration::from_secs(1_622_442_338));
        assert_eq!(c.rfc3339(offset(120)), "2021-05-31T08:25:38+02:00");
        assert_eq!(c.rfc3339(UtcOffset::UTC), "2021-05-31T06:25:38+00:00");
        assert_eq!(c.unix_seconds(offset(120)), 1_622_442_338);
    }
}
