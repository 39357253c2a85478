//! The MegaDetector batch-output file that `classify --detections` reads
//! (<https://lila.science/megadetector-output-format>): which of its detections get classified,
//! where their images are, and what is not MegaDetector's format.
//!
//! The whole document is checked before anything runs, and one that does not have the format's
//! shape is refused with the JSON path of the first thing wrong and what was expected there
//! (`md.json: images[3].detections[1].bbox: expected 4 numbers …, found …`): a run of hours
//! should not start on a file that was misread. Values of the right type that cannot be used
//! (a box outside the image or without area) are not refused here: they are that detection's
//! problem, which `classify_detections` records per image.
//!
//! A detection is classified when its `category` is named `animal` in `detection_categories`
//! (whatever its id) and its `conf` is at least the threshold. Everything else in the document
//! is kept as read, for the output to write back, except classifications it already holds
//! (another classifier's, or an earlier run's): their ids refer to `classification_categories`
//! that this run replaces, so they are removed and [`DetectionFile::replaced_classifier`] says so.

use std::path::{Path, PathBuf};

use crate::crop::{BoxError, NormalizedBox};
use serde_json::{Map, Value};

/// The detection confidence below which `--detections` does not classify by default:
/// MegaDetector's typical detection threshold (its `typical_detection_threshold` for
/// MDv5, and its CLI's default), under which most boxes are not animals.
pub const DEFAULT_MIN_DETECTION_CONF: f64 = 0.2;

/// The detection category that is classified, by name.
const ANIMAL: &str = "animal";

/// Keys of a detection (or an image) that hold classifications, with ids of a document's
/// `classification_categories`.
const CLASSIFICATION_KEYS: [&str; 2] = ["classifications", "raw_classifications"];

/// A detection file, checked.
#[derive(Debug, Clone)]
pub struct DetectionFile {
    /// Every top-level key but `images`, as read.
    pub document: Map<String, Value>,
    /// The images, in the file's order.
    pub images: Vec<DetectionImage>,
    /// `Some` when the file already held classifications (removed): its `info.classifier`, or
    /// "an unnamed classifier".
    pub replaced_classifier: Option<String>,
}

/// One entry of `images`.
#[derive(Debug, Clone)]
pub struct DetectionImage {
    /// `file` as written in the detection file: the key of the output's records.
    pub file: String,
    /// Where the image is: `file` under the image folder, or `file` itself when absolute.
    pub path: PathBuf,
    /// The entry as read (without classifications).
    pub entry: Value,
    /// The detections to classify, in the entry's order.
    pub targets: Vec<Target>,
}

/// A detection to classify.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Index in the image's `detections`.
    pub index: usize,
    /// Its `conf`.
    pub conf: f64,
    /// Its `bbox` as written.
    pub bbox: [f64; 4],
    /// The box the crop is cut around, or why there is none.
    pub crop_box: Result<NormalizedBox, BoxError>,
}

/// Why a detection file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DetectionFileError {
    /// The file cannot be read.
    #[error("cannot read the detection file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{} is not JSON: {source}", path.display())]
    NotJson {
        /// The file.
        path: PathBuf,
        /// Where and why.
        source: serde_json::Error,
    },
    /// The JSON does not have the format's shape.
    #[error(
        "{}: {source} (a MegaDetector batch output file is expected: \
         https://lila.science/megadetector-output-format)",
        path.display()
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// The first thing wrong.
        source: FormatError,
    },
}

/// The first place where a document departs from the format.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    /// A value of the wrong type or shape.
    #[error("{at}: expected {expected}, found {found}")]
    Unexpected {
        /// JSON path, e.g. `images[3].detections[1].bbox`.
        at: String,
        /// What the format has there.
        expected: &'static str,
        /// What the file has there.
        found: String,
    },
    /// No detection category is named `animal`.
    #[error(
        "detection_categories: expected a category named \"animal\" (the detections to \
         classify), found only {found}"
    )]
    NoAnimalCategory {
        /// The names there are.
        found: String,
    },
}

