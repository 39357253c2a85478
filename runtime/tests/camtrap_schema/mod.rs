//! A validator for Camtrap DP packages against the standard's own files in
//! `tests/fixtures/camtrap-dp-1.0.2/`: the Frictionless table schemas (field names and order,
//! types and formats, `required`, `unique`, `enum`, `minimum`/`maximum`, `pattern`, primary and
//! foreign keys) and the package profile (the JSON Schema subset it uses: `type`, `required`,
//! `properties`, `items`, `enum`, `minItems`, `uniqueItems`, `pattern`, `format`, `allOf`,
//! `oneOf`, `not` and local `$ref`s; the two external `$ref`s, Frictionless' base package and
//! GeoJSON, are not fetched). Errors name the file, the row and the column.

mod json_schema;
mod table;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use table::Table;

/// The fixture folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/camtrap-dp-1.0.2")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every problem of the package in `dir`; empty when it is valid.
pub fn validate_package(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let descriptor = read_json(&dir.join("datapackage.json"));
    let profile = read_json(&fixtures().join("camtrap-dp-profile.json"));
    json_schema::validate(
        &descriptor,
        &profile,
        &profile,
        "datapackage.json",
        &mut problems,
    );
    let mut tables = Vec::new();
    for name in ["deployments", "media", "observations"] {
        let schema = read_json(&fixtures().join(format!("{name}-table-schema.json")));
        match Table::read(&dir.join(format!("{name}.csv")), schema) {
            Ok(table) => tables.push(table),
            Err(e) => problems.push(e),
        }
    }
    for table in &tables {
        table.validate(&tables, &mut problems);
    }
    problems
}
