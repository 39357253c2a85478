//! The capture time a camera recorded in a picture's EXIF: `DateTimeOriginal`, a wall-clock
//! reading, plus `OffsetTimeOriginal` (or `OffsetTime`) when the camera wrote one.
//!
//! Missing or malformed tags mean "no EXIF time", never an error: the folder source then falls
//! back to the file's modification time.

use std::io::Cursor;

use exif::{In, Tag, Value};

use crate::field::frame::Capture;
use crate::timestamp::{CivilTime, UtcOffset};

/// The EXIF capture time of an encoded image (JPEG, PNG, WebP or TIFF), if it has a valid one.
pub fn exif_capture(bytes: &[u8]) -> Option<Capture> {
    let exif = exif::Reader::new()
        .read_from_container(&mut Cursor::new(bytes))
        .ok()?;
    let ascii = |tag: Tag| -> Option<String> {
        let field = exif.get_field(tag, In::PRIMARY)?;
        match &field.value {
            Value::Ascii(parts) => parts
                .first()
                .map(|p| String::from_utf8_lossy(p).trim_end_matches('\0').to_owned()),
            _ => None,
        }
    };
    let time = parse_exif_datetime(&ascii(Tag::DateTimeOriginal)?)?;
    let offset = ascii(Tag::OffsetTimeOriginal)
        .or_else(|| ascii(Tag::OffsetTime))
        .and_then(|s| UtcOffset::parse(s.trim()));
    Some(Capture::Camera { time, offset })
}

/// Parses EXIF's `YYYY:MM:DD HH:MM:SS`; `None` for anything else, including the all-blank or
/// all-zero values cameras write when their clock was never set.
pub fn parse_exif_datetime(text: &str) -> Option<CivilTime> {
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b':' || b[7] != b':' || b[10] != b' ' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    CivilTime::new(
        i64::from(num(0..4)?),
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exif_datetimes_parse_and_unset_clocks_do_not() {
        let t = parse_exif_datetime("2021:05:31 08:25:38").expect("valid");
        assert_eq!(t.rfc3339(UtcOffset::UTC), "2021-05-31T08:25:38+00:00");
        for bad in [
            "0000:00:00 00:00:00",
            "    :  :     :  :  ",
            "2021-05-31 08:25:38",
            "2021:05:31",
            "2021:02:30 08:25:38",
        ] {
            assert_eq!(parse_exif_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_image_without_exif_has_no_exif_time() {
        let img = image::RgbImage::new(8, 8);
        let mut png = Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png)
            .expect("encode");
        assert_eq!(exif_capture(png.get_ref()), None);
        assert_eq!(exif_capture(b"not an image"), None);
    }
}
