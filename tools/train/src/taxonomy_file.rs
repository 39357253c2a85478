//! Where a bundle's class taxonomies come from, and how they join its classes: a synthetic
//! dataset's `species.json` (each species' `taxonomy`: `xrvlm_synth`'s genera and families),
//! or a user's CSV file for real species:
//!
//! ```text
//! label,genus,family,order,class
//! red_fox,Vulpes,Canidae,Carnivora,Mammalia
//! roe_deer,Capreolus,Cervidae,Artiodactyla,Mammalia
//! ```
//!
//! `label` is required, the rank columns are optional (any subset, any order; an empty cell is
//! an unknown rank); other columns are refused by name so that a misspelt rank is not silently
//! dropped. [`apply`] gives every class but blank its taxonomy and refuses a file that misses
//! one of them (a roll-up over a partial taxonomy would undercount a genus). [`install`] does
//! that to an existing bundle (`xrvlm-train set-taxonomy`), touching only its manifest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use xrvlm_runtime::bundle::manifest::{ClassInfo, Manifest, MANIFEST_FILE};
use xrvlm_runtime::bundle::Bundle;
use xrvlm_runtime::taxonomy::Taxonomy;

use crate::open_world::write_atomically;

/// Each label's taxonomy, as a file gives them.
pub type Taxonomies = BTreeMap<String, Taxonomy>;

/// Why a taxonomy file could not be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TaxonomyFileError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The content is not what the format expects.
    #[error("{}: {what}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// Where (line, column or JSON path) and what is expected.
        what: String,
    },
    /// The bundle's manifest could not be read, written or opened again.
    #[error("{}: {message}", path.display())]
    Bundle {
        /// The manifest.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Classes of the bundle the file does not name.
    #[error(
        "{}: no taxonomy for the class(es) {}; every class but blank needs a row",
        path.display(),
        missing.join(", ")
    )]
    Missing {
        /// The file.
        path: PathBuf,
        /// The labels.
        missing: Vec<String>,
    },
}

/// Reads `path`: `species.json` of a synthetic dataset when it ends in `.json`, else CSV.
pub fn read(path: &Path) -> Result<Taxonomies, TaxonomyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| TaxonomyFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let format = |what: String| TaxonomyFileError::Format {
        path: path.to_path_buf(),
        what,
    };
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        from_species_json(&text).map_err(format)
    } else {
        from_csv(&text).map_err(format)
    }
}

/// Gives each class of `classes` but `blank_label` its taxonomy from `taxonomies`; `path`
/// names the file in errors.
pub fn apply(
    classes: &mut [ClassInfo],
    taxonomies: &Taxonomies,
    blank_label: &str,
    path: &Path,
) -> Result<(), TaxonomyFileError> {
    let missing: Vec<String> = classes
        .iter()
        .filter(|c| c.label != blank_label && !taxonomies.contains_key(&c.label))
        .map(|c| c.label.clone())
        .collect();
    if !missing.is_empty() {
        return Err(TaxonomyFileError::Missing {
            path: path.to_path_buf(),
            missing,
        });
    }
    for class in classes.iter_mut().filter(|c| c.label != blank_label) {
        class.taxonomy = taxonomies.get(&class.label).cloned();
    }
    Ok(())
}

/// Gives the bundle at `dir` the taxonomies of the file at `path` (every class but
/// `blank_label`), rewriting only `manifest.toml` (beside itself, then renamed over), and opens
/// the bundle again through the runtime. Returns the new manifest.
pub fn install(dir: &Path, path: &Path, blank_label: &str) -> Result<Manifest, TaxonomyFileError> {
    let taxonomies = read(path)?;
    let manifest_path = dir.join(MANIFEST_FILE);
    let bundle_error = |message: String| TaxonomyFileError::Bundle {
        path: manifest_path.clone(),
        message,
    };
    let mut manifest = Manifest::load(&manifest_path).map_err(|e| bundle_error(e.to_string()))?;
    apply(&mut manifest.classes, &taxonomies, blank_label, path)?;
    let text = manifest
        .to_toml()
        .map_err(|e| bundle_error(e.to_string()))?;
    write_atomically(&manifest_path, text.as_bytes()).map_err(|e| bundle_error(e.to_string()))?;
    Bundle::open(dir)
        .map_err(|e| bundle_error(format!("the rewritten bundle does not open: {e}")))?;
    Ok(manifest)
}

#[derive(Deserialize)]
struct SpeciesFile {
    species: Vec<SpeciesEntry>,
}

#[derive(Deserialize)]
struct SpeciesEntry {
    name: String,
    taxonomy: Option<Taxonomy>,
}

