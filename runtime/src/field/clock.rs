//! The field loop's time, one trait for every part that reads it: a monotonic reading for
//! intervals (a source's polling and reconnection backoff, health records, display redraws,
//! inference latency), the wall clock for what the log says and for closing an event while a
//! live source is idle, and the wait when the source has nothing. Parts take it as a value, so
//! that tests drive hours of a camera's life in milliseconds with a [`FakeClock`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Where a part reads the time and how it waits.
pub trait Clock: Send {
    /// Time since the clock's start; never goes backwards.
    fn monotonic(&self) -> Duration;
    /// Now, as the system's calendar says.
    fn wall(&self) -> SystemTime;
    /// Waits for `d`.
    fn sleep(&self, d: Duration);
}

/// The machine's clocks, the monotonic one started when created.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    /// A clock whose monotonic reading is zero now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn monotonic(&self) -> Duration {
        self.start.elapsed()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A clock that moves only when told to or slept on; clones share one time, so a test keeps one
/// handle and gives another to the part under test. Both readings move together: the
/// monotonic one is the fake time elapsed, the wall one its start plus the same.
#[derive(Clone, Debug)]
pub struct FakeClock {
    wall_start: SystemTime,
    elapsed: Arc<Mutex<Duration>>,
}

impl FakeClock {
    /// A clock whose wall time starts at `wall_start`.
    pub fn new(wall_start: SystemTime) -> Self {
        Self {
            wall_start,
            elapsed: Arc::new(Mutex::new(Duration::ZERO)),
        }
    }

    /// Moves time on by `d`.
    pub fn advance(&self, d: Duration) {
        *self.lock() += d;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Duration> {
        // Nothing can leave the duration half-written, so a poisoned lock is still good.
        self.elapsed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for FakeClock {
    /// A clock starting at the Unix epoch.
    fn default() -> Self {
        Self::new(SystemTime::UNIX_EPOCH)
    }
}

impl Clock for FakeClock {
    fn monotonic(&self) -> Duration {
        *self.lock()
    }
    fn wall(&self) -> SystemTime {
        self.wall_start + self.monotonic()
    }
    fn sleep(&self, d: Duration) {
        self.advance(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fake_clock_moves_only_when_told_and_its_clones_share_it() {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let clock = FakeClock::new(wall);
        let other = clock.clone();
        assert_eq!(clock.monotonic(), Duration::ZERO);
        other.sleep(Duration::from_secs(90));
        clock.advance(Duration::from_millis(500));
        assert_eq!(clock.monotonic(), Duration::from_millis(90_500));
        assert_eq!(other.wall(), wall + Duration::from_millis(90_500));
    }

    #[test]
    fn the_system_clock_never_goes_backwards() {
        let clock = SystemClock::new();
        let a = clock.monotonic();
        assert!(clock.monotonic() >= a);
    }
}
