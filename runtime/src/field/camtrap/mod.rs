//! Camtrap DP 1.0.2 export of a detection log: `datapackage.json`, `deployments.csv`,
//! `media.csv` and `observations.csv` (the TDWG camera-trap data exchange standard).
//!
//! Deployment and classes come from the log's `start` records, or from a profile (which then
//! names the deployment of every record) and its bundle. Observations are event-based
//! (`tables` says how each record maps). Scientific names are the bundle's where it has
//! them, else its common names, else its labels. Media paths are relative to the field
//! output folder: export into that folder (or copy `frames/` next to the package) for them
//! to resolve.

mod package;
mod tables;

use std::fs;
use std::path::{Path, PathBuf};

pub use package::CAMTRAP_DP_VERSION;
pub use tables::{DEPLOYMENT_COLUMNS, MEDIA_COLUMNS, OBSERVATION_COLUMNS};

use crate::bundle::manifest::ClassInfo;
use crate::field::config::Deployment;
use crate::field::detection_log::Entry;

/// A bundle's classes and which of them means "no animal".
#[derive(Clone, Debug, PartialEq)]
pub struct ClassList {
    /// The classes.
    pub classes: Vec<ClassInfo>,
    /// The blank label.
    pub blank_label: String,
}

impl ClassList {
    /// The scientific name of `label`: the bundle's, else its common name, else the label.
    pub fn scientific_name(&self, label: &str) -> String {
        let class = self.classes.iter().find(|c| c.label == label);
        class
            .and_then(|c| c.scientific_name.clone().or_else(|| c.common_name.clone()))
            .unwrap_or_else(|| label.to_string())
    }
}

/// Package metadata and overrides.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportOptions {
    /// `created`, RFC 3339.
    pub created: String,
    /// The single contributor listed.
    pub contributor: String,
    /// `project.title`.
    pub project_title: String,
    /// The deployment of every record (from `--profile`), instead of the start records'.
    pub deployment: Option<Deployment>,
    /// The classes (from the profile's bundle), instead of the start records'.
    pub classes: Option<ClassList>,
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportSummary {
    /// Rows of `deployments.csv`.
    pub deployments: usize,
    /// Rows of `media.csv`.
    pub media: usize,
    /// Rows of `observations.csv`.
    pub observations: usize,
    /// Records left out, and why.
    pub warnings: Vec<String>,
}

/// Why a package could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CamtrapError {
    /// The log names no deployment and none was given.
    #[error("the log has no start record naming a deployment; pass a profile")]
    NoDeployment,
    /// A file could not be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV file could not be written.
    #[error("{}: cannot write: {source}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: csv::Error,
    },
}

/// Writes the package of `entries` into `out` (created if needed).
pub fn export(
    entries: &[Entry],
    options: &ExportOptions,
    out: &Path,
) -> Result<ExportSummary, CamtrapError> {
    let tables = tables::build(entries, options);
    if tables.deployments.is_empty() {
        return Err(CamtrapError::NoDeployment);
    }
    fs::create_dir_all(out).map_err(|source| CamtrapError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let deployment_rows: Vec<tables::Row> = tables
        .deployments
        .iter()
        .map(|s| {
            let (start, end) = s.range(&options.created);
            tables::deployment_row(&s.deployment, &start, &end)
        })
        .collect();
    write_csv(
        &out.join("deployments.csv"),
        &DEPLOYMENT_COLUMNS,
        &deployment_rows,
    )?;
    write_csv(&out.join("media.csv"), &MEDIA_COLUMNS, &tables.media)?;
    write_csv(
        &out.join("observations.csv"),
        &OBSERVATION_COLUMNS,
        &tables.observations,
    )?;
    let descriptor = package::descriptor(&tables, options);
    let path = out.join("datapackage.json");
    let text = serde_json::to_string_pretty(&descriptor).expect("JSON values serialize") + "\n";
    fs::write(&path, text).map_err(|source| CamtrapError::Write { path, source })?;
    Ok(ExportSummary {
        deployments: deployment_rows.len(),
        media: tables.media.len(),
        observations: tables.observations.len(),
        warnings: tables.warnings,
    })
}

fn write_csv(path: &Path, columns: &[&str], rows: &[tables::Row]) -> Result<(), CamtrapError> {
    let error = |source| CamtrapError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut writer = csv::Writer::from_path(path).map_err(error)?;
    writer.write_record(columns).map_err(error)?;
    for row in rows {
        writer
            .write_record(tables::ordered(row, columns))
            .map_err(error)?;
    }
    writer.flush().map_err(|source| CamtrapError::Write {
        path: path.to_path_buf(),
        source,
    })
}
