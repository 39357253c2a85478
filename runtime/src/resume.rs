//! What `xrvlm classify --resume` reads back from an output it wrote before: the files already
//! recorded in a JSON-lines, CSV or MegaDetector output. Text in, files out; reading the file,
//! cutting off a partial last line and naming the file in messages are the binary's.
//!
//! An output that is not what `classify` writes is refused, not guessed at: resuming into it
//! would append records that do not line up with the ones there.

use std::collections::HashSet;

use serde_json::Value;

/// Why an existing output cannot be resumed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResumeError {
    /// A JSON line without a string `file`.
    #[error("line {line}: not a record of `xrvlm classify --format jsonl`")]
    NotJsonlRecord {
        /// 1-based line number.
        line: usize,
    },
    /// The CSV's header cannot be read.
    #[error("cannot read the CSV header: {message}")]
    CsvHeader {
        /// The CSV reader's reason.
        message: String,
    },
    /// The CSV's columns are not this run's.
    #[error(
        "its columns {found:?} differ from this run's {expected:?} (another --top-k, or written \
         with(out) --detections?)"
    )]
    CsvColumns {
        /// The header as read.
        found: Vec<String>,
        /// The header this run writes.
        expected: Vec<String>,
    },
    /// A CSV row that cannot be read.
    #[error("not a CSV of `xrvlm classify`: {message}")]
    CsvRow {
        /// The CSV reader's reason, with the line.
        message: String,
    },
    /// The document is not JSON.
    #[error("not a MegaDetector JSON document: {message}")]
    NotJson {
        /// The JSON parser's reason, with line and column.
        message: String,
    },
    /// The document was written for other classes.
    #[error("its classification_categories differ from this bundle's classes")]
    OtherClasses,
    /// The document has no `images` list.
    #[error("has no images list")]
    NoImages,
}

/// The length of `text`'s complete lines: everything up to and including its last newline.
pub fn complete_len(text: &str) -> usize {
    text.rfind('\n').map_or(0, |i| i + 1)
}

/// The `file` of every non-blank line of a JSON-lines output.
pub fn jsonl_files(text: &str) -> Result<HashSet<String>, ResumeError> {
    let mut done = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let file = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| v.get("file").and_then(Value::as_str).map(str::to_string))
            .ok_or(ResumeError::NotJsonlRecord { line: i + 1 })?;
        done.insert(file);
    }
    Ok(done)
}

/// The first cell of every row of a CSV output whose header must be `expected`, and whether
/// it has a header (an empty output has none).
pub fn csv_files(text: &str, expected: &[String]) -> Result<(HashSet<String>, bool), ResumeError> {
    if text.trim().is_empty() {
        return Ok((HashSet::new(), false));
    }
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let found: Vec<String> = reader
        .headers()
        .map_err(|e| ResumeError::CsvHeader {
            message: e.to_string(),
        })?
        .iter()
        .map(str::to_string)
        .collect();
    if found != expected {
        return Err(ResumeError::CsvColumns {
            found,
            expected: expected.to_vec(),
        });
    }
    let mut done = HashSet::new();
    for row in reader.records() {
        let row = row.map_err(|e| ResumeError::CsvRow {
            message: e.to_string(),
        })?;
        if let Some(file) = row.get(0) {
            done.insert(file.to_string());
        }
    }
    Ok((done, true))
}

/// The `images` of a MegaDetector document written for `classes` (its
/// `classification_categories`, by id `"0"`, `"1"`, …).
pub fn megadetector_images(text: &str, classes: &[String]) -> Result<Vec<Value>, ResumeError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| ResumeError::NotJson {
        message: e.to_string(),
    })?;
    let written: Option<Vec<&str>> = doc
        .get("classification_categories")
        .and_then(Value::as_object)
        .map(|cats| {
            (0..cats.len())
                .map(|i| {
                    cats.get(&i.to_string())
                        .and_then(Value::as_str)
                        .unwrap_or("")
                })
                .collect()
        });
    if written.is_none_or(|w| !w.iter().eq(classes.iter())) {
        return Err(ResumeError::OtherClasses);
    }
    match doc.get("images") {
        Some(Value::Array(images)) => Ok(images.clone()),
        _ => Err(ResumeError::NoImages),
    }
}

/// The `file` of every image entry that has one.
pub fn image_files(images: &[Value]) -> HashSet<String> {
    images
        .iter()
        .filter_map(|im| im.get("file").and_then(Value::as_str).map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn complete_lines_end_at_the_last_newline() {
        assert_eq!(complete_len(""), 0);
        assert_eq!(complete_len("{\"file\":"), 0);
        assert_eq!(complete_len("a\nb"), 2);
        assert_eq!(complete_len("a\nb\n"), 4);
    }

    #[test]
    fn jsonl_files_are_read_and_other_lines_refused_by_number() {
        let text = "{\"file\":\"a.jpg\",\"top\":[]}\n\n{\"file\":\"b.jpg\",\"error\":\"x\"}\n";
        let done = jsonl_files(text).unwrap();
        assert_eq!(done, HashSet::from(["a.jpg".into(), "b.jpg".into()]));
        let err = jsonl_files("{\"file\":\"a.jpg\"}\n{\"name\":1}\n").unwrap_err();
        assert_eq!(err, ResumeError::NotJsonlRecord { line: 2 });
    }

    #[test]
    fn csv_files_need_this_runs_columns() {
        let header = strings(&["file", "label"]);
        let (done, has_header) = csv_files("file,label\na.jpg,wren\n", &header).unwrap();
        assert!(has_header);
        assert_eq!(done, HashSet::from(["a.jpg".into()]));
        assert_eq!(csv_files("  \n", &header).unwrap(), (HashSet::new(), false));
        let err = csv_files("file,label,p\n", &header).unwrap_err();
        assert!(matches!(err, ResumeError::CsvColumns { .. }), "{err}");
        let err = csv_files("file,label\na.jpg\n", &header).unwrap_err();
        assert!(matches!(err, ResumeError::CsvRow { .. }), "{err}");
    }

    #[test]
    fn megadetector_images_need_this_bundles_classes() {
        let classes = strings(&["blank", "wren"]);
        let doc = r#"{"classification_categories":{"0":"blank","1":"wren"},
                      "images":[{"file":"a.jpg"},{"failure":"x"}]}"#;
        let images = megadetector_images(doc, &classes).unwrap();
        assert_eq!(image_files(&images), HashSet::from(["a.jpg".into()]));
        let other = r#"{"classification_categories":{"0":"blank"},"images":[]}"#;
        assert_eq!(
            megadetector_images(other, &classes),
            Err(ResumeError::OtherClasses)
        );
        let no_images = r#"{"classification_categories":{"0":"blank","1":"wren"}}"#;
        assert_eq!(
            megadetector_images(no_images, &classes),
            Err(ResumeError::NoImages)
        );
        assert!(matches!(
            megadetector_images("{", &classes),
            Err(ResumeError::NotJson { .. })
        ));
    }
}
