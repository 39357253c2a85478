//! One CSV table checked against its Frictionless table schema.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use fancy_regex::Regex;
use serde_json::Value;

/// A CSV file and its schema.
pub struct Table {
    pub name: String,
    path: PathBuf,
    schema: Value,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Reads `path`; `schema` is its table schema.
    pub fn read(path: &Path, schema: Value) -> Result<Self, String> {
        let mut reader =
            csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let header = reader
            .headers()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .iter()
            .map(str::to_string)
            .collect();
        let rows = reader
            .records()
            .map(|r| r.map(|r| r.iter().map(str::to_string).collect()))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self {
            name: schema["name"].as_str().unwrap_or_default().to_string(),
            path: path.to_path_buf(),
            schema,
            header,
            rows,
        })
    }

    fn fields(&self) -> &[Value] {
        self.schema["fields"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    fn is_missing(&self, value: &str) -> bool {
        let missing = self.schema["missingValues"].as_array();
        missing.map_or(value.is_empty(), |m| {
            m.iter().any(|v| v.as_str() == Some(value))
        })
    }

    /// The values of `column`, present ones only.
    fn column(&self, column: &str) -> Vec<&str> {
        let Some(i) = self.header.iter().position(|h| h == column) else {
            return Vec::new();
        };
        self.rows
            .iter()
            .map(|r| r[i].as_str())
            .filter(|v| !self.is_missing(v))
            .collect()
    }

    /// Pushes every problem of this table (`others` for foreign keys) onto `problems`.
    pub fn validate(&self, others: &[Table], problems: &mut Vec<String>) {
        let file = self.path.display().to_string();
        let names: Vec<&str> = self
            .fields()
            .iter()
            .filter_map(|f| f["name"].as_str())
            .collect();
        if self.header != names {
            problems.push(format!(
                "{file}: header {:?} is not the schema's fields {names:?}",
                self.header
            ));
            return;
        }
        for field in self.fields() {
            let column = field["name"].as_str().unwrap_or_default();
            let i = self
                .header
                .iter()
                .position(|h| h == column)
                .expect("header checked");
            let mut seen = HashSet::new();
            for (r, row) in self.rows.iter().enumerate() {
                let at = format!("{file}: row {}, column {column}", r + 2);
                let value = &row[i];
                if self.is_missing(value) {
                    if field["constraints"]["required"] == Value::Bool(true) {
                        problems.push(format!("{at}: required value is missing"));
                    }
                    continue;
                }
                if let Err(e) = check_value(field, value) {
                    problems.push(format!("{at}: {value:?}: {e}"));
                }
                if field["constraints"]["unique"] == Value::Bool(true)
                    && !seen.insert(value.clone())
                {
                    problems.push(format!("{at}: {value:?} is not unique"));
                }
            }
        }
        self.validate_keys(others, problems);
    }

    fn validate_keys(&self, others: &[Table], problems: &mut Vec<String>) {
        let file = self.path.display();
        if let Some(key) = self.schema["primaryKey"].as_str() {
            let values = self.column(key);
            let unique: HashSet<&str> = values.iter().copied().collect();
            if unique.len() != values.len() {
                problems.push(format!("{file}: column {key}: primary key values repeat"));
            }
        }
        for fk in self.schema["foreignKeys"].as_array().into_iter().flatten() {
            let column = fk["fields"].as_str().unwrap_or_default();
            let target = fk["reference"]["resource"].as_str().unwrap_or_default();
            let target_column = fk["reference"]["fields"].as_str().unwrap_or_default();
            let Some(other) = others.iter().find(|t| t.name == target) else {
                problems.push(format!(
                    "{file}: column {column}: referenced table {target} missing"
                ));
                continue;
            };
            let known: HashSet<&str> = other.column(target_column).into_iter().collect();
            for value in self.column(column) {
                if !known.contains(value) {
                    problems.push(format!(
                        "{file}: column {column}: {value:?} is not a {target}.{target_column}"
                    ));
                }
            }
        }
    }
}

/// `value` against the field's type, format and constraints.
fn check_value(field: &Value, value: &str) -> Result<(), String> {
    let kind = field["type"].as_str().unwrap_or("string");
    let number = match kind {
        "string" | "any" => None,
        "number" => Some(value.parse::<f64>().map_err(|_| "not a number")?),
        "integer" => Some(value.parse::<i64>().map_err(|_| "not an integer")? as f64),
        "boolean" => {
            // Frictionless' default true and false values.
            const BOOLEANS: [&str; 8] =
                ["true", "True", "TRUE", "1", "false", "False", "FALSE", "0"];
            BOOLEANS
                .contains(&value)
                .then_some(None)
                .ok_or("not a boolean")?
        }
        "datetime" => {
            check_datetime(value, field["format"].as_str())?;
            None
        }
        "date" => {
            check_date(value)?;
            None
        }
        other => return Err(format!("the validator does not know type {other}")),
    };
    let c = &field["constraints"];
    if let Some(options) = c["enum"].as_array() {
        if !options.iter().any(|o| o.as_str() == Some(value)) {
            return Err(format!("not one of {options:?}"));
        }
    }
    if let Some(n) = number {
        if c["minimum"].as_f64().is_some_and(|min| n < min) {
            return Err(format!("below the minimum {}", c["minimum"]));
        }
        if c["maximum"].as_f64().is_some_and(|max| n > max) {
            return Err(format!("above the maximum {}", c["maximum"]));
        }
    }
    if let Some(pattern) = c["pattern"].as_str() {
        let regex = Regex::new(pattern).map_err(|e| format!("bad pattern {pattern}: {e}"))?;
        if !regex.is_match(value).map_err(|e| e.to_string())? {
            return Err(format!("does not match {pattern}"));
        }
    }
    Ok(())
}

/// `YYYY-MM-DD` with a valid month and day.
pub fn check_date(value: &str) -> Result<(), String> {
    let parts: Vec<&str> = value.split('-').collect();
    let ok = matches!(parts.as_slice(), [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2)
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))
        && (1..=12).contains(&parts[1].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&parts[2].parse::<u32>().unwrap_or(0));
    ok.then_some(())
        .ok_or_else(|| "not a date YYYY-MM-DD".to_string())
}

/// The schema's `%Y-%m-%dT%H:%M:%S%z` (an offset `+HHMM`, `+HH:MM` or `Z`).
fn check_datetime(value: &str, format: Option<&str>) -> Result<(), String> {
    if format != Some("%Y-%m-%dT%H:%M:%S%z") {
        return Err(format!(
            "the validator does not know datetime format {format:?}"
        ));
    }
    let error = || "not a datetime %Y-%m-%dT%H:%M:%S%z".to_string();
    let (date, rest) = value.split_once('T').ok_or_else(error)?;
    check_date(date).map_err(|_| error())?;
    if rest.len() < 9 {
        return Err(error());
    }
    let (clock, offset) = rest.split_at(8);
    let clock: Vec<u32> = clock.split(':').map(|p| p.parse().unwrap_or(99)).collect();
    if !matches!(clock.as_slice(), [h, m, s] if *h < 24 && *m < 60 && *s < 60) {
        return Err(error());
    }
    let digits = offset.get(1..).unwrap_or_default().replace(':', "");
    let offset_ok = offset == "Z"
        || (offset.starts_with(['+', '-'])
            && digits.len() == 4
            && digits.bytes().all(|b| b.is_ascii_digit()));
    offset_ok.then_some(()).ok_or_else(error)
}
