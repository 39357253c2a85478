//! torchvision `ImageFolder` datasets: `ROOT/<class>/**/<image>`, and the common
//! `ROOT/train/<class>` + `ROOT/test/<class>` (or `val`) two-split layout.
//!
//! The semantics mirror `torchvision.datasets.folder` so that label indices match a model trained
//! with PyTorch on the same tree:
//! - classes are the sorted names of the root's sub-folders (symlinks followed);
//! - each class folder is walked recursively (symlinks followed), directories in sorted path order
//!   and, within a directory, files in sorted name order (as `sorted(os.walk(...))` then
//!   `sorted(fnames)` does);
//! - a file is an image when its extension is one of the runtime's
//!   ([`xrvlm_runtime::image_io::IMAGE_EXTENSIONS`], in any case): the formats this workspace's
//!   decoder reads, so that training and the device see the same files. torchvision also lists
//!   TIFF, PPM and PGM, which this build cannot decode; a tree of those is refused as empty.
//!
//! Sorting is by the raw bytes of the name, which is Python's code-point order for UTF-8 names.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use xrvlm_runtime::image_io::has_image_extension;

use super::dataset::{DataError, Dataset, Sample};

/// Split folder names tried, in order, for the held-out split of [`image_folder_splits`].
pub const TEST_SPLIT_NAMES: &[&str] = &["test", "val"];

const EXPECTED_ROOT: &str = "a directory with one sub-folder per class (ROOT/<class>/<image>)";

/// Lists an ImageFolder tree. The dataset is named after the root's last path component.
pub fn load_image_folder(root: &Path) -> Result<Dataset, DataError> {
    check_dir(root)?;
    let classes = class_folders(root)?;
    if classes.is_empty() {
        return Err(DataError::NoClasses {
            path: root.to_path_buf(),
        });
    }
    let mut samples = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let folder = root.join(class);
        let images = images_under(&folder)?;
        if images.is_empty() {
            return Err(DataError::EmptyClass { path: folder });
        }
        samples.extend(images.into_iter().map(|path| Sample {
            path,
            label,
            region: None,
        }));
    }
    Dataset::new(folder_name(root), classes, samples)
}

/// Loads `ROOT/train` and `ROOT/test` (or `ROOT/val` when there is no `test`) as two ImageFolder
/// datasets with the same classes.
///
/// Returns `Ok(None)` when the layout is not present (no `train` folder, or neither `test` nor
/// `val`), so the caller can try another layout. Datasets are named `"<root name>/train"` and
/// `"<root name>/test"` (or `/val`).
pub fn image_folder_splits(root: &Path) -> Result<Option<(Dataset, Dataset)>, DataError> {
    check_dir(root)?;
    let train_dir = root.join("train");
    let Some(test_dir) = TEST_SPLIT_NAMES
        .iter()
        .map(|name| root.join(name))
        .find(|p| p.is_dir())
    else {
        return Ok(None);
    };
    if !train_dir.is_dir() {
        return Ok(None);
    }
    let mut train = load_image_folder(&train_dir)?;
    let mut test = load_image_folder(&test_dir)?;
    check_same_classes(&train, &test, &train_dir, &test_dir)?;
    let base = folder_name(root);
    train.name = format!("{base}/{}", folder_name(&train_dir));
    test.name = format!("{base}/{}", folder_name(&test_dir));
    Ok(Some((train, test)))
}

