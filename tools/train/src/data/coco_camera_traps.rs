//! COCO Camera Traps (the LILA BC metadata format) as a classification dataset: image-level
//! ([`load_coco_camera_traps`]) or one crop per box ([`load_coco_camera_traps_boxes`]).
//!
//! The JSON holds `images` (`{id, file_name, width, height, ...}`, the id a string or an
//! integer), `annotations` (`{image_id, category_id, bbox, ...}`, `bbox` `[x, y, width,
//! height]` in pixels) and `categories` (`{id, name}`). Sequences are ignored.
//!
//! Image level: an image's label is the category of its annotations; boxes are ignored.
//!
//! - An image whose annotations disagree on the category is skipped and counted
//!   ([`CocoSummary::conflicting`]); several annotations with the same category are fine.
//! - An image without annotation is skipped and counted ([`CocoSummary::no_annotation`]).
//! - An annotation whose image id is not listed is counted ([`CocoSummary::orphan_annotations`]).
//! - An annotation whose category id is not listed is an error: it cannot be labelled.
//!
//! Classes are the categories with at least one kept image, ordered by category id; samples keep
//! the order of `images`. Image files are not opened here.
//!
//! Boxes: every annotation with a `bbox` is a sample of its category whose region is that box
//! (the loader cuts it with the runtime's crop rule, as a device cuts a detection), placed by
//! its image's `width` and `height`; an annotation without one (an empty frame's) is a
//! whole-image sample when its image has no box. A box outside its image or without area is
//! an error naming the annotation.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs;
use std::path::Path;

use serde_json::Value;

use xrvlm_runtime::crop::NormalizedBox;

use super::dataset::{DataError, Dataset, Sample};

/// What [`load_coco_camera_traps`] kept and skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CocoSummary {
    /// Entries of `images`.
    pub images: usize,
    /// Entries of `annotations`.
    pub annotations: usize,
    /// Images kept as samples.
    pub kept: usize,
    /// Images skipped because they have no annotation.
    pub no_annotation: usize,
    /// Images skipped because their annotations name more than one category.
    pub conflicting: usize,
    /// Annotations whose `image_id` is not in `images` (ignored).
    pub orphan_annotations: usize,
    /// Names of listed categories that no kept image uses (not made into classes).
    pub unused_categories: Vec<String>,
}

impl fmt::Display for CocoSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} images kept; skipped {} without annotation and {} with conflicting \
             categories; {} of {} annotations refer to unknown images; {} unused categories",
            self.kept,
            self.images,
            self.no_annotation,
            self.conflicting,
            self.orphan_annotations,
            self.annotations,
            self.unused_categories.len()
        )
    }
}

/// Loads a COCO Camera Traps JSON; image paths are `image_root/<file_name>`. The dataset is named
/// after the JSON file's stem.
pub fn load_coco_camera_traps(
    json: &Path,
    image_root: &Path,
) -> Result<(Dataset, CocoSummary), DataError> {
    let doc = read_document(json)?;
    let j = JsonFile { path: json };
    let categories = read_categories(&j, j.array(&doc, "categories")?)?;
    let images = read_images(&j, j.array(&doc, "images")?)?;
    let annotations = j.array(&doc, "annotations")?;
    let (status, orphans) = label_images(&j, annotations, &images, &categories)?;
    build(
        &j,
        image_root,
        &images,
        &status,
        &categories,
        orphans,
        annotations.len(),
    )
}

