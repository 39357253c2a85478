//! The ground truth of a scene set in the formats camera-trap tools read: MegaDetector batch
//! output 1.4 (`md.json`, <https://lila.science/megadetector-output-format>), COCO Camera Traps
//! (`coco.json`, <https://lila.science/coco-camera-traps>), and one JSON line per box
//! (`scenes.jsonl`) with what an evaluation splits results by (box size, day or night).
//!
//! Every bird is an `animal` detection of confidence 1 in `md.json`, its species given as a
//! classification of confidence 1 (`classification_categories` are the species indices); its
//! `bbox` is `[x, y, width, height]` normalised by the image size, rounded to six decimals (a
//! 500th of a pixel at 2048 wide). In `coco.json` category 0 is `empty` and species `k` of the
//! world is category `k + 1`, named exactly as the ImageFolder writer names its class folder;
//! boxes are in pixels, and an empty frame has one annotation of category 0 without a box.
//!
//! Times are synthetic and fixed (so the same arguments give byte-identical files): captures are
//! spread over 2024 (day frames in daylight hours, night frames at night, a sequence's frames a
//! second apart), and the "completion time" of the ground truth is [`GROUND_TRUTH_TIME`].

use serde::{Serialize, Serializer};

use super::render::PixelBox;
use super::scenes::BoxedBird;
use super::species::Species;

/// The `detector` (and `classifier`) named in `md.json`.
pub const GROUND_TRUTH_DETECTOR: &str = "xrvlm-synth ground truth";
/// The fixed completion time written into `md.json` and `coco.json`.
pub const GROUND_TRUTH_TIME: &str = "2025-01-01 00:00:00";
/// The MegaDetector output format version written.
pub const MD_FORMAT_VERSION: &str = "1.4";
/// COCO Camera Traps category of empty frames.
pub const EMPTY_CATEGORY: u32 = 0;
/// MegaDetector's category id of animals (people and vehicles never occur).
const ANIMAL: &str = "1";
/// Decimals of normalised coordinates.
const DECIMALS: f64 = 1e6;

/// One written image and what it shows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ImageRecord {
    /// Path relative to the output folder, forward slashes.
    pub file: String,
    pub width: u32,
    pub height: u32,
    pub night: bool,
    /// The burst it belongs to (a single frame is a burst of one), also its camera location.
    pub seq_id: String,
    pub seq_num_frames: usize,
    pub frame_num: usize,
    /// `YYYY-MM-DD HH:MM:SS`.
    pub datetime: String,
    pub birds: Vec<BoxedBird>,
}

impl ImageRecord {
    /// The image id of `coco.json` and `scenes.jsonl`: the file without its extension.
    fn id(&self) -> &str {
        self.file
            .rsplit_once('.')
            .map_or(&self.file, |(stem, _)| stem)
    }

    /// `[x, y, w, h]` of `b` normalised by the image size.
    fn normalised(&self, b: &PixelBox) -> [f64; 4] {
        let (w, h) = (f64::from(self.width), f64::from(self.height));
        let round = |v: f64| (v * DECIMALS).round() / DECIMALS;
        [
            round(f64::from(b.x0) / w),
            round(f64::from(b.y0) / h),
            round(f64::from(b.width()) / w),
            round(f64::from(b.height()) / h),
        ]
    }
}

/// `[x, y, w, h]` of `b` in pixels.
fn pixels(b: &PixelBox) -> [f64; 4] {
    [b.x0, b.y0, b.width(), b.height()].map(f64::from)
}

