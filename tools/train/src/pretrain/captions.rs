//! The two text files of a `xrvlm-train synth` directory:
//!
//! - `captions.jsonl`, one image per line:
//!   `{"image": "<species>/<NNNNN>.png", "caption": "...", "species": "<name>" | "blank",
//!   "night": bool, "empty": bool}`;
//! - `species.json`: `{"world": W, "species": [{"name", "label", "attributes", "description"}]}`,
//!   whose `description` is the canonical text of each species (the zero-shot class text).
//!
//! Errors name the file, and for `captions.jsonl` the 1-based line. Unknown keys are ignored so
//! that the generator can add fields.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::PretrainError;

/// The captions file of a synth directory.
pub const CAPTIONS_FILE: &str = "captions.jsonl";
/// The species file of a synth directory.
pub const SPECIES_FILE: &str = "species.json";
/// The `species` value of frames without an animal.
pub const BLANK: &str = "blank";

/// One line of `captions.jsonl`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CaptionRecord {
    /// Image path relative to the directory.
    pub image: String,
    /// The caption (lowercase, `,` and `.` only).
    pub caption: String,
    /// Species name, or [`BLANK`].
    pub species: String,
    /// Whether the frame is a night (infrared) shot.
    #[serde(default)]
    pub night: bool,
    /// Whether the frame shows no animal.
    #[serde(default)]
    pub empty: bool,
}

impl CaptionRecord {
    /// Whether the frame shows an animal of a named species.
    pub fn has_animal(&self) -> bool {
        !self.empty && self.species != BLANK
    }
}

/// One species of `species.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Species {
    /// Folder and caption name (underscores for spaces).
    pub name: String,
    /// The canonical description, e.g. `"a bird with a red hooked beak ..."`.
    pub description: String,
    /// The species' part attributes (`"beak_shape": "hooked"`, `"crest_colour": null`, …), the
    /// labels of the supervised stage; empty when the file has none.
    #[serde(default)]
    pub attributes: std::collections::BTreeMap<String, serde_json::Value>,
}

impl Species {
    /// The name as words (`northern_cardinal` → `northern cardinal`).
    pub fn words(&self) -> String {
        self.name.replace('_', " ")
    }
}

#[derive(Deserialize)]
struct SpeciesFile {
    species: Vec<Species>,
}

/// A parsed synth directory: its captions and species, with paths resolved.
#[derive(Debug, Clone)]
pub struct SynthSet {
    /// The directory.
    pub root: PathBuf,
    /// Every caption line, in file order.
    pub records: Vec<CaptionRecord>,
    /// Every species, in file order.
    pub species: Vec<Species>,
}

impl SynthSet {
    /// Reads `root/captions.jsonl` and `root/species.json`. A caption whose species is not in
    /// `species.json` (and not [`BLANK`]) is an error naming its line.
    pub fn load(root: &Path) -> Result<Self, PretrainError> {
        let species = read_species(&root.join(SPECIES_FILE))?;
        let path = root.join(CAPTIONS_FILE);
        let text = std::fs::read_to_string(&path).map_err(PretrainError::io(&path))?;
        let records = parse_captions(&text, &path)?;
        for (i, r) in records.iter().enumerate() {
            if r.species != BLANK && !species.iter().any(|s| s.name == r.species) {
                return Err(PretrainError::Line {
                    path: path.clone(),
                    line: i + 1,
                    msg: format!(
                        "species {:?} is not in {}",
                        r.species,
                        root.join(SPECIES_FILE).display()
                    ),
                });
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
            records,
            species,
        })
    }

    /// The image file of a record.
    pub fn image_path(&self, record: &CaptionRecord) -> PathBuf {
        self.root.join(&record.image)
    }
}

/// Parses the text of `captions.jsonl`; `path` names it in errors. Blank lines are skipped.
pub fn parse_captions(text: &str, path: &Path) -> Result<Vec<CaptionRecord>, PretrainError> {
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |msg: String| PretrainError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            msg,
        };
        let record: CaptionRecord =
            serde_json::from_str(line).map_err(|e| bad(format!("not a caption record: {e}")))?;
        if record.image.trim().is_empty() || record.caption.trim().is_empty() {
            return Err(bad("\"image\" and \"caption\" must not be empty".into()));
        }
        records.push(record);
    }
    if records.is_empty() {
        return Err(PretrainError::File {
            path: path.to_path_buf(),
            msg: "holds no caption records".into(),
        });
    }
    Ok(records)
}

/// Reads `species.json`.
pub fn read_species(path: &Path) -> Result<Vec<Species>, PretrainError> {
    let text = std::fs::read_to_string(path).map_err(PretrainError::io(path))?;
    parse_species(&text, path)
}

/// Parses the text of `species.json`; `path` names it in errors.
pub fn parse_species(text: &str, path: &Path) -> Result<Vec<Species>, PretrainError> {
    let bad = |msg: String| PretrainError::File {
        path: path.to_path_buf(),
        msg,
    };
    let file: SpeciesFile =
        serde_json::from_str(text).map_err(|e| bad(format!("not a species file: {e}")))?;
    if file.species.is_empty() {
        return Err(bad("lists no species".into()));
    }
    for (i, s) in file.species.iter().enumerate() {
        if file.species[..i].iter().any(|o| o.name == s.name) {
            return Err(bad(format!("species {:?} is listed twice", s.name)));
        }
        if s.description.trim().is_empty() {
            return Err(bad(format!(
                "species {:?} has an empty description",
                s.name
            )));
        }
    }
    Ok(file.species)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_parse_and_bad_line_is_named() {
        let good = "{\"image\": \"a/00000.png\", \"caption\": \"a bird.\", \"species\": \"a\", \
                    \"night\": false, \"empty\": false, \"extra\": 1}\n\n";
        let recs = parse_captions(good, Path::new("c.jsonl")).unwrap();
        assert_eq!(recs.len(), 1);
        assert!(recs[0].has_animal());
        let bad = format!("{good}{{\"image\": \"b.png\"}}\n");
        let err = parse_captions(&bad, Path::new("/d/c.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/d/c.jsonl:3:"), "{err}");
    }

    #[test]
    fn species_file_checks_duplicates_and_descriptions() {
        let ok = r#"{"world": 1, "species": [{"name": "red_bird", "label": 0,
            "attributes": {"beak": "hooked"}, "description": "a bird with a red beak."}]}"#;
        let s = parse_species(ok, Path::new("s.json")).unwrap();
        assert_eq!(s[0].words(), "red bird");
        let dup = r#"{"species": [{"name": "a", "description": "x"},
            {"name": "a", "description": "y"}]}"#;
        let err = parse_species(dup, Path::new("s.json")).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
        let err = parse_species("[]", Path::new("/x/s.json")).unwrap_err();
        assert!(err.to_string().starts_with("/x/s.json:"), "{err}");
    }
}