/// Loads a COCO Camera Traps JSON as one sample per box (see the module doc); image paths are
/// `image_root/<file_name>`. The dataset is named after the JSON file's stem.
pub fn load_coco_camera_traps_boxes(
    json: &Path,
    image_root: &Path,
) -> Result<(Dataset, CocoSummary), DataError> {
    let doc = read_document(json)?;
    let j = JsonFile { path: json };
    let categories = read_categories(&j, j.array(&doc, "categories")?)?;
    let images = read_images(&j, j.array(&doc, "images")?)?;
    let annotations = j.array(&doc, "annotations")?;
    let index = image_index(&images);
    let mut boxed = vec![false; images.len()];
    let mut annotated = vec![false; images.len()];
    // (image, category, region) per kept annotation, in annotation order.
    let mut found = Vec::new();
    let mut orphans = 0;
    for (i, ann) in annotations.iter().enumerate() {
        let at = format!("annotations[{i}]");
        let (image_id, category) = j.annotation(ann, &at, &categories)?;
        let Some(&slot) = index.get(image_id.as_str()) else {
            orphans += 1;
            continue;
        };
        annotated[slot] = true;
        let region = match ann.get("bbox") {
            None | Some(Value::Null) => None,
            Some(b) => Some(j.pixel_box(b, &join(&at, "bbox"), &images[slot], slot)?),
        };
        boxed[slot] |= region.is_some();
        found.push((slot, category, region));
    }
    // An unboxed annotation of an image that has boxes adds nothing the boxes do not say.
    found.retain(|&(slot, _, region)| region.is_some() || !boxed[slot]);
    found.dedup();
    let used: BTreeSet<i64> = found.iter().map(|&(_, c, _)| c).collect();
    let label_of: BTreeMap<i64, usize> = used.iter().enumerate().map(|(l, &c)| (c, l)).collect();
    let samples: Vec<Sample> = found
        .iter()
        .map(|&(slot, category, region)| Sample {
            path: image_root.join(&images[slot].file_name),
            label: label_of[&category],
            region,
        })
        .collect();
    if samples.is_empty() {
        return Err(DataError::NoSamples {
            path: j.path.to_path_buf(),
        });
    }
    let summary = CocoSummary {
        images: images.len(),
        annotations: annotations.len(),
        kept: samples.len(),
        no_annotation: annotated.iter().filter(|&&a| !a).count(),
        conflicting: 0,
        orphan_annotations: orphans,
        unused_categories: categories
            .iter()
            .filter(|(id, _)| !label_of.contains_key(id))
            .map(|(_, name)| name.clone())
            .collect(),
    };
    let classes = label_of
        .keys()
        .filter_map(|c| categories.get(c).cloned())
        .collect();
    Ok((Dataset::new(dataset_name(&j), classes, samples)?, summary))
}

/// The dataset's name: the JSON file's stem.
fn dataset_name(j: &JsonFile<'_>) -> String {
    j.path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "coco-camera-traps".to_string())
}

/// The parsed JSON of `json`.
fn read_document(json: &Path) -> Result<Value, DataError> {
    let bytes = fs::read(json).map_err(|source| DataError::Io {
        path: json.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| DataError::Json {
        path: json.to_path_buf(),
        source,
    })
}

/// Image id → position in `images`.
fn image_index(images: &[Image]) -> HashMap<&str, usize> {
    images
        .iter()
        .enumerate()
        .map(|(i, img)| (img.id.as_str(), i))
        .collect()
}

/// The JSON file being read, for error messages.
struct JsonFile<'p> {
    path: &'p Path,
}