impl DetectionFile {
    /// Reads and checks `path`; relative image paths are taken under `image_dir` (default: the
    /// folder holding `path`); animal detections with `conf` ≥ `min_conf` are the targets.
    pub fn read(
        path: &Path,
        image_dir: Option<&Path>,
        min_conf: f64,
    ) -> Result<Self, DetectionFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| DetectionFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let root: Value =
            serde_json::from_str(&text).map_err(|source| DetectionFileError::NotJson {
                path: path.to_path_buf(),
                source,
            })?;
        let image_dir = match image_dir {
            Some(dir) => dir.to_path_buf(),
            None => folder_of(path),
        };
        parse(root, &image_dir, min_conf).map_err(|source| DetectionFileError::Format {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// The folder holding `file` (`.` for a bare file name).
fn folder_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Checks a parsed document and picks its targets.
pub fn parse(root: Value, image_dir: &Path, min_conf: f64) -> Result<DetectionFile, FormatError> {
    let Value::Object(mut document) = root else {
        return Err(unexpected(
            "the document",
            "a JSON object with `images` and `detection_categories`",
            Some(&root),
        ));
    };
    let animal_ids = animal_ids(document.get("detection_categories"))?;
    let images = match document.remove("images") {
        Some(Value::Array(images)) => images,
        other => return Err(unexpected("images", "a list of images", other.as_ref())),
    };
    let replaced_classifier = document
        .contains_key("classification_categories")
        .then(|| classifier_name(&document));
    let mut read = Vec::with_capacity(images.len());
    let mut stripped = false;
    for (i, entry) in images.into_iter().enumerate() {
        let (image, had_classifications) = parse_image(i, entry, &animal_ids, image_dir, min_conf)?;
        stripped |= had_classifications;
        read.push(image);
    }
    let replaced_classifier =
        replaced_classifier.or_else(|| stripped.then(|| classifier_name(&document)));
    Ok(DetectionFile {
        document,
        images: read,
        replaced_classifier,
    })
}

/// The ids of the categories named `animal`.
fn animal_ids(categories: Option<&Value>) -> Result<Vec<String>, FormatError> {
    let Some(Value::Object(categories)) = categories else {
        return Err(unexpected(
            "detection_categories",
            "an object of category ids to names, e.g. {\"1\": \"animal\"}",
            categories,
        ));
    };
    let mut ids = Vec::new();
    for (id, name) in categories {
        let Value::String(name) = name else {
            return Err(unexpected(
                &format!("detection_categories.{id}"),
                "a category name (a string)",
                Some(name),
            ));
        };
        if name.trim().eq_ignore_ascii_case(ANIMAL) {
            ids.push(id.clone());
        }
    }
    if ids.is_empty() {
        let names: Vec<String> = categories.values().map(Value::to_string).collect();
        let found = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        };
        return Err(FormatError::NoAnimalCategory { found });
    }
    Ok(ids)
}

/// `info.classifier`, or a phrase for its absence.
fn classifier_name(document: &Map<String, Value>) -> String {
    document
        .get("info")
        .and_then(|info| info.get("classifier"))
        .and_then(Value::as_str)
        .map_or_else(|| "an unnamed classifier".to_string(), str::to_string)
}

/// One image entry, checked, without classifications; also whether it had any.
fn parse_image(
    i: usize,
    mut entry: Value,
    animal_ids: &[String],
    image_dir: &Path,
    min_conf: f64,
) -> Result<(DetectionImage, bool), FormatError> {
    let at = format!("images[{i}]");
    let Value::Object(fields) = &mut entry else {
        return Err(unexpected(&at, "an image object with `file`", Some(&entry)));
    };
    let file = match fields.get("file") {
        Some(Value::String(file)) => file.clone(),
        other => {
            return Err(unexpected(
                &format!("{at}.file"),
                "a path (a string)",
                other,
            ))
        }
    };
    let mut stripped = remove_classifications(fields);
    let mut targets = Vec::new();
    match fields.get_mut("detections") {
        None | Some(Value::Null) => {}
        Some(Value::Array(detections)) => {
            for (j, detection) in detections.iter_mut().enumerate() {
                let at = format!("{at}.detections[{j}]");
                let Value::Object(detection) = detection else {
                    return Err(unexpected(&at, "a detection object", Some(detection)));
                };
                stripped |= remove_classifications(detection);
                if let Some(target) = parse_detection(&at, j, detection, animal_ids, min_conf)? {
                    targets.push(target);
                }
            }
        }
        Some(other) => {
            return Err(unexpected(
                &format!("{at}.detections"),
                "a list of detections, or null",
                Some(other),
            ))
        }
    }
    let image = DetectionImage {
        path: image_dir.join(&file),
        file,
        entry,
        targets,
    };
    Ok((image, stripped))
}

/// Removes the classification keys from `fields`; whether there were any.
fn remove_classifications(fields: &mut Map<String, Value>) -> bool {
    let removed = CLASSIFICATION_KEYS.map(|key| fields.remove(key).is_some());
    removed.contains(&true)
}

/// One detection, checked; a target when it is an animal at or above `min_conf`.
fn parse_detection(
    at: &str,
    index: usize,
    detection: &Map<String, Value>,
    animal_ids: &[String],
    min_conf: f64,
) -> Result<Option<Target>, FormatError> {
    let category = match detection.get("category") {
        Some(Value::String(category)) => category,
        other => {
            return Err(unexpected(
                &format!("{at}.category"),
                "a detection category id (a string, e.g. \"1\")",
                other,
            ))
        }
    };
    let conf = match detection.get("conf") {
        Some(Value::Number(conf)) => conf.as_f64().unwrap_or(f64::NAN),
        other => {
            return Err(unexpected(
                &format!("{at}.conf"),
                "a confidence (a number)",
                other,
            ))
        }
    };
    let bbox = bbox(&format!("{at}.bbox"), detection.get("bbox"))?;
    if !animal_ids.contains(category) || conf < min_conf {
        return Ok(None);
    }
    let [x, y, width, height] = bbox;
    Ok(Some(Target {
        index,
        conf,
        bbox,
        crop_box: NormalizedBox::new(x, y, width, height),
    }))
}

/// A `bbox`: four numbers.
fn bbox(at: &str, value: Option<&Value>) -> Result<[f64; 4], FormatError> {
    let numbers: Option<Vec<f64>> = match value {
        Some(Value::Array(items)) if items.len() == 4 => items.iter().map(Value::as_f64).collect(),
        _ => None,
    };
    numbers.and_then(|n| n.try_into().ok()).ok_or_else(|| {
        unexpected(
            at,
            "4 numbers [x, y, width, height] (fractions of the image)",
            value,
        )
    })
}

fn unexpected(at: &str, expected: &'static str, found: Option<&Value>) -> FormatError {
    FormatError::Unexpected {
        at: at.to_string(),
        expected,
        found: describe(found),
    }
}

/// What a value is, for an error: its kind and (the start of) its JSON.
fn describe(value: Option<&Value>) -> String {
    const SHOWN: usize = 60;
    let Some(value) = value else {
        return "nothing (the key is missing)".to_string();
    };
    let kind = match value {
        Value::Null => return "null".to_string(),
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(items) => return format!("a list of {} {}", items.len(), shown(value, SHOWN)),
        Value::Object(_) => "an object",
    };
    format!("{kind} {}", shown(value, SHOWN))
}

/// The JSON of `value`, cut after `max` characters.
fn shown(value: &Value, max: usize) -> String {
    let text = value.to_string();
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_json(doc: Value) -> Result<DetectionFile, FormatError> {
        parse(doc, Path::new("/photos"), DEFAULT_MIN_DETECTION_CONF)
    }

    fn error(doc: Value) -> String {
        parse_json(doc).unwrap_err().to_string()
    }

    fn with_detections(detections: Value) -> Value {
        json!({
            "info": {"format_version": "1.4"},
            "detection_categories": {"1": "animal", "2": "person"},
            "images": [{"file": "a.jpg", "detections": detections}],
        })
    }

    #[test]
    fn animals_at_or_above_the_threshold_are_the_targets_whatever_their_id() {
        let doc = json!({
            "info": {"format_version": "1.5"},
            "detection_categories": {"4": "person", "7": "Animal"},
            "images": [
                {"file": "a.jpg", "detections": [
                    {"category": "7", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2]},
                    {"category": "4", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2]},
                    {"category": "7", "conf": 0.19, "bbox": [0.1, 0.1, 0.2, 0.2]},
                    {"category": "7", "conf": 0.2, "bbox": [0.5, 0.5, 0.0, 0.2]},
                ]},
                {"file": "/elsewhere/b.jpg", "detections": null, "failure": "gone"},
                {"file": "sub/c.jpg", "detections": []},
            ],
            "extra": 1,
        });
        let file = parse_json(doc).unwrap();
        let a = &file.images[0];
        assert_eq!(a.path, Path::new("/photos/a.jpg"));
        let indices: Vec<usize> = a.targets.iter().map(|t| t.index).collect();
        assert_eq!(indices, [0, 3]);
        assert!(a.targets[0].crop_box.is_ok());
        assert!(matches!(a.targets[1].crop_box, Err(BoxError::Empty(_))));
        assert_eq!(file.images[1].path, Path::new("/elsewhere/b.jpg"));
        assert!(file.images[1].targets.is_empty());
        assert_eq!(file.images[2].path, Path::new("/photos/sub/c.jpg"));
        assert_eq!(file.document["extra"], 1);
        assert!(!file.document.contains_key("images"));
        assert_eq!(file.replaced_classifier, None);
    }