/// A capture time: day `ordinal` of a 336-day synthetic year (12 months of 28 days, so every
/// date exists), in daylight hours or at night, `second` seconds into its burst.
pub(crate) fn capture_time(ordinal: usize, night: bool, second: usize) -> String {
    const DAY_HOURS: [usize; 10] = [7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
    const NIGHT_HOURS: [usize; 8] = [21, 22, 23, 0, 1, 2, 3, 4];
    let day = ordinal % 336;
    let hour = if night {
        NIGHT_HOURS[ordinal % NIGHT_HOURS.len()]
    } else {
        DAY_HOURS[ordinal % DAY_HOURS.len()]
    };
    let minute = (ordinal * 7) % 60;
    format!(
        "2024-{:02}-{:02} {hour:02}:{minute:02}:{:02}",
        day / 28 + 1,
        day % 28 + 1,
        second % 60
    )
}

// === md.json ===

/// A JSON object whose keys keep the order given (species ids in numeric order, not as sorted
/// strings).
#[derive(Debug)]
struct OrderedMap(Vec<(String, String)>);

impl Serialize for OrderedMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct MdFile {
    info: MdInfo,
    detection_categories: OrderedMap,
    classification_categories: OrderedMap,
    images: Vec<MdImage>,
}

#[derive(Debug, Serialize)]
struct MdInfo {
    format_version: &'static str,
    detector: &'static str,
    detection_completion_time: &'static str,
    classifier: &'static str,
    classification_completion_time: &'static str,
}

#[derive(Debug, Serialize)]
struct MdImage {
    file: String,
    detections: Vec<MdDetection>,
}

#[derive(Debug, Serialize)]
struct MdDetection {
    category: &'static str,
    conf: f64,
    bbox: [f64; 4],
    classifications: Vec<(String, f64)>,
}

/// `md.json` of `records`.
pub(crate) fn megadetector(records: &[ImageRecord], species: &[Species]) -> MdFile {
    let images = records
        .iter()
        .map(|r| MdImage {
            file: r.file.clone(),
            detections: r
                .birds
                .iter()
                .map(|b| MdDetection {
                    category: ANIMAL,
                    conf: 1.0,
                    bbox: r.normalised(&b.bbox),
                    classifications: vec![(b.species.to_string(), 1.0)],
                })
                .collect(),
        })
        .collect();
    MdFile {
        info: MdInfo {
            format_version: MD_FORMAT_VERSION,
            detector: GROUND_TRUTH_DETECTOR,
            detection_completion_time: GROUND_TRUTH_TIME,
            classifier: GROUND_TRUTH_DETECTOR,
            classification_completion_time: GROUND_TRUTH_TIME,
        },
        detection_categories: OrderedMap(
            [(ANIMAL, "animal"), ("2", "person"), ("3", "vehicle")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .to_vec(),
        ),
        classification_categories: OrderedMap(
            species
                .iter()
                .map(|s| (s.index.to_string(), s.name.clone()))
                .collect(),
        ),
        images,
    }
}

// === coco.json ===

#[derive(Debug, Serialize)]
pub(crate) struct CocoFile {
    info: CocoInfo,
    images: Vec<CocoImage>,
    categories: Vec<CocoCategory>,
    annotations: Vec<CocoAnnotation>,
}

#[derive(Debug, Serialize)]
struct CocoInfo {
    version: String,
    description: String,
    year: u32,
    contributor: &'static str,
    date_created: &'static str,
}

#[derive(Debug, Serialize)]
struct CocoImage {
    id: String,
    file_name: String,
    width: u32,
    height: u32,
    seq_id: String,
    seq_num_frames: usize,
    frame_num: usize,
    location: String,
    datetime: String,
}

#[derive(Debug, Serialize)]
struct CocoCategory {
    id: u32,
    name: String,
}

#[derive(Debug, Serialize)]
struct CocoAnnotation {
    id: String,
    image_id: String,
    category_id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    bbox: Option<[f64; 4]>,
}

/// The COCO Camera Traps category of species index `k`.
pub(crate) fn species_category(k: usize) -> u32 {
    k as u32 + 1
}

/// `coco.json` of `records`; `description` says what the set is.
pub(crate) fn coco(
    records: &[ImageRecord],
    species: &[Species],
    version: u32,
    description: String,
) -> CocoFile {
    let mut categories = vec![CocoCategory {
        id: EMPTY_CATEGORY,
        name: "empty".to_owned(),
    }];
    categories.extend(species.iter().map(|s| CocoCategory {
        id: species_category(s.index),
        name: s.name.clone(),
    }));
    CocoFile {
        info: CocoInfo {
            version: version.to_string(),
            description,
            year: 2024,
            contributor: GROUND_TRUTH_DETECTOR,
            date_created: GROUND_TRUTH_TIME,
        },
        images: records.iter().map(coco_image).collect(),
        categories,
        annotations: records.iter().flat_map(coco_annotations).collect(),
    }
}

fn coco_image(r: &ImageRecord) -> CocoImage {
    CocoImage {
        id: r.id().to_owned(),
        file_name: r.file.clone(),
        width: r.width,
        height: r.height,
        seq_id: r.seq_id.clone(),
        seq_num_frames: r.seq_num_frames,
        frame_num: r.frame_num,
        location: r.seq_id.clone(),
        datetime: r.datetime.clone(),
    }
}

/// One annotation per bird, or one `empty` annotation without a box.
fn coco_annotations(r: &ImageRecord) -> Vec<CocoAnnotation> {
    let image_id = r.id().to_owned();
    if r.birds.is_empty() {
        return vec![CocoAnnotation {
            id: format!("{image_id}#0"),
            image_id,
            category_id: EMPTY_CATEGORY,
            bbox: None,
        }];
    }
    r.birds
        .iter()
        .enumerate()
        .map(|(k, b)| CocoAnnotation {
            id: format!("{image_id}#{k}"),
            image_id: image_id.clone(),
            category_id: species_category(b.species),
            bbox: Some(pixels(&b.bbox)),
        })
        .collect()
}

// === scenes.jsonl ===

/// One line of `scenes.jsonl`: one bird's box and what results are split by.
#[derive(Debug, Serialize)]
pub(crate) struct BoxRecord {
    image: String,
    image_id: String,
    species: String,
    species_index: usize,
    night: bool,
    /// `[x, y, w, h]` in pixels.
    bbox: [f64; 4],
    /// `[x, y, w, h]` normalised, as in `md.json`.
    bbox_normalised: [f64; 4],
    width_fraction: f32,
    height_fraction: f32,
    visible: f32,
    flying: bool,
    image_width: u32,
    image_height: u32,
    seq_id: String,
    frame_num: usize,
}

/// The box records of `records`, in image order.
pub(crate) fn box_records(records: &[ImageRecord], species: &[Species]) -> Vec<BoxRecord> {
    let name = |k: usize| species.get(k).map_or_else(String::new, |s| s.name.clone());
    records
        .iter()
        .flat_map(|r| {
            r.birds.iter().map(move |b| BoxRecord {
                image: r.file.clone(),
                image_id: r.id().to_owned(),
                species: name(b.species),
                species_index: b.species,
                night: r.night,
                bbox: pixels(&b.bbox),
                bbox_normalised: r.normalised(&b.bbox),
                width_fraction: b.width_fraction,
                height_fraction: b.bbox.height() as f32 / r.height as f32,
                visible: b.visible,
                flying: b.flying,
                image_width: r.width,
                image_height: r.height,
                seq_id: r.seq_id.clone(),
                frame_num: r.frame_num,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_times_are_valid_and_follow_day_and_night() {
        for ordinal in 0..800 {
            for night in [false, true] {
                let t = capture_time(ordinal, night, 3);
                let (date, time) = t.split_once(' ').expect("date and time");
                let d: Vec<u32> = date
                    .split('-')
                    .map(|p| p.parse().expect("number"))
                    .collect();
                let c: Vec<u32> = time
                    .split(':')
                    .map(|p| p.parse().expect("number"))
                    .collect();
                assert!(d[0] == 2024 && (1..=12).contains(&d[1]) && (1..=28).contains(&d[2]));
                assert!(c[0] < 24 && c[1] < 60 && c[2] == 3, "{t}");
                let daylight = (7..=16).contains(&c[0]);
                assert_eq!(daylight, !night, "{t}");
            }
        }
    }

    #[test]
    fn normalised_boxes_are_rounded_fractions_of_the_image() {
        let record = ImageRecord {
            file: "images/00001.jpg".to_owned(),
            width: 1920,
            height: 1080,
            night: false,
            seq_id: "frame00001".to_owned(),
            seq_num_frames: 1,
            frame_num: 0,
            datetime: capture_time(1, false, 0),
            birds: Vec::new(),
        };
        let b = PixelBox {
            x0: 1,
            y0: 540,
            x1: 1920,
            y1: 1080,
        };
        assert_eq!(record.normalised(&b), [0.000521, 0.5, 0.999479, 0.5]);
        assert_eq!(record.id(), "images/00001");
        assert_eq!(pixels(&b), [1.0, 540.0, 1919.0, 540.0]);
    }
}