impl JsonFile<'_> {
    fn error(&self, field: impl Into<String>, problem: impl Into<String>) -> DataError {
        DataError::JsonField {
            path: self.path.to_path_buf(),
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// `obj[key]`, which must exist; `at` is the JSON path of `obj`.
    fn get<'v>(
        &self,
        obj: &'v Value,
        at: &str,
        key: &str,
        want: &str,
    ) -> Result<&'v Value, DataError> {
        obj.get(key)
            .ok_or_else(|| self.error(join(at, key), format!("is missing; expected {want}")))
    }

    /// The top-level array `doc[key]`.
    fn array<'v>(&self, doc: &'v Value, key: &str) -> Result<&'v [Value], DataError> {
        let v = self.get(doc, "", key, "an array")?;
        v.as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.error(key, format!("is {}; expected an array", kind(v))))
    }

    fn string(&self, obj: &Value, at: &str, key: &str) -> Result<String, DataError> {
        let v = self.get(obj, at, key, "a string")?;
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| self.error(join(at, key), format!("is {}; expected a string", kind(v))))
    }

    /// An annotation's image id and category, which must be listed in `categories`; `at` is
    /// the annotation's JSON path.
    fn annotation(
        &self,
        ann: &Value,
        at: &str,
        categories: &BTreeMap<i64, String>,
    ) -> Result<(String, i64), DataError> {
        let image_id = self.id(ann, at, "image_id")?;
        let category = self.integer(ann, at, "category_id")?;
        if !categories.contains_key(&category) {
            return Err(DataError::UnknownCategory {
                path: self.path.to_path_buf(),
                field: join(at, "category_id"),
                id: category.to_string(),
            });
        }
        Ok((image_id, category))
    }

    /// A `bbox` `[x, y, width, height]` in pixels of `image` (`images[slot]`), as fractions of
    /// it; `at` is the bbox's JSON path.
    fn pixel_box(
        &self,
        bbox: &Value,
        at: &str,
        image: &Image,
        slot: usize,
    ) -> Result<NormalizedBox, DataError> {
        let numbers: Option<Vec<f64>> = bbox
            .as_array()
            .filter(|a| a.len() == 4)
            .map(|a| a.iter().filter_map(Value::as_f64).collect());
        let Some([x, y, w, h]) = numbers.and_then(|n| <[f64; 4]>::try_from(n).ok()) else {
            return Err(self.error(
                at,
                format!(
                    "is {}; expected [x, y, width, height] in pixels",
                    kind(bbox)
                ),
            ));
        };
        let (Some(width), Some(height)) = (image.width, image.height) else {
            return Err(self.error(
                format!("images[{slot}].width"),
                "is missing or not a positive integer; expected the image's width and height \
                 in pixels, which place its boxes",
            ));
        };
        let (width, height) = (f64::from(width), f64::from(height));
        NormalizedBox::new(x / width, y / height, w / width, h / height)
            .map_err(|e| self.error(at, format!("{e} (the image is {width}x{height} pixels)")))
    }

    fn integer(&self, obj: &Value, at: &str, key: &str) -> Result<i64, DataError> {
        let v = self.get(obj, at, key, "an integer")?;
        v.as_i64().ok_or_else(|| {
            self.error(
                join(at, key),
                format!("is {}; expected an integer", kind(v)),
            )
        })
    }

    /// An image id: a string, or an integer (kept as its decimal text).
    fn id(&self, obj: &Value, at: &str, key: &str) -> Result<String, DataError> {
        let v = self.get(obj, at, key, "a string or an integer")?;
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
            _ => Err(self.error(
                join(at, key),
                format!("is {}; expected a string or an integer", kind(v)),
            )),
        }
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Category id → name, ordered by id.
fn read_categories(j: &JsonFile<'_>, items: &[Value]) -> Result<BTreeMap<i64, String>, DataError> {
    let mut out = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("categories[{i}]");
        let id = j.integer(item, &at, "id")?;
        let name = j.string(item, &at, "name")?;
        if out.insert(id, name).is_some() {
            return Err(j.error(
                join(&at, "id"),
                format!("repeats category id {id}; expected unique ids"),
            ));
        }
    }
    Ok(out)
}

/// One listed image.
struct Image {
    id: String,
    file_name: String,
    /// Its size in pixels, where `images` gives it.
    width: Option<u32>,
    height: Option<u32>,
}

fn read_images(j: &JsonFile<'_>, items: &[Value]) -> Result<Vec<Image>, DataError> {
    let mut seen = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("images[{i}]");
        let id = j.id(item, &at, "id")?;
        let file_name = j.string(item, &at, "file_name")?;
        if let Some(first) = seen.insert(id.clone(), i) {
            return Err(j.error(
                join(&at, "id"),
                format!("repeats image id {id:?} of images[{first}]; expected unique ids"),
            ));
        }
        let size = |key| {
            item.get(key)
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok())
                .filter(|&v| v > 0)
        };
        out.push(Image {
            id,
            file_name,
            width: size("width"),
            height: size("height"),
        });
    }
    Ok(out)
}

