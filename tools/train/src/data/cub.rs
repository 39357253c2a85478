//! CUB-200-2011 in its own distribution layout:
//!
//! ```text
//! ROOT/images.txt              "<image id> <relative path under images/>"
//! ROOT/image_class_labels.txt  "<image id> <class id, 1-based>"
//! ROOT/train_test_split.txt    "<image id> <1 = train | 0 = test>"
//! ROOT/classes.txt             "<class id> 001.Black_footed_Albatross"
//! ROOT/images/<relative path>
//! ```
//!
//! Samples come in `images.txt` order; the label is the class id minus one; class names lose their
//! numeric prefix (`"001.Black_footed_Albatross"` → `"Black_footed_Albatross"`). Every metadata
//! error names the file and the 1-based line. Image files are not opened here.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::path::Path;

use super::dataset::{DataError, Dataset, Sample};

/// The image list file.
pub const IMAGES_FILE: &str = "images.txt";
/// The per-image class file.
pub const LABELS_FILE: &str = "image_class_labels.txt";
/// The per-image train/test flag file.
pub const SPLIT_FILE: &str = "train_test_split.txt";
/// The class list file.
pub const CLASSES_FILE: &str = "classes.txt";
/// The folder holding the images.
pub const IMAGES_DIR: &str = "images";

const EXPECTED_ROOT: &str = "the CUB_200_2011 folder holding images.txt, \
    image_class_labels.txt, train_test_split.txt, classes.txt and images/";

/// Which official split to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// `is_training_image == 1` (5,994 images in CUB-200-2011).
    Train,
    /// `is_training_image == 0` (5,794 images in CUB-200-2011).
    Test,
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

/// True when `root` holds the CUB metadata files (`images.txt` and `classes.txt`).
pub fn is_cub_root(root: &Path) -> bool {
    root.join(IMAGES_FILE).is_file() && root.join(CLASSES_FILE).is_file()
}

/// Loads one split of CUB-200-2011. The dataset is named `"<root name>/<split>"`.
pub fn load_cub(root: &Path, split: Split) -> Result<Dataset, DataError> {
    check_root(root)?;
    let classes = read_classes(&root.join(CLASSES_FILE))?;
    let images_path = root.join(IMAGES_FILE);
    let images = read_images(&images_path)?;
    let index: HashMap<u64, usize> = images
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let labels = read_per_image(&root.join(LABELS_FILE), &images_path, &index, |f, l| {
        parse_class_id(f, l, classes.len())
    })?;
    let flags = read_per_image(
        &root.join(SPLIT_FILE),
        &images_path,
        &index,
        parse_split_flag,
    )?;

    let image_dir = root.join(IMAGES_DIR);
    let wanted = split == Split::Train;
    let samples = images
        .iter()
        .zip(labels.iter().zip(&flags))
        .filter(|(_, (_, &is_train))| is_train == wanted)
        .map(|((_, rel), (&label, _))| Sample {
            path: image_dir.join(rel),
            label,
            region: None,
        })
        .collect();
    let name = format!("{}/{split}", folder_name(root));
    Dataset::new(name, classes, samples)
}

fn check_root(root: &Path) -> Result<(), DataError> {
    if !root.exists() {
        return Err(DataError::MissingRoot {
            path: root.to_path_buf(),
            expected: EXPECTED_ROOT,
        });
    }
    if !root.is_dir() {
        return Err(DataError::NotADirectory {
            path: root.to_path_buf(),
            expected: EXPECTED_ROOT,
        });
    }
    Ok(())
}

/// One parsed line: 1-based line number, first field, rest of the line (trimmed).
struct Line<'a> {
    number: usize,
    key: &'a str,
    value: &'a str,
    raw: &'a str,
}

fn read_text(file: &Path) -> Result<String, DataError> {
    fs::read_to_string(file).map_err(|source| DataError::Io {
        path: file.to_path_buf(),
        source,
    })
}

