//! A camera trap's month on a [`FakeClock`], for the station's long run (`month.rs`): what the
//! camera would photograph, when its cable works loose, when the card is full and when the
//! service is stopped, and a ledger of what the camera really delivered, to hold the detection
//! log against.
//!
//! The camera photographs in bursts of [`BURST_LEN`] frames one second apart when something
//! passes: most often at dawn and dusk, less by day, least at night, when its frames have the
//! infrared look. A burst is one burst of the synthetic world (one species, or none: by day
//! wind and sun set the trigger off more often). Every few hours the device vanishes (ENODEV)
//! for seconds to most of an hour, and the station reopens it through the runtime's own
//! [`Reconnecting`] with the camera backoff. Frames captured while the device is gone or the
//! service is down are never seen, as on a real camera; the ledger counts them as missed. Now
//! and then a frame arrives corrupt (a USB transfer error), through the runtime's own
//! truncated-JPEG path.

use std::cell::RefCell;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use xrvlm_runtime::field::clock::{Clock, FakeClock};
use xrvlm_runtime::field::config::UtcOffset;
use xrvlm_runtime::field::frame::{Capture, Frame};
use xrvlm_runtime::field::frame_store::{FileWriter, FrameWriter};
use xrvlm_runtime::field::source::backoff::Backoff;
use xrvlm_runtime::field::source::faulty::corrupted;
use xrvlm_runtime::field::source::reconnect::{Connect, Reconnecting};
use xrvlm_runtime::field::source::synthetic::{SyntheticSettings, SyntheticSource};
use xrvlm_runtime::field::source::{FrameSource, SourceError, SourceEvent};
use xrvlm_synth::random::{chance, keyed_rng, log_uniform, uniform};

/// Days simulated.
pub const DAYS: u64 = 30;
/// 2024-06-01T00:00:00+01:00: the month starts at midnight at the test site (offset +01:00).
pub const START_UNIX: u64 = 1_717_196_400;
/// Frames per trigger, one second apart (a camera trap's usual "3 shots" setting).
pub const BURST_LEN: u32 = 3;
/// Local hours of sunrise and sunset: frames outside them are infrared.
const SUNRISE_H: u64 = 6;
const SUNSET_H: u64 = 20;
/// Fractions of blank triggers: by day wind and sun set the camera off, at night less so.
const DAY_BLANK_FRACTION: f64 = 0.3;
const NIGHT_BLANK_FRACTION: f64 = 0.1;
/// Every this many frames, one arrives corrupt (a USB transfer error).
const CORRUPT_EVERY: u64 = 40;
/// Time between two vanishings of the device, drawn uniformly.
const VANISH_EVERY_H: Range<f32> = 2.0..7.0;
/// How long the device stays away: log-uniform, so that short glitches are the most common.
const VANISH_FOR_S: Range<f32> = 5.0..2700.0;
/// The card is full (another program's files) from the morning of day 16 to the evening of
/// day 17, and the station's saves are refused while it is.
const CARD_FULL_H: Range<u64> = 15 * 24 + 6..16 * 24 + 18;
/// SIGTERMs: (hours into the month, whether it comes during the next burst, after its second
/// frame, downtime before the service is started again).
const SIGTERMS: [(u64, bool, u64); 5] = [
    (3 * 24 + 9, true, 45),
    (8 * 24 + 2, false, 180),
    (13 * 24 + 17, true, 20 * 60),
    (19 * 24 + 12, false, 90),
    (24 * 24 + 19, true, 45 * 60),
];
/// Domain tags of the month's random streams, keyed by (hour, 0, 0) or (vanishing, 0, 0).
const DOMAIN_TRIGGER: u64 = 0x4d4f_4e54_4854_5231;
const DOMAIN_VANISH: u64 = 0x4d4f_4e54_4856_4e31;

/// The first instant of the month.
pub fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(START_UNIX)
}

/// Chance that an hour (local) holds a trigger: crepuscular animals make dawn and dusk the
/// busiest, nights the quietest. Three triggers a day at most on average (this month draws
/// 75, 225 frames): the model's frames are most of the test's time, twelve times more under
/// CI's emulated aarch64 (10 s against 2 min).
fn trigger_chance(local_hour: u64) -> f64 {
    match local_hour {
        5 | 6 | 19 | 20 => 0.35,
        7..=18 => 0.1,
        _ => 0.05,
    }
}

/// One frame the camera takes if it is there to take it.
#[derive(Clone, Copy, Debug)]
struct Shot {
    /// Frame number in the synthetic world (its burst is `index / BURST_LEN`).
    index: u64,
    at: SystemTime,
    night: bool,
    corrupt: bool,
}

/// A SIGTERM and how long the service stays down after it.
#[derive(Clone, Copy, Debug)]
struct Sigterm {
    at: SystemTime,
    downtime: Duration,
}

