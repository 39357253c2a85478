//! A source over a device that can vanish: it opens the device through a [`Connect`], and when
//! the device is lost (or cannot be opened) it reports [`SourceError::Disconnected`] once per
//! attempt and tries again after a capped exponential [`Backoff`], measured on an injected
//! [`Clock`]. While waiting it answers [`SourceEvent::Idle`] at once, so the loop stays
//! responsive (shutdown, display) and tests never sleep.

use super::backoff::Backoff;
use super::{FrameSource, SourceError, SourceErrorKind, SourceEvent};
use crate::field::clock::Clock;

/// Opens a device as a frame source.
pub trait Connect {
    /// The open device.
    type Source: FrameSource;

    /// Opens the device; its frames are numbered from `first_sequence` so that numbers stay
    /// unique across reconnections. A missing or failing device is [`SourceError::Disconnected`];
    /// a setting it refuses is a [`SourceErrorKind::Config`] error.
    fn connect(&mut self, first_sequence: u64) -> Result<Self::Source, SourceError>;

    /// The device, for logs, e.g. `V4L2 /dev/video0`.
    fn describe(&self) -> String;
}

/// Whether the device is open, and if not, when to try again.
#[derive(Debug)]
enum State<S> {
    Open(S),
    /// Closed; the next attempt is due at this clock time.
    Waiting(std::time::Duration),
}

/// A frame source that reopens its device after it vanishes.
#[derive(Debug)]
pub struct Reconnecting<C: Connect, K: Clock> {
    connector: C,
    clock: K,
    backoff: Backoff,
    state: State<C::Source>,
    /// Sequence number of the next frame, carried across reconnections.
    next_sequence: u64,
    /// Whether a frame arrived since the last (re)connection; only then is the backoff reset,
    /// so a device that opens and fails at once is not retried at full speed.
    delivered: bool,
}

impl<C: Connect, K: Clock> Reconnecting<C, K> {
    /// A source that will open the device on the first call.
    pub fn new(connector: C, clock: K, backoff: Backoff) -> Self {
        Self {
            connector,
            clock,
            backoff,
            state: State::Waiting(std::time::Duration::ZERO),
            next_sequence: 0,
            delivered: false,
        }
    }

    /// Whether the device is open now.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// Closes the device and schedules the next attempt; returns `err` for the caller.
    fn lost(&mut self, err: SourceError) -> SourceError {
        let delay = self.backoff.next_delay();
        self.state = State::Waiting(self.clock.monotonic() + delay);
        self.delivered = false;
        err
    }

    fn read(&mut self) -> Result<SourceEvent, SourceError> {
        let State::Open(source) = &mut self.state else {
            return Ok(SourceEvent::Idle);
        };
        match source.next_frame() {
            Ok(event) => {
                self.note(&event);
                Ok(event)
            }
            Err(e) if e.kind() == SourceErrorKind::Disconnected => Err(self.lost(e)),
            Err(e) => Err(e),
        }
    }

    /// Advances the sequence past each delivered or failed frame.
    fn note(&mut self, event: &SourceEvent) {
        let seq = match event {
            SourceEvent::Frame(f) => f.sequence,
            SourceEvent::Failed(f) => f.sequence,
            SourceEvent::Idle | SourceEvent::End => return,
        };
        self.next_sequence = self.next_sequence.max(seq + 1);
        if !self.delivered {
            self.delivered = true;
            self.backoff.reset();
        }
    }
}

impl<C: Connect, K: Clock> FrameSource for Reconnecting<C, K> {
    fn next_frame(&mut self) -> Result<SourceEvent, SourceError> {
        if let State::Waiting(due) = self.state {
            if self.clock.monotonic() < due {
                return Ok(SourceEvent::Idle);
            }
            match self.connector.connect(self.next_sequence) {
                Ok(source) => self.state = State::Open(source),
                Err(e) if e.kind() == SourceErrorKind::Disconnected => return Err(self.lost(e)),
                Err(e) => return Err(e),
            }
        }
        self.read()
    }

    fn describe(&self) -> String {
        match &self.state {
            State::Open(source) => source.describe(),
            State::Waiting(_) => format!("{} (reopening)", self.connector.describe()),
        }
    }

