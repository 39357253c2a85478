//! `golden/golden.json`: a few images with the fp32 logits the training crate computed, for a
//! parity check wherever the bundle runs.
//!
//! ```json
//! [{"file": "bartail_finch_01.png", "label": "bartail_finch", "logits": [1.5, -0.25]}]
//! ```
//!
//! `file` is relative to `golden/`; `logits` has one value per class, in the manifest's class
//! order.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One golden image and its expected logits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldenEntry {
    /// Image file name, relative to `golden/`.
    pub file: String,
    /// The image's true label.
    pub label: String,
    /// The training crate's fp32 logits, one per class.
    pub logits: Vec<f32>,
}

/// Why `golden.json` was refused. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum GoldenError {
    /// Not JSON of the expected form.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// An empty list.
    #[error("{}: no golden entries", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// An entry that does not fit the manifest.
    #[error("{}: entry {index} ({file}): {problem}", path.display())]
    Entry {
        /// The file.
        path: PathBuf,
        /// Position in the list.
        index: usize,
        /// The entry's image.
        file: String,
        /// What is wrong.
        problem: String,
    },
}

/// Parses `golden.json` (read from `path`) for a model whose classes are `labels`.
pub fn parse_golden(
    bytes: &[u8],
    path: &Path,
    labels: &[&str],
) -> Result<Vec<GoldenEntry>, GoldenError> {
    let entries: Vec<GoldenEntry> =
        serde_json::from_slice(bytes).map_err(|e| GoldenError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if entries.is_empty() {
        return Err(GoldenError::Empty {
            path: path.to_path_buf(),
        });
    }
    for (index, entry) in entries.iter().enumerate() {
        check_entry(entry, labels).map_err(|problem| GoldenError::Entry {
            path: path.to_path_buf(),
            index,
            file: entry.file.clone(),
            problem,
        })?;
    }
    Ok(entries)
}

fn check_entry(entry: &GoldenEntry, labels: &[&str]) -> Result<(), String> {
    if entry.logits.len() != labels.len() {
        return Err(format!(
            "{} logits, expected one per class ({})",
            entry.logits.len(),
            labels.len()
        ));
    }
    if let Some(i) = entry.logits.iter().position(|v| !v.is_finite()) {
        return Err(format!("logit {i} is not finite"));
    }
    if !labels.contains(&entry.label.as_str()) {
        return Err(format!(
            "label {:?} is not a class of the manifest",
            entry.label
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABELS: [&str; 2] = ["a", "b"];

    fn parse(text: &str) -> Result<Vec<GoldenEntry>, GoldenError> {
        parse_golden(text.as_bytes(), Path::new("golden/golden.json"), &LABELS)
    }

    #[test]
    fn entries_with_one_logit_per_class_parse() {
        let e = parse(r#"[{"file": "x.png", "label": "b", "logits": [1.0, -2.5]}]"#).unwrap();
        assert_eq!(e[0].logits, vec![1.0, -2.5]);
    }

    #[test]
    fn wrong_counts_unknown_labels_and_empty_lists_are_refused() {
        let err = parse(r#"[{"file": "x.png", "label": "b", "logits": [1.0]}]"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("1 logits, expected one per class (2)"),
            "{err}"
        );
        let err = parse(r#"[{"file": "x.png", "label": "c", "logits": [1, 2]}]"#).unwrap_err();
        assert!(err.to_string().contains("label \"c\""), "{err}");
        assert!(matches!(parse("[]"), Err(GoldenError::Empty { .. })));
        let err = parse(r#"[{"file": "x.png", "label": "a"}]"#).unwrap_err();
        assert!(err.to_string().contains("logits"), "{err}");
    }
}
