//! Where a key sits in a profile's text: byte spans from the TOML parser turned into the
//! dotted key (`source.fps`) and the 1-based line and column an error message names.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// A 1-based line and column in the profile text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text` (clamped to the end of the text).
    pub fn of_offset(text: &str, offset: usize) -> Self {
        let before = &text[..floor_char_boundary(text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Self { line, column }
    }
}

fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut i = offset.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The dotted key whose key or value covers byte `offset`, the innermost one, if any
/// (`source.fpss` for an unknown key `fpss` in `[source]`).
pub fn key_at(text: &str, offset: usize) -> Option<String> {
    let document = DeTable::parse(text).ok()?;
    key_in_table(document.get_ref(), offset)
}

fn key_in_table(table: &DeTable<'_>, offset: usize) -> Option<String> {
    for (key, value) in table.iter() {
        let covers = |span: Range<usize>| span.contains(&offset);
        if let Some(inner) = key_in_value(value, offset) {
            return Some(format!("{}.{inner}", key.get_ref()));
        }
        if covers(key.span()) || covers(value.span()) {
            return Some(key.get_ref().to_string());
        }
    }
    None
}

fn key_in_value(value: &Spanned<DeValue<'_>>, offset: usize) -> Option<String> {
    match value.get_ref() {
        DeValue::Table(table) => key_in_table(table, offset),
        DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let inner = key_in_value(item, offset);
            match inner {
                Some(inner) => Some(format!("{i}.{inner}")),
                None if item.span().contains(&offset) => Some(i.to_string()),
                None => None,
            }
        }),
        _ => None,
    }
}

/// The span of the value at the dotted `key` (`decision.thresholds.blank`), or failing that of
/// the closest enclosing table that is written in the text.
pub fn span_of(text: &str, key: &str) -> Option<Range<usize>> {
    let document = DeTable::parse(text).ok()?;
    let mut table = document.get_ref();
    let mut found = None;
    for part in key.split('.') {
        let Some((k, value)) = table.iter().find(|(k, _)| k.get_ref() == part) else {
            break;
        };
        found = Some(if is_table(value) {
            k.span()
        } else {
            value.span()
        });
        match value.get_ref() {
            DeValue::Table(inner) => table = inner,
            _ => break,
        }
    }
    found
}

fn is_table(value: &Spanned<DeValue<'_>>) -> bool {
    matches!(value.get_ref(), DeValue::Table(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[source]\nkind = \"v4l2\"\nfps = 5\n\n[decision.thresholds]\nblank = 0.7\n";

    #[test]
    fn positions_count_lines_and_columns_from_one() {
        assert_eq!(
            Position::of_offset(TEXT, 0),
            Position { line: 1, column: 1 }
        );
        let fps = TEXT.find("fps").unwrap();
        assert_eq!(
            Position::of_offset(TEXT, fps + 6),
            Position { line: 3, column: 7 }
        );
    }

    #[test]
    fn key_at_names_the_innermost_key() {
        let offset = TEXT.find("0.7").unwrap();
        assert_eq!(
            key_at(TEXT, offset).as_deref(),
            Some("decision.thresholds.blank")
        );
        let offset = TEXT.find("fps").unwrap();
        assert_eq!(key_at(TEXT, offset).as_deref(), Some("source.fps"));
    }

    #[test]
    fn span_of_finds_values_and_falls_back_to_the_table() {
        let span = span_of(TEXT, "source.fps").unwrap();
        assert_eq!(&TEXT[span], "5");
        let span = span_of(TEXT, "source.width").unwrap();
        assert_eq!(&TEXT[span], "source");
        assert_eq!(span_of(TEXT, "motion.enabled"), None);
    }
}
