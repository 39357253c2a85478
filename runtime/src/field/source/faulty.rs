//! A fault injector: wraps a real source and makes it misbehave on cue, for the field loop's
//! tests and for demos. It injects the two faults the field sees most: the camera vanishing for a
//! while (a loose USB cable), and corrupt frames.
//!
//! A corrupt frame goes through the real failure path: the frame is encoded as JPEG, cut in half
//! and decoded with the runtime's decoder, so the loop sees exactly the [`FailedFrame`] a
//! truncated picture on an SD card gives.

use std::collections::BTreeSet;
use std::io::{self, Cursor};
use std::path::Path;

use super::{FailedFrame, FrameError, FrameSource, SourceError, SourceEvent};
use crate::field::frame::Frame;
use crate::image_io::decode_rgb;

/// A stretch of calls during which the wrapped device is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outage {
    /// First call (counting from 0) that fails.
    from_call: u64,
    /// Number of calls that fail.
    calls: u64,
}

/// A source that fails as told, passing everything else through.
#[derive(Debug)]
pub struct Faulty<S> {
    inner: S,
    /// `next_frame` calls so far.
    calls: u64,
    outages: Vec<Outage>,
    /// Sequence numbers of the frames to corrupt.
    corrupt: BTreeSet<u64>,
}

impl<S: FrameSource> Faulty<S> {
    /// A wrapper that injects nothing yet.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            calls: 0,
            outages: Vec::new(),
            corrupt: BTreeSet::new(),
        }
    }

    /// The device vanishes at call `from_call` (counting from 0): that call and the next
    /// `calls − 1` return [`SourceError::Disconnected`] without touching the wrapped source;
    /// then it is back and continues where it was.
    pub fn vanish(mut self, from_call: u64, calls: u64) -> Self {
        self.outages.push(Outage { from_call, calls });
        self
    }

    /// The frame with this sequence number arrives corrupt.
    pub fn corrupt(mut self, sequence: u64) -> Self {
        self.corrupt.insert(sequence);
        self
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn in_outage(&self, call: u64) -> bool {
        self.outages
            .iter()
            .any(|o| (o.from_call..o.from_call.saturating_add(o.calls)).contains(&call))
    }
}

impl<S: FrameSource> FrameSource for Faulty<S> {
    fn next_frame(&mut self) -> Result<SourceEvent, SourceError> {
        let call = self.calls;
        self.calls += 1;
        if self.in_outage(call) {
            return Err(SourceError::Disconnected {
                device: self.inner.describe(),
                cause: io::Error::other("fault injected: the device vanished"),
            });
        }
        match self.inner.next_frame()? {
            SourceEvent::Frame(f) if self.corrupt.contains(&f.sequence) => Ok(corrupted(f)),
            event => Ok(event),
        }
    }

    fn describe(&self) -> String {
        format!("{} (with injected faults)", self.inner.describe())
    }

    /// Gone after a call of an outage, until a call after it.
    fn is_connected(&self) -> bool {
        let last_call_failed = self.calls > 0 && self.in_outage(self.calls - 1);
        !last_call_failed && self.inner.is_connected()
    }
}

/// The event a truncated copy of `frame` gives: its JPEG, cut in half, through the decoder;
/// for sources of tests that corrupt frames on their own schedule.
pub fn corrupted(frame: Frame) -> SourceEvent {
    let mut jpeg = Cursor::new(Vec::new());
    if let Err(e) = frame.image.write_to(&mut jpeg, image::ImageFormat::Jpeg) {
        // Encoding an in-memory RGB image cannot fail short of running out of memory; should it,
        // the frame is reported as failed with that error all the same.
        let error = crate::image_io::ImageLoadError::Read {
            path: frame.media.clone().into(),
            source: io::Error::other(e.to_string()),
        };
        return failed(frame, error);
    }
    let bytes = jpeg.into_inner();
    let cut = &bytes[..bytes.len() / 2];
    match decode_rgb(cut, Path::new(&frame.media)) {
        Err(error) => failed(frame, error),
        // A JPEG without its end-of-image marker never decodes (see `image_io`).
        Ok(_) => SourceEvent::Frame(frame),
    }
}

fn failed(frame: Frame, error: crate::image_io::ImageLoadError) -> SourceEvent {
    SourceEvent::Failed(FailedFrame {
        sequence: frame.sequence,
        media: frame.media,
        error: FrameError::Image(error),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::source::synthetic::{SyntheticSettings, SyntheticSource};
    use crate::field::source::SourceErrorKind;

    fn synthetic() -> SyntheticSource {
        SyntheticSource::new(SyntheticSettings {
            size: 32,
            ..SyntheticSettings::new(1, 1, 3)
        })
        .expect("settings")
    }

    /// What each call gave: `F<seq>`, `X<seq>` (failed), `D` (disconnected).
    fn trace(src: &mut impl FrameSource, calls: usize) -> Vec<String> {
        (0..calls)
            .map(|_| match src.next_frame() {
                Ok(SourceEvent::Frame(f)) => format!("F{}", f.sequence),
                Ok(SourceEvent::Failed(f)) => format!("X{}", f.sequence),
                Ok(other) => format!("{other:?}"),
                Err(e) => {
                    assert_eq!(e.kind(), SourceErrorKind::Disconnected);
                    "D".to_owned()
                }
            })
            .collect()
    }

    #[test]
    fn the_device_vanishes_for_n_calls_then_continues() {
        let mut src = Faulty::new(synthetic()).vanish(2, 3);
        assert_eq!(trace(&mut src, 7), ["F0", "F1", "D", "D", "D", "F2", "F3"]);
    }

    #[test]
    fn the_device_is_gone_from_a_call_of_an_outage_to_the_call_after_it() {
        let mut src = Faulty::new(synthetic()).vanish(1, 2);
        let connected: Vec<bool> = (0..4)
            .map(|_| {
                let _ = src.next_frame();
                src.is_connected()
            })
            .collect();
        assert_eq!(connected, [true, false, false, true]);
    }

    #[test]
    fn corrupt_frames_fail_like_a_truncated_file() {
        let mut src = Faulty::new(synthetic()).corrupt(1);
        assert_eq!(trace(&mut src, 3), ["F0", "X1", "F2"]);
        let mut src = Faulty::new(synthetic()).corrupt(0);
        match src.next_frame() {
            Ok(SourceEvent::Failed(f)) => {
                assert!(
                    matches!(
                        f.error,
                        FrameError::Image(crate::image_io::ImageLoadError::Corrupt { .. })
                    ),
                    "{f:?}"
                );
                assert!(f.to_string().contains("synthetic-000000"), "{f}");
            }
            other => panic!("expected a failed frame, got {other:?}"),
        }
    }
}