    #[test]
    fn what_is_not_the_format_is_refused_with_its_json_path() {
        let cases = [
            (json!([1, 2]), "the document: expected a JSON object"),
            (
                json!({"detection_categories": {"1": "animal"}}),
                "images: expected a list of images, found nothing",
            ),
            (
                json!({"images": []}),
                "detection_categories: expected an object",
            ),
            (
                json!({"detection_categories": {"1": "person"}, "images": []}),
                "expected a category named \"animal\"",
            ),
            (
                json!({"detection_categories": {"1": "animal"}, "images": [{"path": "a.jpg"}]}),
                "images[0].file: expected a path (a string), found nothing",
            ),
            (
                with_detections(json!({"category": "1"})),
                "images[0].detections: expected a list of detections, or null, found an object",
            ),
            (
                with_detections(json!([{"category": 1, "conf": 0.5, "bbox": [0, 0, 1, 1]}])),
                "images[0].detections[0].category: expected a detection category id",
            ),
            (
                with_detections(json!([{"category": "1", "conf": "high", "bbox": [0, 0, 1, 1]}])),
                "images[0].detections[0].conf: expected a confidence (a number), found a string",
            ),
            (
                with_detections(json!([{"category": "1", "conf": 0.5, "bbox": [0.1, 0.2]}])),
                "images[0].detections[0].bbox: expected 4 numbers [x, y, width, height] \
                 (fractions of the image), found a list of 2 [0.1,0.2]",
            ),
            (
                // A person's box is checked too: the document is not the format.
                with_detections(json!([{"category": "2", "conf": 0.5, "bbox": "0 0 1 1"}])),
                "images[0].detections[0].bbox: expected 4 numbers",
            ),
        ];
        for (doc, expected) in cases {
            let message = error(doc);
            assert!(message.contains(expected), "{message}\n  lacks: {expected}");
        }
    }

    #[test]
    fn earlier_classifications_are_removed_and_reported() {
        let mut doc = with_detections(json!([{
            "category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2],
            "classifications": [["3", 0.9]], "raw_classifications": [["3", 0.9]],
        }]));
        doc["info"]["classifier"] = json!("speciesnet");
        doc["classification_categories"] = json!({"3": "fox"});
        let file = parse_json(doc).unwrap();
        assert_eq!(file.replaced_classifier.as_deref(), Some("speciesnet"));
        let detection = &file.images[0].entry["detections"][0];
        assert_eq!(detection.get("classifications"), None);
        assert_eq!(detection.get("raw_classifications"), None);
        assert_eq!(detection["conf"], 0.9);
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let found = describe(Some(&json!({"key": "x".repeat(500)})));
        assert!(found.starts_with("an object {\"key\":\"xxx"), "{found}");
        assert!(found.chars().count() < 80, "{found}");
    }

    #[test]
    fn the_image_folder_defaults_to_the_folder_of_the_file() {
        assert_eq!(folder_of(Path::new("md.json")), Path::new("."));
        assert_eq!(folder_of(Path::new("/data/md.json")), Path::new("/data"));
    }
}