/// A frame the camera delivered. Plain data in a vector allocated up front, so that the
/// ledger does not grow the heap whose growth the test measures.
#[derive(Clone, Copy, Debug)]
struct Delivered {
    /// The run of the service that took it, from 0.
    run: usize,
    /// Its sequence number from the device.
    sequence: u64,
    at: SystemTime,
    night: bool,
    corrupt: bool,
}

/// A frame as the detection log names it: its media name and, unless it arrived corrupt (a
/// decode failure), its capture time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The frame's media name (`trap0-000042`).
    pub media: String,
    /// The capture time, local RFC 3339; `None` for a corrupt frame.
    pub captured: Option<String>,
}

/// What the camera did, as the camera saw it.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Runs of the service so far.
    pub runs: usize,
    /// The frames delivered, in order.
    delivered: Vec<Delivered>,
    /// Frames taken while the device was gone or the service down.
    pub missed: u64,
    /// Times the station lost the camera (an open device died, or the first open of a run was
    /// refused): one outage each, since the camera had been up.
    pub losses: u64,
    /// Times the camera was opened again after a loss.
    pub reconnects: u64,
    /// Losses still unresolved when a run ended (the next run opens the camera afresh).
    pub lost_at_stop: u64,
    /// Frame writes the full card refused.
    pub refused_writes: u64,
    /// Whether the camera is lost now (in this run).
    gone: bool,
}

/// The month: schedule, faults, and the ledger.
pub struct Trap {
    clock: FakeClock,
    site: UtcOffset,
    day: SyntheticSource,
    night: SyntheticSource,
    shots: Vec<Shot>,
    /// The first shot neither delivered nor missed yet.
    next_shot: usize,
    vanishings: Vec<Range<SystemTime>>,
    card_full: Range<SystemTime>,
    /// Pending, in time order.
    sigterms: Vec<Sigterm>,
    /// Downtime after the last SIGTERM.
    restart_after: Duration,
    /// When the open session was opened (none while the device is closed).
    open_since: Option<SystemTime>,
    end: SystemTime,
    /// What happened.
    pub ledger: Ledger,
}

/// The month, shared by the test, the camera and the card of each run.
pub type Shared = Rc<RefCell<Trap>>;

impl Trap {
    /// The month of world 1, seed 9 (the demo bundle's 12 species), at `site`, on `clock`.
    pub fn new(clock: FakeClock, site: UtcOffset) -> Shared {
        let world = |night_fraction, empty_fraction| {
            SyntheticSource::new(SyntheticSettings {
                night_fraction,
                empty_fraction,
                burst_len: BURST_LEN,
                ..SyntheticSettings::new(1, 9, 12)
            })
            .expect("synthetic settings")
        };
        let shots = schedule(site);
        let sigterms = sigterms(&shots);
        let at_hour = |h: u64| start() + Duration::from_secs(h * 3600);
        Rc::new(RefCell::new(Self {
            clock,
            site,
            day: world(0.0, DAY_BLANK_FRACTION),
            night: world(1.0, NIGHT_BLANK_FRACTION),
            ledger: Ledger {
                delivered: Vec::with_capacity(shots.len()),
                ..Ledger::default()
            },
            shots,
            next_shot: 0,
            vanishings: vanishings(),
            card_full: at_hour(CARD_FULL_H.start)..at_hour(CARD_FULL_H.end),
            sigterms,
            restart_after: Duration::ZERO,
            open_since: None,
            end: at_hour(DAYS * 24),
        }))
    }

    /// Frames the camera would take in the month.
    pub fn shots(&self) -> usize {
        self.shots.len()
    }

    /// Frames delivered at night (infrared).
    pub fn delivered_at_night(&self) -> usize {
        self.ledger.delivered.iter().filter(|d| d.night).count()
    }

    /// Triggers (bursts) in the month.
    pub fn triggers(&self) -> usize {
        self.shots.len() / BURST_LEN as usize
    }

    /// Times the device vanishes in the month (some while the service is down).
    pub fn vanishings(&self) -> usize {
        self.vanishings.len()
    }

    /// How long the service stays down after the SIGTERM that stopped it.
    pub fn restart_after(&self) -> Duration {
        self.restart_after
    }

    /// A new run of the service starts: its camera is not open yet.
    pub fn begin_run(&mut self) {
        self.end_run();
        self.ledger.runs += 1;
        self.open_since = None;
    }

    /// Frames delivered in the whole month.
    pub fn delivered(&self) -> usize {
        self.ledger.delivered.len()
    }

    /// The frames run `run` delivered, in order, as the log names them.
    pub fn delivered_in(&self, run: usize) -> Vec<Seen> {
        self.ledger
            .delivered
            .iter()
            .filter(|d| d.run == run)
            .map(|d| Seen {
                media: media_name(d.sequence),
                captured: (!d.corrupt).then(|| self.site.rfc3339(d.at)),
            })
            .collect()
    }

