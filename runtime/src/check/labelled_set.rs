//! A labelled set of images: an ImageFolder tree (`ROOT/<label>/*.jpg`) or a JSONL file with
//! one `{"file": "...", "label": "..."}` per line (the `xrvlm classify` JSONL with a `label`
//! added works as is; relative files are relative to the JSONL's folder). Every label must be a
//! class of the bundle.

use std::fs;
use std::path::{Path, PathBuf};

use crate::image_io::has_image_extension;

/// One image and its true class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledImage {
    /// The image file.
    pub path: PathBuf,
    /// Index of its class in the bundle.
    pub class: usize,
}

/// Why a labelled set could not be read. Every variant names the file or folder.
#[derive(Debug, thiserror::Error)]
pub enum LabelledSetError {
    /// The set cannot be read.
    #[error("{}: {what}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A JSONL line that is not `{"file": ..., "label": ...}`.
    #[error("{}:{line}: {problem}", path.display())]
    Line {
        /// The JSONL file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// A label the bundle does not know.
    #[error("{}: label {label:?} is not a class of the bundle (its classes: {classes})", path.display())]
    UnknownLabel {
        /// The class folder or JSONL file.
        path: PathBuf,
        /// The label.
        label: String,
        /// The bundle's classes, comma-separated.
        classes: String,
    },
    /// No image at all.
    #[error("{}: no labelled images (expected ROOT/<label>/*.jpg|png|… or a JSONL of {{\"file\", \"label\"}})", path.display())]
    Empty {
        /// The set.
        path: PathBuf,
    },
}

/// Reads the set at `path` (a folder or a `.jsonl` file) against the bundle's `labels`.
pub fn read_labelled_set(
    path: &Path,
    labels: &[&str],
) -> Result<Vec<LabelledImage>, LabelledSetError> {
    let images = if path.is_dir() {
        image_folder(path, labels)?
    } else {
        jsonl(path, labels)?
    };
    if images.is_empty() {
        return Err(LabelledSetError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(images)
}

fn class_of(path: &Path, label: &str, labels: &[&str]) -> Result<usize, LabelledSetError> {
    labels
        .iter()
        .position(|l| *l == label)
        .ok_or_else(|| LabelledSetError::UnknownLabel {
            path: path.to_path_buf(),
            label: label.to_string(),
            classes: labels.join(", "),
        })
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, LabelledSetError> {
    let io = |source| LabelledSetError::Io {
        path: dir.to_path_buf(),
        what: "cannot list the folder",
        source,
    };
    let mut entries = fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    entries.sort();
    Ok(entries)
}

/// `ROOT/<label>/<image>`: one level of class folders; hidden folders are skipped.
fn image_folder(root: &Path, labels: &[&str]) -> Result<Vec<LabelledImage>, LabelledSetError> {
    let mut images = Vec::new();
    for class_dir in sorted_entries(root)? {
        let Some(label) = class_dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !class_dir.is_dir() || label.starts_with('.') {
            continue;
        }
        let class = class_of(&class_dir, label, labels)?;
        for path in sorted_entries(&class_dir)? {
            if has_image_extension(&path) {
                images.push(LabelledImage { path, class });
            }
        }
    }
    Ok(images)
}

#[derive(serde::Deserialize)]
struct Line {
    file: PathBuf,
    label: String,
}

fn jsonl(path: &Path, labels: &[&str]) -> Result<Vec<LabelledImage>, LabelledSetError> {
    let text = fs::read_to_string(path).map_err(|source| LabelledSetError::Io {
        path: path.to_path_buf(),
        what: "cannot read the labelled set",
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut images = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(line).map_err(|e| LabelledSetError::Line {
            path: path.to_path_buf(),
            line: n + 1,
            problem: format!("expected {{\"file\": ..., \"label\": ...}}: {e}"),
        })?;
        let class = class_of(path, &parsed.label, labels)?;
        images.push(LabelledImage {
            path: base.join(parsed.file),
            class,
        });
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABELS: [&str; 3] = ["blank", "finch", "wren"];

    #[test]
    fn reads_an_image_folder_in_order_and_skips_other_files() {
        let dir = tempfile::tempdir().unwrap();
        for (label, file) in [("wren", "b.jpg"), ("finch", "a.PNG"), ("wren", "a.jpg")] {
            fs::create_dir_all(dir.path().join(label)).unwrap();
            fs::write(dir.path().join(label).join(file), b"x").unwrap();
        }
        fs::write(dir.path().join("wren/notes.txt"), b"x").unwrap();
        let set = read_labelled_set(dir.path(), &LABELS).unwrap();
        let got: Vec<(String, usize)> = set
            .iter()
            .map(|i| {
                (
                    i.path.file_name().unwrap().to_string_lossy().into(),
                    i.class,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a.PNG".into(), 1),
                ("a.jpg".into(), 2),
                ("b.jpg".into(), 2)
            ]
        );
    }

    #[test]
    fn reads_jsonl_relative_to_its_folder_and_names_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("set.jsonl");
        fs::write(
            &path,
            "{\"file\":\"x/1.jpg\",\"label\":\"finch\",\"top\":[]}\n\n{\"file\":\"/abs/2.jpg\",\"label\":\"blank\"}\n",
        )
        .unwrap();
        let set = read_labelled_set(&path, &LABELS).unwrap();
        assert_eq!(set[0].path, dir.path().join("x/1.jpg"));
        assert_eq!(
            (set[1].path.as_path(), set[1].class),
            (Path::new("/abs/2.jpg"), 0)
        );

        fs::write(&path, "{\"file\":\"1.jpg\"}\n").unwrap();
        let err = read_labelled_set(&path, &LABELS).unwrap_err().to_string();
        assert!(
            err.contains("set.jsonl:1") && err.contains("label"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_label_or_an_empty_set_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("wombat")).unwrap();
        let err = read_labelled_set(dir.path(), &LABELS)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"wombat\"") && err.contains("finch"), "{err}");
        fs::remove_dir(dir.path().join("wombat")).unwrap();
        let err = read_labelled_set(dir.path(), &LABELS).unwrap_err();
        assert!(matches!(err, LabelledSetError::Empty { .. }));
    }
}