fn check_dir(root: &Path) -> Result<(), DataError> {
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

fn check_same_classes(
    train: &Dataset,
    test: &Dataset,
    train_dir: &Path,
    test_dir: &Path,
) -> Result<(), DataError> {
    if train.classes == test.classes {
        return Ok(());
    }
    let only = |a: &Dataset, b: &Dataset| -> Vec<String> {
        let other: HashSet<&String> = b.classes.iter().collect();
        a.classes
            .iter()
            .filter(|c| !other.contains(c))
            .cloned()
            .collect()
    };
    Err(DataError::SplitClassMismatch {
        train: train_dir.to_path_buf(),
        test: test_dir.to_path_buf(),
        detail: format!(
            "only in train: [{}]; only in {}: [{}]",
            only(train, test).join(", "),
            folder_name(test_dir),
            only(test, train).join(", ")
        ),
    })
}

/// Sorted names of the sub-folders of `root` (symlinks followed).
fn class_folders(root: &Path) -> Result<Vec<String>, DataError> {
    let mut names: Vec<String> = read_dir_sorted(root)?
        .into_iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Image files under `folder`, in torchvision's walk order.
fn images_under(folder: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut dirs = Vec::new();
    let mut visited = HashSet::new();
    collect_dirs(folder, &mut dirs, &mut visited)?;
    dirs.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    let mut images = Vec::new();
    for dir in &dirs {
        let entries = read_dir_sorted(dir)?;
        images.extend(
            entries
                .into_iter()
                .filter(|p| !p.is_dir() && has_image_extension(p)),
        );
    }
    Ok(images)
}

/// `dir` and every directory below it; a symlink loop is visited once.
fn collect_dirs(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    visited: &mut HashSet<PathBuf>,
) -> Result<(), DataError> {
    let canonical = fs::canonicalize(dir).map_err(|source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    if !visited.insert(canonical) {
        return Ok(());
    }
    out.push(dir.to_path_buf());
    for entry in read_dir_sorted(dir)? {
        if entry.is_dir() {
            collect_dirs(&entry, out, visited)?;
        }
    }
    Ok(())
}

/// Entries of `dir`, sorted by the bytes of their file names.
fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let io_err = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err)? {
        paths.push(entry.map_err(io_err)?.path());
    }
    paths.sort_by(|a, b| {
        let name = |p: &PathBuf| p.file_name().map(|n| n.as_encoded_bytes().to_vec());
        name(a).cmp(&name(b))
    });
    Ok(paths)
}

fn folder_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_images::{write_bytes, write_png};

    #[test]
    fn classes_are_sorted_and_images_recursive() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_png(&root.join("zebra/b.png"), 4, 4, 0);
        write_png(&root.join("zebra/a.PNG"), 4, 4, 1);
        write_png(&root.join("ant/sub/deep/x.jpg"), 4, 4, 2);
        write_png(&root.join("ant/y.JPEG"), 4, 4, 3);
        write_bytes(&root.join("ant/notes.txt"), b"not an image");
        write_bytes(&root.join("ant/.DS_Store"), b"junk");
        write_bytes(&root.join("README.md"), b"top-level file, not a class");

        let ds = load_image_folder(root).unwrap();
        assert_eq!(ds.classes, vec!["ant", "zebra"]);
        let rel: Vec<_> = ds
            .samples
            .iter()
            .map(|s| (s.path.strip_prefix(root).unwrap().to_path_buf(), s.label))
            .collect();
        assert_eq!(
            rel,
            vec![
                // os.walk order: the class folder's own files first, then its sub-folders.
                (PathBuf::from("ant/y.JPEG"), 0),
                (PathBuf::from("ant/sub/deep/x.jpg"), 0),
                (PathBuf::from("zebra/a.PNG"), 1),
                (PathBuf::from("zebra/b.png"), 1),
            ]
        );
    }

    #[test]
    fn extensions_are_the_runtime_s_in_any_case() {
        for ok in [
            "a.jpg", "a.JPG", "a.jpeg", "a.jpe", "a.png", "a.bmp", "a.webp",
        ] {
            assert!(has_image_extension(Path::new(ok)), "{ok}");
        }
        // What the decoder cannot read is not an image, though torchvision lists it.
        for bad in [
            "a.gif",
            "a.txt",
            "jpg",
            "a.jpg.bak",
            "ajpg",
            "a.tif",
            "a.ppm",
            "a.pgm",
        ] {
            assert!(!has_image_extension(Path::new(bad)), "{bad}");
        }
    }

    #[test]
    fn missing_root_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = load_image_folder(&missing).unwrap_err();
        assert!(matches!(err, DataError::MissingRoot { .. }));
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn root_without_class_folders_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("loose.png"), 2, 2, 0);
        let err = load_image_folder(dir.path()).unwrap_err();
        assert!(matches!(err, DataError::NoClasses { .. }), "{err}");
    }

    #[test]
    fn empty_class_folder_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("full/a.png"), 2, 2, 0);
        write_bytes(&dir.path().join("hollow/readme.txt"), b"no images here");
        let err = load_image_folder(dir.path()).unwrap_err();
        assert!(matches!(err, DataError::EmptyClass { .. }), "{err}");
        assert!(err.to_string().contains("hollow"), "{err}");
    }

    #[test]
    fn splits_load_train_and_test_with_same_classes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("birds");
        for split in ["train", "val"] {
            write_png(&root.join(split).join("crow/1.png"), 2, 2, 0);
            write_png(&root.join(split).join("wren/1.png"), 2, 2, 1);
        }
        let (train, test) = image_folder_splits(&root).unwrap().unwrap();
        assert_eq!(train.name, "birds/train");
        assert_eq!(test.name, "birds/val");
        assert_eq!(train.classes, test.classes);
        assert_eq!(train.len(), 2);
    }

    #[test]
    fn splits_absent_layout_is_none() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("crow/1.png"), 2, 2, 0);
        assert!(image_folder_splits(dir.path()).unwrap().is_none());
    }

    #[test]
    fn splits_with_different_classes_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_png(&root.join("train/crow/1.png"), 2, 2, 0);
        write_png(&root.join("train/wren/1.png"), 2, 2, 0);
        write_png(&root.join("test/crow/1.png"), 2, 2, 0);
        write_png(&root.join("test/owl/1.png"), 2, 2, 0);
        let err = image_folder_splits(root).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("wren") && msg.contains("owl"), "{msg}");
    }
}