/// The category evidence gathered for one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageLabel {
    Unannotated,
    Category(i64),
    Conflicting,
}

impl ImageLabel {
    fn add(self, category: i64) -> Self {
        match self {
            ImageLabel::Unannotated => ImageLabel::Category(category),
            ImageLabel::Category(c) if c == category => self,
            _ => ImageLabel::Conflicting,
        }
    }
}

/// Per-image labels (in `images` order) and the number of orphan annotations.
fn label_images(
    j: &JsonFile<'_>,
    annotations: &[Value],
    images: &[Image],
    categories: &BTreeMap<i64, String>,
) -> Result<(Vec<ImageLabel>, usize), DataError> {
    let index = image_index(images);
    let mut status = vec![ImageLabel::Unannotated; images.len()];
    let mut orphans = 0;
    for (i, ann) in annotations.iter().enumerate() {
        let at = format!("annotations[{i}]");
        let (image_id, category) = j.annotation(ann, &at, categories)?;
        match index.get(image_id.as_str()) {
            Some(&slot) => status[slot] = status[slot].add(category),
            None => orphans += 1,
        }
    }
    Ok((status, orphans))
}

/// Turns the per-image labels into the dataset and its summary.
fn build(
    j: &JsonFile<'_>,
    image_root: &Path,
    images: &[Image],
    status: &[ImageLabel],
    categories: &BTreeMap<i64, String>,
    orphan_annotations: usize,
    annotations: usize,
) -> Result<(Dataset, CocoSummary), DataError> {
    let used: BTreeSet<i64> = status
        .iter()
        .filter_map(|s| match s {
            ImageLabel::Category(c) => Some(*c),
            _ => None,
        })
        .collect();
    let label_of: BTreeMap<i64, usize> = used.iter().enumerate().map(|(l, &c)| (c, l)).collect();
    let samples: Vec<Sample> = images
        .iter()
        .zip(status)
        .filter_map(|(img, s)| match s {
            ImageLabel::Category(c) => label_of.get(c).map(|&label| Sample {
                path: image_root.join(&img.file_name),
                label,
                region: None,
            }),
            _ => None,
        })
        .collect();
    if samples.is_empty() {
        return Err(DataError::NoSamples {
            path: j.path.to_path_buf(),
        });
    }
    let classes = label_of
        .keys()
        .filter_map(|c| categories.get(c).cloned())
        .collect();
    let summary = CocoSummary {
        images: images.len(),
        annotations,
        kept: samples.len(),
        no_annotation: count(status, ImageLabel::Unannotated),
        conflicting: count(status, ImageLabel::Conflicting),
        orphan_annotations,
        unused_categories: categories
            .iter()
            .filter(|(id, _)| !label_of.contains_key(id))
            .map(|(_, name)| name.clone())
            .collect(),
    };
    Ok((Dataset::new(dataset_name(j), classes, samples)?, summary))
}

