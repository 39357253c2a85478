//! What a station takes over from the run before it: the event that was open when that run
//! ended without closing it (a power cut, SIGKILL). Its frames are in the log as frame records,
//! but no event record names them; they are grouped again at start and logged as events, so a
//! dying battery does not cost the last sighting.

use std::collections::HashSet;

use crate::field::decision::DecidedFrame;
use crate::field::detection_log::{Entry, Record};
use crate::timestamp::parse_rfc3339;

/// The animal frames of the log that no event record names, in log order.
pub fn unfinished_frames(entries: &[Entry]) -> Vec<DecidedFrame> {
    let in_events: HashSet<&str> = entries
        .iter()
        .filter_map(|entry| match &entry.record {
            Record::Event(event) => Some(event.media_ids.iter().map(String::as_str)),
            _ => None,
        })
        .flatten()
        .collect();
    entries
        .iter()
        .filter_map(|entry| match &entry.record {
            Record::Frame(frame)
                if frame.outcome.is_animal() && !in_events.contains(frame.media_id.as_str()) =>
            {
                Some(DecidedFrame {
                    media_id: frame.media_id.clone(),
                    // Written by this runtime, so it parses; a hand-edited line that does not
                    // is left out rather than guessed at.
                    captured: parse_rfc3339(&frame.captured)?,
                    outcome: frame.outcome.clone(),
                })
            }
            _ => None,
        })
        .collect()
}
