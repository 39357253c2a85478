//! The running figures of a station, and the health record made from them.

use std::time::{Duration, SystemTime};

use crate::field::detection_log::{utc, HealthRecord};

/// What the station has done since it started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// Frames taken from the source, decoded or not.
    pub frames: u64,
    /// Frames the model scored (the rest were skipped by the motion gate or failed).
    pub inferences: u64,
    /// Frames the motion gate (or the timelapse cadence) skipped.
    pub skipped: u64,
    /// Frames the source lost: gaps in its sequence numbers (a camera's driver drops frames
    /// while the loop is busy).
    pub dropped: u64,
    /// Recorded failures: frames that did not decode or classify, frames not saved, source
    /// outages, display errors.
    pub failures: u64,
    /// Times the source went away (a camera unplugged, a card pulled).
    pub outages: u64,
    /// Events closed and logged.
    pub events: u64,
    /// Total time spent classifying (preprocessing, image model, scoring).
    pub inference_time: Duration,
    /// The sequence number the source should send next, to count drops.
    expected_sequence: Option<u64>,
}

impl Counters {
    /// Counts a frame with sequence number `sequence`, and the frames lost before it.
    pub fn take(&mut self, sequence: u64) {
        self.frames += 1;
        if let Some(expected) = self.expected_sequence {
            self.dropped += sequence.saturating_sub(expected);
        }
        self.expected_sequence = Some(sequence + 1);
    }

    /// Counts one inference that took `latency`.
    pub fn inference(&mut self, latency: Duration) {
        self.inferences += 1;
        self.inference_time += latency;
    }

    /// Mean inference latency in milliseconds, once there was one.
    pub fn mean_latency_ms(&self) -> Option<f64> {
        (self.inferences > 0)
            .then(|| self.inference_time.as_secs_f64() * 1000.0 / self.inferences as f64)
    }

    /// The health record at wall time `at`, `uptime` after the start.
    pub fn health(
        &self,
        at: SystemTime,
        uptime: Duration,
        saved_frame_bytes: u64,
        disk_free_bytes: Option<u64>,
        temperature_c: Option<f32>,
    ) -> HealthRecord {
        HealthRecord {
            at: utc(at),
            uptime_s: uptime.as_secs(),
            frames: self.frames,
            inferences: self.inferences,
            skipped_by_gate: self.skipped,
            dropped_frames: self.dropped,
            outages: self.outages,
            events: self.events,
            failures: self.failures,
            saved_frame_bytes,
            mean_latency_ms: self.mean_latency_ms(),
            disk_free_bytes,
            temperature_c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_in_sequence_numbers_are_dropped_frames() {
        let mut c = Counters::default();
        for sequence in [0, 1, 4, 5, 9] {
            c.take(sequence);
        }
        assert_eq!((c.frames, c.dropped), (5, 5));
    }

    #[test]
    fn mean_latency_needs_an_inference() {
        let mut c = Counters::default();
        assert_eq!(c.mean_latency_ms(), None);
        c.inference(Duration::from_millis(10));
        c.inference(Duration::from_millis(30));
        assert_eq!(c.mean_latency_ms(), Some(20.0));
    }
}