fn count(status: &[ImageLabel], which: ImageLabel) -> usize {
    status.iter().filter(|&&s| s == which).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_images::write_bytes;

    fn write_json(dir: &Path, value: &Value) -> std::path::PathBuf {
        let path = dir.join("cct.json");
        write_bytes(
            &path,
            serde_json::to_string_pretty(value).unwrap().as_bytes(),
        );
        path
    }

    fn sample_doc() -> Value {
        serde_json::json!({
            "info": {"version": "1.0"},
            "images": [
                {"id": "a", "file_name": "loc1/a.jpg", "width": 4, "height": 4},
                {"id": 7, "file_name": "loc1/b.jpg"},
                {"id": "c", "file_name": "loc2/c.jpg"},
                {"id": "d", "file_name": "loc2/d.jpg"},
                {"id": "e", "file_name": "loc2/e.jpg"}
            ],
            "annotations": [
                {"id": "1", "image_id": "a", "category_id": 30},
                {"id": "2", "image_id": 7, "category_id": 10},
                {"id": "3", "image_id": 7, "category_id": 10},
                {"id": "4", "image_id": "c", "category_id": 10},
                {"id": "5", "image_id": "c", "category_id": 30},
                {"id": "6", "image_id": "ghost", "category_id": 30}
            ],
            "categories": [
                {"id": 30, "name": "deer"},
                {"id": 10, "name": "bobcat"},
                {"id": 20, "name": "unused"}
            ]
        })
    }

    #[test]
    fn loads_image_level_labels_ordered_by_category_id() {
        let dir = tempfile::tempdir().unwrap();
        let json = write_json(dir.path(), &sample_doc());
        let root = dir.path().join("imgs");
        let (ds, summary) = load_coco_camera_traps(&json, &root).unwrap();
        assert_eq!(ds.name, "cct");
        assert_eq!(ds.classes, vec!["bobcat", "deer"]);
        let got: Vec<_> = ds
            .samples
            .iter()
            .map(|s| (s.path.clone(), s.label))
            .collect();
        assert_eq!(
            got,
            vec![(root.join("loc1/a.jpg"), 1), (root.join("loc1/b.jpg"), 0)]
        );
        assert_eq!(
            summary,
            CocoSummary {
                images: 5,
                annotations: 6,
                kept: 2,
                no_annotation: 2,
                conflicting: 1,
                orphan_annotations: 1,
                unused_categories: vec!["unused".into()],
            }
        );
        assert!(summary.to_string().contains("2 of 5 images kept"));
    }

    #[test]
    fn boxes_are_samples_of_their_category_placed_by_the_image_size() {
        let dir = tempfile::tempdir().unwrap();
        let doc = serde_json::json!({
            "images": [
                {"id": "a", "file_name": "a.jpg", "width": 200, "height": 100},
                {"id": "b", "file_name": "b.jpg", "width": 50, "height": 50},
                {"id": "c", "file_name": "c.jpg"}
            ],
            "annotations": [
                {"id": 1, "image_id": "a", "category_id": 3, "bbox": [20, 10, 50, 40]},
                {"id": 2, "image_id": "a", "category_id": 5, "bbox": [100, 50, 100, 50]},
                {"id": 3, "image_id": "b", "category_id": 0},
                {"id": 4, "image_id": "ghost", "category_id": 3, "bbox": [0, 0, 1, 1]}
            ],
            "categories": [{"id": 0, "name": "empty"}, {"id": 3, "name": "wren"},
                           {"id": 5, "name": "finch"}, {"id": 9, "name": "unused"}]
        });
        let json = write_json(dir.path(), &doc);
        let (ds, summary) = load_coco_camera_traps_boxes(&json, Path::new("r")).unwrap();
        assert_eq!(ds.classes, ["empty", "wren", "finch"]);
        let got: Vec<_> = ds
            .samples
            .iter()
            .map(|s| (s.path.clone(), s.label, s.region.map(|r| r.to_array())))
            .collect();
        assert_eq!(
            got,
            [
                ("r/a.jpg".into(), 1, Some([0.1, 0.1, 0.25, 0.4])),
                ("r/a.jpg".into(), 2, Some([0.5, 0.5, 0.5, 0.5])),
                ("r/b.jpg".into(), 0, None),
            ]
        );
        assert_eq!(
            (
                summary.kept,
                summary.no_annotation,
                summary.orphan_annotations
            ),
            (3, 1, 1)
        );
        assert_eq!(summary.unused_categories, ["unused"]);
    }

    #[test]
    fn a_bad_box_names_the_annotation_and_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let doc = |bbox: Value, size: bool| {
            let image = match size {
                true => {
                    serde_json::json!({"id": "a", "file_name": "a.jpg", "width": 100, "height": 100})
                }
                false => serde_json::json!({"id": "a", "file_name": "a.jpg"}),
            };
            serde_json::json!({
                "images": [image],
                "annotations": [{"id": 1, "image_id": "a", "category_id": 1, "bbox": bbox}],
                "categories": [{"id": 1, "name": "wren"}]
            })
        };
        let err = |bbox, size| {
            let json = write_json(dir.path(), &doc(bbox, size));
            load_coco_camera_traps_boxes(&json, dir.path())
                .unwrap_err()
                .to_string()
        };
        let outside = err(serde_json::json!([90, 10, 20, 20]), true);
        assert!(
            outside.contains("annotations[0].bbox") && outside.contains("outside the image"),
            "{outside}"
        );
        let empty = err(serde_json::json!([10, 10, 0, 20]), true);
        assert!(empty.contains("no area"), "{empty}");
        let short = err(serde_json::json!([10, 10, 20]), true);
        assert!(short.contains("expected [x, y, width, height]"), "{short}");
        let no_size = err(serde_json::json!([10, 10, 20, 20]), false);
        assert!(no_size.contains("images[0].width"), "{no_size}");
    }

    #[test]
    fn missing_field_names_json_path() {
        let dir = tempfile::tempdir().unwrap();
        let mut doc = sample_doc();
        doc["images"][2]
            .as_object_mut()
            .unwrap()
            .remove("file_name");
        let json = write_json(dir.path(), &doc);
        let err = load_coco_camera_traps(&json, dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("images[2].file_name") && msg.contains("missing"),
            "{msg}"
        );
        assert!(msg.contains("cct.json"), "{msg}");
    }

    #[test]
    fn wrong_type_names_field_and_expectation() {
        let dir = tempfile::tempdir().unwrap();
        let mut doc = sample_doc();
        doc["annotations"][1]["category_id"] = serde_json::json!("ten");
        let json = write_json(dir.path(), &doc);
        let err = load_coco_camera_traps(&json, dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("annotations[1].category_id") && msg.contains("expected an integer"),
            "{msg}"
        );
    }

    #[test]
    fn missing_top_level_array_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let json = write_json(
            dir.path(),
            &serde_json::json!({"images": [], "categories": []}),
        );
        let err = load_coco_camera_traps(&json, dir.path()).unwrap_err();
        assert!(err.to_string().contains("annotations is missing"), "{err}");
    }

    #[test]
    fn unknown_category_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut doc = sample_doc();
        doc["annotations"][0]["category_id"] = serde_json::json!(99);
        let json = write_json(dir.path(), &doc);
        let err = load_coco_camera_traps(&json, dir.path()).unwrap_err();
        assert!(
            matches!(err, DataError::UnknownCategory { ref id, .. } if id == "99"),
            "{err}"
        );
    }

    #[test]
    fn invalid_json_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.json");
        write_bytes(&path, b"{\"images\": [");
        let err = load_coco_camera_traps(&path, dir.path()).unwrap_err();
        assert!(matches!(err, DataError::Json { .. }));
        assert!(err.to_string().contains("broken.json"), "{err}");
    }

    #[test]
    fn no_labelled_image_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let doc = serde_json::json!({
            "images": [{"id": 1, "file_name": "x.jpg"}],
            "annotations": [],
            "categories": [{"id": 0, "name": "empty"}]
        });
        let json = write_json(dir.path(), &doc);
        let err = load_coco_camera_traps(&json, dir.path()).unwrap_err();
        assert!(matches!(err, DataError::NoSamples { .. }), "{err}");
    }

    #[test]
    fn duplicate_image_id_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut doc = sample_doc();
        doc["images"][3]["id"] = serde_json::json!("a");
        let json = write_json(dir.path(), &doc);
        let err = load_coco_camera_traps(&json, dir.path()).unwrap_err();
        assert!(err.to_string().contains("images[3].id"), "{err}");
    }
}
