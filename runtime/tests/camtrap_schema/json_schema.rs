//! The JSON Schema (draft 4) subset the Camtrap DP profile uses.

use std::collections::HashSet;

use fancy_regex::Regex;
use serde_json::Value;

use super::table::check_date;

/// Pushes every way `value` breaks `schema` onto `problems`; `root` resolves `#/…` refs.
pub fn validate(value: &Value, schema: &Value, root: &Value, at: &str, problems: &mut Vec<String>) {
    let Some(rules) = schema.as_object() else {
        return;
    };
    if let Some(reference) = rules.get("$ref").and_then(Value::as_str) {
        if let Some(pointer) = reference.strip_prefix('#') {
            let target = root
                .pointer(pointer)
                .unwrap_or_else(|| panic!("unresolved $ref {reference}"));
            validate(value, target, root, at, problems);
        }
        // External refs (Frictionless' data-package.json, GeoJSON) are not fetched.
    }
    if let Some(kind) = rules.get("type").and_then(Value::as_str) {
        if !has_type(value, kind) {
            problems.push(format!("{at}: expected {kind}, got {value}"));
            return;
        }
    }
    if let Some(options) = rules.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            problems.push(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    check_string(value, rules, at, problems);
    check_object(value, rules, root, at, problems);
    check_array(value, rules, root, at, problems);
    for sub in rules
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        validate(value, sub, root, at, problems);
    }
    if let Some(options) = rules.get("oneOf").and_then(Value::as_array) {
        let passing = options.iter().filter(|s| passes(value, s, root)).count();
        if passing != 1 {
            problems.push(format!(
                "{at}: matches {passing} of the oneOf schemas, not exactly 1"
            ));
        }
    }
    if let Some(not) = rules.get("not") {
        if passes(value, not, root) {
            problems.push(format!("{at}: matches a schema it must not match"));
        }
    }
}

fn passes(value: &Value, schema: &Value, root: &Value) -> bool {
    let mut problems = Vec::new();
    validate(value, schema, root, "", &mut problems);
    problems.is_empty()
}

fn has_type(value: &Value, kind: &str) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}

fn check_string(
    value: &Value,
    rules: &serde_json::Map<String, Value>,
    at: &str,
    problems: &mut Vec<String>,
) {
    let Some(text) = value.as_str() else {
        return;
    };
    if let Some(pattern) = rules.get("pattern").and_then(Value::as_str) {
        let regex = Regex::new(pattern).expect("the profile's patterns compile");
        if !regex.is_match(text).unwrap_or(false) {
            problems.push(format!("{at}: {text:?} does not match {pattern}"));
        }
    }
    match rules.get("format").and_then(Value::as_str) {
        Some("date") if check_date(text).is_err() => {
            problems.push(format!("{at}: {text:?} is not a date"));
        }
        Some("uri") if !is_uri(text) => problems.push(format!("{at}: {text:?} is not a URI")),
        _ => {}
    }
}

/// `scheme:rest` with an RFC 3986 scheme.
fn is_uri(text: &str) -> bool {
    text.split_once(':').is_some_and(|(scheme, rest)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            && !rest.is_empty()
            && !text.contains(char::is_whitespace)
    })
}

fn check_object(
    value: &Value,
    rules: &serde_json::Map<String, Value>,
    root: &Value,
    at: &str,
    problems: &mut Vec<String>,
) {
    let Some(object) = value.as_object() else {
        return;
    };
    for key in rules
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = key.as_str().unwrap_or_default();
        if !object.contains_key(key) {
            problems.push(format!("{at}: required key {key} is missing"));
        }
    }
    for (key, sub) in rules
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(v) = object.get(key) {
            validate(v, sub, root, &format!("{at}.{key}"), problems);
        }
    }
}

fn check_array(
    value: &Value,
    rules: &serde_json::Map<String, Value>,
    root: &Value,
    at: &str,
    problems: &mut Vec<String>,
) {
    let Some(items) = value.as_array() else {
        return;
    };
    if let Some(min) = rules.get("minItems").and_then(Value::as_u64) {
        if (items.len() as u64) < min {
            problems.push(format!(
                "{at}: {} items, at least {min} required",
                items.len()
            ));
        }
    }
    if rules.get("uniqueItems") == Some(&Value::Bool(true)) {
        let distinct: HashSet<String> = items.iter().map(Value::to_string).collect();
        if distinct.len() != items.len() {
            problems.push(format!("{at}: items repeat"));
        }
    }
    if let Some(item_schema) = rules.get("items") {
        for (i, item) in items.iter().enumerate() {
            validate(item, item_schema, root, &format!("{at}[{i}]"), problems);
        }
    }
}