fn from_species_json(text: &str) -> Result<Taxonomies, String> {
    let file: SpeciesFile = serde_json::from_str(text)
        .map_err(|e| format!("not a synthetic dataset's species.json: {e}"))?;
    file.species
        .into_iter()
        .enumerate()
        .map(|(i, s)| match s.taxonomy {
            Some(t) => Ok((s.name, t)),
            None => Err(format!(
                "species[{i}] ({}) has no taxonomy: made by a synth before generator version 2; \
                 run synth again",
                s.name
            )),
        })
        .collect()
}

/// The CSV columns a taxonomy file may have besides `label`.
const RANK_COLUMNS: [&str; 4] = ["genus", "family", "order", "class"];

fn from_csv(text: &str) -> Result<Taxonomies, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or("empty file: expected a header line")?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let label_at = columns
        .iter()
        .position(|c| *c == "label")
        .ok_or_else(|| format!("line 1: no `label` column in the header {header:?}"))?;
    if let Some(other) = columns
        .iter()
        .find(|c| **c != "label" && !RANK_COLUMNS.contains(c))
    {
        return Err(format!(
            "line 1: unknown column {other:?}; expected label and any of genus, family, order, \
             class"
        ));
    }
    let mut taxonomies = Taxonomies::new();
    for (i, line) in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != columns.len() {
            return Err(format!(
                "line {}: {} cells, the header has {}",
                i + 1,
                cells.len(),
                columns.len()
            ));
        }
        let label = cells[label_at];
        if label.is_empty() {
            return Err(format!("line {}: empty label", i + 1));
        }
        let cell = |rank: &str| {
            columns
                .iter()
                .position(|c| *c == rank)
                .map(|at| cells[at])
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let taxonomy = Taxonomy {
            genus: cell("genus"),
            family: cell("family"),
            order: cell("order"),
            class: cell("class"),
        };
        if taxonomies.insert(label.to_string(), taxonomy).is_some() {
            return Err(format!("line {}: label {label:?} appears twice", i + 1));
        }
    }
    Ok(taxonomies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_file_gives_the_ranks_it_has() {
        let t =
            from_csv("label, family,genus\nred_fox,Canidae,Vulpes\nbadger,Mustelidae,\n").unwrap();
        assert_eq!(t["red_fox"].genus.as_deref(), Some("Vulpes"));
        assert_eq!(t["red_fox"].family.as_deref(), Some("Canidae"));
        assert_eq!(t["badger"].genus, None);
        assert_eq!(t["badger"].order, None);
    }

    #[test]
    fn a_bad_csv_file_is_refused_by_line_and_column() {
        let err = from_csv("label,genera\nfox,Vulpes\n").unwrap_err();
        assert!(err.contains("unknown column \"genera\""), "{err}");
        let err = from_csv("genus\nVulpes\n").unwrap_err();
        assert!(err.contains("no `label` column"), "{err}");
        let err = from_csv("label,genus\nfox,Vulpes,x\n").unwrap_err();
        assert!(err.contains("line 2: 3 cells, the header has 2"), "{err}");
        let err = from_csv("label,genus\nfox,Vulpes\nfox,Canis\n").unwrap_err();
        assert!(err.contains("line 3: label \"fox\" appears twice"), "{err}");
    }

    #[test]
    fn species_json_gives_each_species_its_taxonomy() {
        let text = r#"{"world": 1, "classes": ["a", "blank"], "species": [
            {"name": "a", "label": 0, "taxonomy": {"genus": "Conizona", "family": "Conirostridae",
             "order": "Passeriformes", "class": "Aves"}}]}"#;
        let t = from_species_json(text).unwrap();
        assert_eq!(t["a"].genus.as_deref(), Some("Conizona"));
        let old = r#"{"species": [{"name": "a"}]}"#;
        assert!(from_species_json(old)
            .unwrap_err()
            .contains("species[0] (a) has no taxonomy"));
    }

    #[test]
    fn every_class_but_blank_needs_a_taxonomy() {
        let t = from_csv("label,genus\nfox,Vulpes\n").unwrap();
        let mut classes = vec![ClassInfo::from_label("fox"), ClassInfo::from_label("blank")];
        apply(&mut classes, &t, "blank", Path::new("t.csv")).unwrap();
        assert_eq!(
            classes[0].taxonomy.as_ref().unwrap().genus.as_deref(),
            Some("Vulpes")
        );
        assert_eq!(classes[1].taxonomy, None);
        classes.push(ClassInfo::from_label("badger"));
        let err = apply(&mut classes, &t, "blank", Path::new("t.csv")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.csv: no taxonomy for the class(es) badger; every class but blank needs a row"
        );
    }
}