    fn is_connected(&self) -> bool {
        self.is_open()
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::time::Duration;

    use super::*;
    use crate::field::clock::FakeClock;
    use crate::field::frame::{Capture, Frame};

    /// A device that refuses the first `refuse` opens, then gives `per_session` frames per
    /// session before vanishing.
    struct Device {
        refuse: u32,
        per_session: u64,
        opens: u32,
    }

    struct Session {
        next: u64,
        left: u64,
    }

    fn gone() -> SourceError {
        SourceError::Disconnected {
            device: "/dev/video9".to_owned(),
            cause: io::Error::from_raw_os_error(19), // ENODEV
        }
    }

    impl Connect for Device {
        type Source = Session;

        fn connect(&mut self, first_sequence: u64) -> Result<Session, SourceError> {
            self.opens += 1;
            if self.opens <= self.refuse {
                return Err(gone());
            }
            Ok(Session {
                next: first_sequence,
                left: self.per_session,
            })
        }

        fn describe(&self) -> String {
            "test device".to_owned()
        }
    }

    impl FrameSource for Session {
        fn next_frame(&mut self) -> Result<SourceEvent, SourceError> {
            if self.left == 0 {
                return Err(gone());
            }
            self.left -= 1;
            self.next += 1;
            Ok(SourceEvent::Frame(Frame {
                image: image::RgbImage::new(2, 2),
                sequence: self.next - 1,
                media: format!("video9-{:06}", self.next - 1),
                captured: Capture::System(std::time::UNIX_EPOCH),
            }))
        }

        fn describe(&self) -> String {
            "test session".to_owned()
        }
    }

    fn poll(src: &mut Reconnecting<Device, FakeClock>) -> String {
        match src.next_frame() {
            Ok(SourceEvent::Frame(f)) => format!("F{}", f.sequence),
            Ok(other) => format!("{other:?}"),
            Err(e) if e.kind() == SourceErrorKind::Disconnected => "D".to_owned(),
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    #[test]
    fn a_missing_device_is_retried_with_doubling_waits() {
        let clock = FakeClock::default();
        let device = Device {
            refuse: 3,
            per_session: 10,
            opens: 0,
        };
        let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut src = Reconnecting::new(device, clock.clone(), backoff);
        assert_eq!(poll(&mut src), "D"); // open 1 refused; next try in 0.5 s
        clock.advance(Duration::from_millis(499));
        assert_eq!(poll(&mut src), "Idle");
        clock.advance(Duration::from_millis(1));
        assert_eq!(poll(&mut src), "D"); // open 2 refused; next in 1 s
        clock.advance(Duration::from_millis(999));
        assert_eq!(poll(&mut src), "Idle");
        clock.advance(Duration::from_millis(1));
        assert_eq!(poll(&mut src), "D"); // open 3 refused; next in 2 s
        clock.advance(Duration::from_secs(2));
        assert_eq!(poll(&mut src), "F0");
        assert!(src.is_open());
        assert_eq!(src.connector.opens, 4);
    }

    #[test]
    fn a_vanished_device_is_reopened_and_numbering_continues() {
        let clock = FakeClock::default();
        let device = Device {
            refuse: 0,
            per_session: 2,
            opens: 0,
        };
        let mut src = Reconnecting::new(device, clock.clone(), Backoff::camera());
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(poll(&mut src));
            seen.push(poll(&mut src));
            seen.push(poll(&mut src));
            // Frames were delivered in the session, so the wait is back at its start.
            clock.advance(Backoff::CAMERA_INITIAL);
        }
        assert_eq!(
            seen,
            ["F0", "F1", "D", "F2", "F3", "D", "F4", "F5", "D", "F6", "F7", "D"]
        );
        assert!(!src.is_open());
        assert!(src.describe().contains("reopening"), "{}", src.describe());
    }

    #[test]
    fn the_device_is_connected_from_its_reopening_until_it_is_lost() {
        let clock = FakeClock::default();
        let device = Device {
            refuse: 1,
            per_session: 1,
            opens: 0,
        };
        let mut src = Reconnecting::new(device, clock.clone(), Backoff::camera());
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push((poll(&mut src), src.is_connected()));
            clock.advance(Backoff::CAMERA_INITIAL / 2);
        }
        let expected = [("D", false), ("Idle", false), ("F0", true), ("D", false)];
        let expected: Vec<(String, bool)> =
            expected.iter().map(|(e, c)| (e.to_string(), *c)).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn the_wait_is_capped() {
        let clock = FakeClock::default();
        let device = Device {
            refuse: u32::MAX,
            per_session: 0,
            opens: 0,
        };
        let mut src = Reconnecting::new(device, clock.clone(), Backoff::camera());
        for _ in 0..12 {
            assert_eq!(poll(&mut src), "D");
            clock.advance(Backoff::CAMERA_MAX);
        }
        assert_eq!(src.connector.opens, 12);
    }
}