/// Non-blank lines of `text` split into `<key> <value>`; `expected` describes the line shape.
fn pairs<'a>(
    file: &Path,
    text: &'a str,
    expected: &'static str,
) -> Result<Vec<Line<'a>>, DataError> {
    text.lines()
        .enumerate()
        .filter(|(_, raw)| !raw.trim().is_empty())
        .map(|(i, raw)| {
            let trimmed = raw.trim();
            match trimmed.split_once(char::is_whitespace) {
                Some((key, value)) if !value.trim().is_empty() => Ok(Line {
                    number: i + 1,
                    key,
                    value: value.trim(),
                    raw,
                }),
                _ => Err(malformed(file, i + 1, raw, expected)),
            }
        })
        .collect()
}

fn malformed(file: &Path, line: usize, raw: &str, expected: &'static str) -> DataError {
    DataError::MalformedLine {
        file: file.to_path_buf(),
        line,
        content: raw.to_string(),
        expected,
    }
}

fn parse_id(file: &Path, line: &Line<'_>, expected: &'static str) -> Result<u64, DataError> {
    line.key
        .parse()
        .map_err(|_| malformed(file, line.number, line.raw, expected))
}

/// `classes.txt`: ids must be 1, 2, … in order; names lose their `NNN.` prefix.
fn read_classes(file: &Path) -> Result<Vec<String>, DataError> {
    const EXPECTED: &str = "\"<class id> <NNN.Class_name>\"";
    let text = read_text(file)?;
    let mut names = Vec::new();
    for line in pairs(file, &text, EXPECTED)? {
        let id = parse_id(file, &line, EXPECTED)?;
        let want = names.len() as u64 + 1;
        if id != want {
            return Err(DataError::BadClassId {
                file: file.to_path_buf(),
                line: line.number,
                class_id: line.key.to_string(),
                expected: format!("class ids 1, 2, ... in order; this line should have id {want}"),
            });
        }
        names.push(strip_numeric_prefix(line.value).to_string());
    }
    Ok(names)
}

/// `"001.Black_footed_Albatross"` → `"Black_footed_Albatross"`; other names are kept.
fn strip_numeric_prefix(name: &str) -> &str {
    match name.split_once('.') {
        Some((prefix, rest))
            if !prefix.is_empty()
                && !rest.is_empty()
                && prefix.bytes().all(|b| b.is_ascii_digit()) =>
        {
            rest
        }
        _ => name,
    }
}

/// `images.txt`: `(id, relative path)` in file order, ids unique.
fn read_images(file: &Path) -> Result<Vec<(u64, String)>, DataError> {
    const EXPECTED: &str = "\"<image id> <relative image path>\"";
    let text = read_text(file)?;
    let mut seen = HashMap::new();
    let mut images = Vec::new();
    for line in pairs(file, &text, EXPECTED)? {
        let id = parse_id(file, &line, EXPECTED)?;
        if seen.insert(id, line.number).is_some() {
            return Err(DataError::DuplicateImageId {
                file: file.to_path_buf(),
                line: line.number,
                id: line.key.to_string(),
            });
        }
        images.push((id, line.value.to_string()));
    }
    Ok(images)
}

