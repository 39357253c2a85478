//! The images a `classify` run covers: files named on the command line, and every image
//! file (by extension) under the folders named, each folder's files in sorted path order.
//!
//! A named path that does not exist, or a folder that cannot be listed, is not fatal: it is
//! returned as an input with the error, so the run records it as a failure and goes on.
//! Symbolic links to folders are not followed, so a link cycle cannot make the walk endless.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use xrvlm_runtime::image_io::has_image_extension;

/// One input of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file to classify.
    File(PathBuf),
    /// A path that could not be used, with why.
    Unusable(PathBuf, String),
}

impl Input {
    /// The path.
    pub fn path(&self) -> &Path {
        match self {
            Input::File(p) | Input::Unusable(p, _) => p,
        }
    }
}

/// The inputs for `paths`, in argument order, each file once.
pub fn collect(paths: &[PathBuf]) -> Vec<Input> {
    let mut inputs = Vec::new();
    for path in paths {
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => walk(path, &mut inputs),
            Ok(_) => inputs.push(Input::File(path.clone())),
            Err(e) => inputs.push(Input::Unusable(path.clone(), format!("cannot open: {e}"))),
        }
    }
    let mut seen = HashSet::new();
    inputs.retain(|i| seen.insert(i.path().to_path_buf()));
    inputs
}

/// Appends the image files under `dir`, sorted.
fn walk(dir: &Path, inputs: &mut Vec<Input>) {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = match fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) => {
                inputs.push(Input::Unusable(current, format!("cannot list folder: {e}")));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    inputs.push(Input::Unusable(
                        current.clone(),
                        format!("cannot list folder: {e}"),
                    ));
                    continue;
                }
            };
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(_) if has_image_extension(&path) => found.push(path),
                _ => {}
            }
        }
    }
    found.sort();
    inputs.extend(found.into_iter().map(Input::File));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_walked_sorted_and_files_kept_in_argument_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("b/deep")).unwrap();
        for name in [
            "b/deep/z.JPG",
            "b/a.png",
            "b/notes.txt",
            "c.webp",
            "b/deep/y.bmp",
        ] {
            fs::write(root.join(name), b"x").unwrap();
        }
        let inputs = collect(&[
            root.join("c.webp"),
            root.join("b"),
            root.join("missing.png"),
        ]);
        let paths: Vec<_> = inputs
            .iter()
            .map(|i| i.path().strip_prefix(root).unwrap().to_path_buf())
            .collect();
        let expected: Vec<PathBuf> = [
            "c.webp",
            "b/a.png",
            "b/deep/y.bmp",
            "b/deep/z.JPG",
            "missing.png",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(paths, expected);
        assert!(matches!(inputs[4], Input::Unusable(_, _)));
    }

    #[test]
    fn a_file_named_twice_is_classified_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.png");
        fs::write(&file, b"x").unwrap();
        assert_eq!(collect(&[file.clone(), dir.path().to_path_buf()]).len(), 1);
    }
}