    /// The month is over: what was not delivered was missed.
    pub fn finish(&mut self) {
        self.end_run();
        self.ledger.missed += (self.shots.len() - self.next_shot) as u64;
        self.next_shot = self.shots.len();
    }

    fn end_run(&mut self) {
        self.ledger.lost_at_stop += u64::from(std::mem::take(&mut self.ledger.gone));
    }

    fn now(&self) -> SystemTime {
        self.clock.wall()
    }

    fn present(&self, t: SystemTime) -> bool {
        !self.vanishings.iter().any(|v| v.contains(&t))
    }

    /// Whether the device vanished after `since` (up to now), even if it is back already: an
    /// open device that was unplugged is dead.
    fn vanished_since(&self, since: SystemTime) -> bool {
        let now = self.now();
        self.vanishings
            .iter()
            .any(|v| v.start > since && v.start <= now)
    }

    fn lose(&mut self) {
        self.open_since = None;
        if !std::mem::replace(&mut self.ledger.gone, true) {
            self.ledger.losses += 1;
        }
    }

    /// Opens the device now, if it is there.
    fn open(&mut self) -> Option<SystemTime> {
        let now = self.now();
        if !self.present(now) {
            self.lose();
            return None;
        }
        if std::mem::replace(&mut self.ledger.gone, false) {
            self.ledger.reconnects += 1;
        }
        self.open_since = Some(now);
        Some(now)
    }

    /// The next shot an open device (opened at `opened`) has taken by now; earlier ones were
    /// missed.
    fn next_due(&mut self, opened: SystemTime) -> Option<Shot> {
        while let Some(shot) = self.shots.get(self.next_shot) {
            if shot.at >= opened {
                break;
            }
            self.ledger.missed += 1;
            self.next_shot += 1;
        }
        let shot = *self.shots.get(self.next_shot)?;
        (shot.at <= self.now()).then(|| {
            self.next_shot += 1;
            shot
        })
    }

    /// Renders `shot` as frame `sequence` of the device, and books it.
    fn deliver(&mut self, shot: Shot, sequence: u64) -> SourceEvent {
        let world = if shot.night { &self.night } else { &self.day };
        let frame = Frame {
            image: world.render(shot.index).image,
            sequence,
            media: media_name(sequence),
            captured: Capture::System(shot.at),
        };
        self.ledger.delivered.push(Delivered {
            run: self.ledger.runs - 1,
            sequence,
            at: shot.at,
            night: shot.night,
            corrupt: shot.corrupt,
        });
        if shot.corrupt {
            corrupted(frame)
        } else {
            SourceEvent::Frame(frame)
        }
    }

    /// Whether the next SIGTERM has come: its time is past, and the open camera has no frame
    /// captured before it left to deliver.
    fn sigterm_due(&mut self) -> bool {
        let now = self.now();
        let Some(sigterm) = self.sigterms.first().copied() else {
            return false;
        };
        let pending_before = self.shots.get(self.next_shot).is_some_and(|shot| {
            shot.at < sigterm.at && self.open_since.is_some_and(|o| shot.at >= o)
        });
        if sigterm.at > now || pending_before {
            return false;
        }
        self.sigterms.remove(0);
        self.restart_after = sigterm.downtime;
        true
    }

    /// Whether the card refuses a write now (and books it).
    fn card_refuses(&mut self) -> bool {
        let full = self.card_full.contains(&self.now());
        self.ledger.refused_writes += u64::from(full);
        full
    }
}

/// Every frame the camera would take in the month, bursts of [`BURST_LEN`] in time order.
fn schedule(site: UtcOffset) -> Vec<Shot> {
    let mut shots = Vec::new();
    for hour in 0..DAYS * 24 {
        let mut rng = keyed_rng(DOMAIN_TRIGGER, hour, 0, 0);
        let local_hour = ((START_UNIX as i64 + site.seconds()) / 3600 + hour as i64).rem_euclid(24);
        let local_hour = local_hour as u64;
        if !chance(&mut rng, trigger_chance(local_hour)) {
            continue;
        }
        let second = uniform(&mut rng, 0.0, 3500.0) as u64;
        let burst_start = start() + Duration::from_secs(hour * 3600 + second);
        let night = !(SUNRISE_H..SUNSET_H).contains(&local_hour);
        for k in 0..u64::from(BURST_LEN) {
            let index = shots.len() as u64;
            shots.push(Shot {
                index,
                at: burst_start + Duration::from_secs(k),
                night,
                corrupt: index % CORRUPT_EVERY == CORRUPT_EVERY - 1,
            });
        }
    }
    shots
}