/// A per-image file (`<image id> <value>`), returned in `images.txt` order; `parse` turns a
/// line's value into `T`.
fn read_per_image<T: Copy>(
    file: &Path,
    images_file: &Path,
    index: &HashMap<u64, usize>,
    parse: impl Fn(&Path, &Line<'_>) -> Result<T, DataError>,
) -> Result<Vec<T>, DataError> {
    const EXPECTED: &str = "\"<image id> <value>\"";
    let text = read_text(file)?;
    let mut values: Vec<Option<T>> = vec![None; index.len()];
    for line in pairs(file, &text, EXPECTED)? {
        let id = parse_id(file, &line, EXPECTED)?;
        let Some(&slot) = index.get(&id) else {
            return Err(DataError::UnknownImageId {
                file: file.to_path_buf(),
                line: line.number,
                id: line.key.to_string(),
                listed_in: images_file.to_path_buf(),
            });
        };
        if values[slot].replace(parse(file, &line)?).is_some() {
            return Err(DataError::DuplicateImageId {
                file: file.to_path_buf(),
                line: line.number,
                id: line.key.to_string(),
            });
        }
    }
    complete(values, index, file, images_file)
}

/// Every image listed in `images.txt` must have a value.
fn complete<T>(
    values: Vec<Option<T>>,
    index: &HashMap<u64, usize>,
    file: &Path,
    images_file: &Path,
) -> Result<Vec<T>, DataError> {
    let missing = values.iter().position(Option::is_none);
    if let Some(slot) = missing {
        let id = index
            .iter()
            .find(|(_, &s)| s == slot)
            .map(|(id, _)| id.to_string())
            .unwrap_or_default();
        return Err(DataError::MissingImageEntry {
            file: file.to_path_buf(),
            id,
            listed_in: images_file.to_path_buf(),
        });
    }
    Ok(values.into_iter().flatten().collect())
}

/// A 1-based class id in `1..=num_classes`, returned 0-based.
fn parse_class_id(file: &Path, line: &Line<'_>, num_classes: usize) -> Result<usize, DataError> {
    match line.value.parse::<usize>() {
        Ok(id) if (1..=num_classes).contains(&id) => Ok(id - 1),
        _ => Err(DataError::BadClassId {
            file: file.to_path_buf(),
            line: line.number,
            class_id: line.value.to_string(),
            expected: format!("an integer between 1 and {num_classes} (the ids of classes.txt)"),
        }),
    }
}

/// `1` (train) → true, `0` (test) → false.
fn parse_split_flag(file: &Path, line: &Line<'_>) -> Result<bool, DataError> {
    match line.value {
        "1" => Ok(true),
        "0" => Ok(false),
        _ => Err(malformed(
            file,
            line.number,
            line.raw,
            "\"<image id> <1 (train) | 0 (test)>\"",
        )),
    }
}

fn folder_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_images::write_bytes;

    /// A 3-class, 5-image CUB tree (images are not written: the loader does not open them).
    fn write_cub(root: &Path) {
        let w = |name: &str, text: &str| write_bytes(&root.join(name), text.as_bytes());
        w(
            CLASSES_FILE,
            "1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n3 003.Sooty_Albatross\n",
        );
        w(
            IMAGES_FILE,
            "1 001.Black_footed_Albatross/a.jpg\n2 001.Black_footed_Albatross/b.jpg\n\
             3 002.Laysan_Albatross/c.jpg\n4 003.Sooty_Albatross/d.jpg\n5 003.Sooty_Albatross/e.jpg\n",
        );
        w(LABELS_FILE, "1 1\n2 1\n3 2\n4 3\n5 3\n");
        w(SPLIT_FILE, "1 1\n2 0\n3 1\n4 1\n5 0\n");
    }

    #[test]
    fn loads_train_and_test_splits() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("CUB_200_2011");
        write_cub(&root);
        assert!(is_cub_root(&root));

        let train = load_cub(&root, Split::Train).unwrap();
        assert_eq!(train.name, "CUB_200_2011/train");
        assert_eq!(
            train.classes,
            vec![
                "Black_footed_Albatross",
                "Laysan_Albatross",
                "Sooty_Albatross"
            ]
        );
        let got: Vec<_> = train
            .samples
            .iter()
            .map(|s| (s.path.clone(), s.label))
            .collect();
        let img = root.join(IMAGES_DIR);
        assert_eq!(
            got,
            vec![
                (img.join("001.Black_footed_Albatross/a.jpg"), 0),
                (img.join("002.Laysan_Albatross/c.jpg"), 1),
                (img.join("003.Sooty_Albatross/d.jpg"), 2),
            ]
        );
        let test = load_cub(&root, Split::Test).unwrap();
        assert_eq!(test.class_counts(), vec![1, 0, 1]);
    }

    #[test]
    fn strips_only_numeric_prefixes() {
        assert_eq!(
            strip_numeric_prefix("001.Black_footed_Albatross"),
            "Black_footed_Albatross"
        );
        assert_eq!(strip_numeric_prefix("Mr.Bird"), "Mr.Bird");
        assert_eq!(strip_numeric_prefix("Plain"), "Plain");
    }

    #[test]
    fn missing_root_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_cub(&dir.path().join("absent"), Split::Train).unwrap_err();
        assert!(matches!(err, DataError::MissingRoot { .. }), "{err}");
        assert!(err.to_string().contains("absent"));
    }

    #[test]
    fn malformed_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        write_cub(dir.path());
        write_bytes(&dir.path().join(LABELS_FILE), b"1 1\n2 1\n\n3\n4 3\n5 3\n");
        let err = load_cub(dir.path(), Split::Train).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, DataError::MalformedLine { line: 4, .. }),
            "{msg}"
        );
        assert!(msg.contains("image_class_labels.txt:4"), "{msg}");
    }

    #[test]
    fn unknown_image_id_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        write_cub(dir.path());
        write_bytes(
            &dir.path().join(SPLIT_FILE),
            b"1 1\n2 0\n3 1\n4 1\n5 0\n9 1\n",
        );
        let err = load_cub(dir.path(), Split::Train).unwrap_err();
        assert!(
            matches!(err, DataError::UnknownImageId { line: 6, ref id, .. } if id == "9"),
            "{err}"
        );
        assert!(err.to_string().contains("train_test_split.txt:6"), "{err}");
    }

    #[test]
    fn bad_split_flag_is_malformed() {
        let dir = tempfile::tempdir().unwrap();
        write_cub(dir.path());
        write_bytes(&dir.path().join(SPLIT_FILE), b"1 1\n2 yes\n3 1\n4 1\n5 0\n");
        let err = load_cub(dir.path(), Split::Test).unwrap_err();
        assert!(
            matches!(err, DataError::MalformedLine { line: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn class_id_out_of_range_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write_cub(dir.path());
        write_bytes(&dir.path().join(LABELS_FILE), b"1 1\n2 1\n3 4\n4 3\n5 3\n");
        let err = load_cub(dir.path(), Split::Train).unwrap_err();
        assert!(
            matches!(err, DataError::BadClassId { line: 3, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("between 1 and 3"), "{err}");
    }

    #[test]
    fn image_without_label_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write_cub(dir.path());
        write_bytes(&dir.path().join(LABELS_FILE), b"1 1\n2 1\n3 2\n5 3\n");
        let err = load_cub(dir.path(), Split::Train).unwrap_err();
        assert!(
            matches!(err, DataError::MissingImageEntry { ref id, .. } if id == "4"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_image_id_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write_cub(dir.path());
        write_bytes(
            &dir.path().join(IMAGES_FILE),
            b"1 a.jpg\n2 b.jpg\n2 c.jpg\n",
        );
        let err = load_cub(dir.path(), Split::Train).unwrap_err();
        assert!(
            matches!(err, DataError::DuplicateImageId { line: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn out_of_order_class_ids_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write_cub(dir.path());
        write_bytes(&dir.path().join(CLASSES_FILE), b"1 001.A\n3 003.C\n");
        let err = load_cub(dir.path(), Split::Train).unwrap_err();
        assert!(
            matches!(err, DataError::BadClassId { line: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn missing_metadata_file_names_it() {
        let dir = tempfile::tempdir().unwrap();
        write_cub(dir.path());
        fs::remove_file(dir.path().join(SPLIT_FILE)).unwrap();
        let err = load_cub(dir.path(), Split::Train).unwrap_err();
        assert!(err.to_string().contains(SPLIT_FILE), "{err}");
    }
}
