//! Reading a log line by line: the entries that parse, the lines that do not, and where the
//! last complete, parseable line ends (the length a torn log is cut back to).

use std::io::BufRead;

use super::record::Entry;

/// A line that is not a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineProblem {
    /// 1-based line number.
    pub line: usize,
    /// Byte offset of the line's start.
    pub offset: u64,
    /// Why it is not a record.
    pub error: String,
}

/// What a scan found.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// Entries that parsed, in file order.
    pub entries: Vec<Entry>,
    /// Lines before the last that did not parse: real corruption.
    pub corrupt: Vec<LineProblem>,
    /// The last line, when it has no newline or does not parse: a write cut short.
    pub torn: Option<LineProblem>,
    /// Length up to the end of the last line that is not torn.
    pub good_len: u64,
}

/// Scans `reader` to the end.
pub(super) fn scan(mut reader: impl BufRead) -> std::io::Result<Scan> {
    let mut result = Scan::default();
    let mut line = Vec::new();
    let mut offset = 0u64;
    let mut number = 0;
    // A bad line is only corruption once a later line shows it was not the last.
    let mut pending: Option<LineProblem> = None;
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        number += 1;
        if let Some(problem) = pending.take() {
            result.corrupt.push(problem);
            result.good_len = offset;
        }
        let complete = line.last() == Some(&b'\n');
        match parse(&line) {
            Ok(entry) if complete => {
                result.entries.push(entry);
                result.good_len = offset + read as u64;
            }
            Ok(_) => {
                pending = Some(LineProblem {
                    line: number,
                    offset,
                    error: "no newline at the end (write cut short)".into(),
                });
            }
            Err(error) => {
                pending = Some(LineProblem {
                    line: number,
                    offset,
                    error,
                });
            }
        }
        offset += read as u64;
    }
    result.torn = pending;
    Ok(result)
}

fn parse(line: &[u8]) -> Result<Entry, String> {
    let text = std::str::from_utf8(line).map_err(|e| format!("not UTF-8: {e}"))?;
    serde_json::from_str(text.trim_end_matches('\n')).map_err(|e| e.to_string())
}
