//! Capped exponential backoff: how long to wait before the next attempt to reopen a device.

use std::time::Duration;

/// Delays that start at `initial`, double after each failed attempt and stop growing at `max`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A camera's first reopen attempt waits half a second: a USB camera that glitched is
    /// usually back by then.
    pub const CAMERA_INITIAL: Duration = Duration::from_millis(500);
    /// Waits never exceed 30 s, so a camera plugged back in is used again within half a minute,
    /// while a missing one costs at most two open attempts a minute.
    pub const CAMERA_MAX: Duration = Duration::from_secs(30);

    /// Delays from `initial` doubling to at most `max` (`max` is raised to `initial` if lower).
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            next: initial,
        }
    }

    /// The camera schedule: 0.5 s, 1 s, 2 s, ... 16 s, then 30 s.
    pub fn camera() -> Self {
        Self::new(Self::CAMERA_INITIAL, Self::CAMERA_MAX)
    }

    /// The wait before the next attempt; the one after will be twice as long, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Back to the initial delay, after a success.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_backoff_doubles_from_half_a_second_to_thirty() {
        let mut b = Backoff::camera();
        let secs: Vec<f64> = (0..9).map(|_| b.next_delay().as_secs_f64()).collect();
        assert_eq!(secs, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(500));
    }
}