/// When the device is away: every few hours, for seconds to most of an hour.
fn vanishings() -> Vec<Range<SystemTime>> {
    let end = start() + Duration::from_secs(DAYS * 24 * 3600);
    let mut away = Vec::new();
    let mut t = start();
    for n in 0.. {
        let mut rng = keyed_rng(DOMAIN_VANISH, n, 0, 0);
        let every = uniform(&mut rng, VANISH_EVERY_H.start, VANISH_EVERY_H.end);
        let length = log_uniform(&mut rng, VANISH_FOR_S.start, VANISH_FOR_S.end);
        let from = t + Duration::from_secs_f32(every * 3600.0);
        let to = from + Duration::from_secs_f32(length);
        if to >= end {
            break;
        }
        away.push(from..to);
        t = to;
    }
    away
}

/// The month's SIGTERMs; one that comes during a burst comes after its second frame.
fn sigterms(shots: &[Shot]) -> Vec<Sigterm> {
    SIGTERMS
        .iter()
        .map(|&(hour, in_burst, downtime_s)| {
            let mut at = start() + Duration::from_secs(hour * 3600);
            if in_burst {
                let burst = shots.iter().find(|s| s.at >= at).expect("a later burst");
                at = burst.at + Duration::from_millis(1500);
            }
            Sigterm {
                at,
                downtime: Duration::from_secs(downtime_s),
            }
        })
        .collect()
}

/// The name the camera gives frame `sequence`, as V4L2 names `video0-000042`.
fn media_name(sequence: u64) -> String {
    format!("trap0-{sequence:06}")
}

fn unplugged() -> SourceError {
    SourceError::Disconnected {
        device: "/dev/trap0".to_owned(),
        cause: io::Error::from_raw_os_error(19), // ENODEV
    }
}

/// Opens the trap's camera, as the V4L2 connector opens `/dev/video0`.
struct Connector {
    trap: Shared,
}

impl Connect for Connector {
    type Source = Session;

    fn connect(&mut self, first_sequence: u64) -> Result<Session, SourceError> {
        let opened = self.trap.borrow_mut().open().ok_or_else(unplugged)?;
        Ok(Session {
            trap: self.trap.clone(),
            opened,
            next_sequence: first_sequence,
        })
    }

    fn describe(&self) -> String {
        "camera trap /dev/trap0".to_owned()
    }
}

/// The open camera: the shots it takes while open, until it is unplugged.
struct Session {
    trap: Shared,
    opened: SystemTime,
    next_sequence: u64,
}

impl FrameSource for Session {
    fn next_frame(&mut self) -> Result<SourceEvent, SourceError> {
        let mut trap = self.trap.borrow_mut();
        if trap.vanished_since(self.opened) {
            trap.lose();
            return Err(unplugged());
        }
        let Some(shot) = trap.next_due(self.opened) else {
            return Ok(SourceEvent::Idle);
        };
        self.next_sequence += 1;
        Ok(trap.deliver(shot, self.next_sequence - 1))
    }

    fn describe(&self) -> String {
        "camera trap /dev/trap0 (open)".to_owned()
    }
}

/// The camera as one run of the service sees it: reopened with the camera backoff, stopped by
/// SIGTERM (`stop`, as `xrvlm run`'s signal handler sets it), ended with the month.
pub struct Service {
    camera: Reconnecting<Connector, FakeClock>,
    trap: Shared,
    stop: Arc<AtomicBool>,
}

impl Service {
    /// A run's camera on `clock`.
    pub fn new(trap: &Shared, clock: FakeClock, stop: Arc<AtomicBool>) -> Self {
        let connector = Connector { trap: trap.clone() };
        Self {
            camera: Reconnecting::new(connector, clock, Backoff::camera()),
            trap: trap.clone(),
            stop,
        }
    }
}

impl FrameSource for Service {
    fn next_frame(&mut self) -> Result<SourceEvent, SourceError> {
        {
            let mut trap = self.trap.borrow_mut();
            if trap.now() >= trap.end {
                return Ok(SourceEvent::End);
            }
            if trap.sigterm_due() {
                self.stop.store(true, Ordering::SeqCst);
                return Ok(SourceEvent::Idle);
            }
        }
        self.camera.next_frame()
    }

    fn describe(&self) -> String {
        self.camera.describe()
    }

    fn is_connected(&self) -> bool {
        self.camera.is_connected()
    }
}

/// The SD card: frames are written to the file system, except while it is full.
pub struct Card {
    trap: Shared,
}

impl Card {
    /// The trap's card.
    pub fn new(trap: &Shared) -> Self {
        Self { trap: trap.clone() }
    }
}

impl FrameWriter for Card {
    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        if self.trap.borrow_mut().card_refuses() {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        FileWriter.write(path, bytes)
    }
}
