//! A V4L2 camera as a frame source (feature `camera`): opens the device, asks for the configured
//! pixel format, size and frame rate, reads back what the driver actually set, and streams
//! through memory-mapped buffers. Frames are stamped with the system clock.
//!
//! The camera is wrapped in [`Reconnecting`]: when the device vanishes (ENODEV, EIO: a loose USB
//! cable, a brown-out) the loop gets one [`SourceError::Disconnected`] and the device is reopened
//! with capped exponential backoff (0.5 s doubling to 30 s).

use std::io;
use std::time::{Duration, SystemTime};

use v4l::buffer::Type;
use v4l::io::mmap::Stream;
use v4l::io::traits::{CaptureStream, Stream as _};
use v4l::video::capture::Parameters;
use v4l::video::Capture as _;
use v4l::{Device, FourCC};

use super::backoff::Backoff;
use super::camera_settings::{CameraSettings, Negotiated, PixelFormat};
use super::decode::to_rgb;
use super::reconnect::{Connect, Reconnecting};
use super::{FailedFrame, FrameError, FrameSource, SourceError, SourceEvent};
use crate::field::clock::SystemClock;
use crate::field::frame::{Capture, Frame};

/// Buffers the driver fills in turn: enough to absorb a slow frame without dropping the next.
const BUFFERS: u32 = 4;
/// How long one poll waits for a frame before answering [`SourceEvent::Idle`]; long enough for
/// the slowest useful frame rate (1 fps), short enough for the loop to stay responsive.
const FRAME_TIMEOUT: Duration = Duration::from_secs(2);
/// `ENODEV`: the device node no longer has a device behind it.
const ENODEV: i32 = 19;

/// A V4L2 camera that reopens itself after it vanishes.
pub type Camera = Reconnecting<V4l2Connector, SystemClock>;

/// The camera for `settings`; the device is opened on the first poll (a missing camera is
/// reported then, and retried).
pub fn open_camera(settings: CameraSettings) -> Result<Camera, SourceError> {
    Ok(Reconnecting::new(
        V4l2Connector { settings },
        SystemClock::new(),
        Backoff::camera(),
    ))
}

/// Whether this build can open V4L2 cameras: it can.
pub fn camera_support() -> Result<(), SourceError> {
    Ok(())
}

/// Opens the configured device.
#[derive(Debug)]
pub struct V4l2Connector {
    settings: CameraSettings,
}

impl Connect for V4l2Connector {
    type Source = V4l2Stream;

    fn connect(&mut self, first_sequence: u64) -> Result<V4l2Stream, SourceError> {
        V4l2Stream::open(&self.settings, first_sequence)
    }

    fn describe(&self) -> String {
        format!("V4L2 {}", self.settings.device.display())
    }
}

/// An open, streaming V4L2 device.
pub struct V4l2Stream {
    settings: CameraSettings,
    negotiated: Negotiated,
    /// The mmap stream; `None` only while being dropped. v4l's stream panics in its `drop` when
    /// stopping fails with anything but ENODEV, so [`Drop`] below stops it first.
    stream: Option<Stream<'static>>,
    next_sequence: u64,
    /// Keeps the device open for the stream's lifetime.
    _device: Device,
}

impl std::fmt::Debug for V4l2Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V4l2Stream")
            .field("device", &self.settings.device)
            .field("negotiated", &self.negotiated)
            .field("next_sequence", &self.next_sequence)
            .finish_non_exhaustive()
    }
}

impl V4l2Stream {
    /// Opens the device, negotiates the format and starts the buffers.
    pub fn open(settings: &CameraSettings, first_sequence: u64) -> Result<Self, SourceError> {
        let gone = |cause| disconnected(settings, cause);
        let device = Device::with_path(&settings.device).map_err(gone)?;
        let negotiated = negotiate(&device, settings)?;
        let mut stream =
            Stream::with_buffers(&device, Type::VideoCapture, BUFFERS).map_err(gone)?;
        stream.set_timeout(FRAME_TIMEOUT);
        Ok(Self {
            settings: settings.clone(),
            negotiated,
            stream: Some(stream),
            next_sequence: first_sequence,
            _device: device,
        })
    }

    /// What the driver set.
    pub fn negotiated(&self) -> Negotiated {
        self.negotiated
    }

    fn convert(&mut self, data: &[u8]) -> SourceEvent {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let media = format!("{}-{sequence:06}", self.settings.device_name());
        match to_rgb(&self.negotiated, data) {
            Ok(image) => SourceEvent::Frame(Frame {
                image,
                sequence,
                media,
                captured: Capture::System(SystemTime::now()),
            }),
            Err(e) => SourceEvent::Failed(FailedFrame {
                sequence,
                media,
                error: FrameError::Pixels(e),
            }),
        }
    }
}

impl FrameSource for V4l2Stream {
    fn next_frame(&mut self) -> Result<SourceEvent, SourceError> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(SourceEvent::End);
        };
        let data = match CaptureStream::next(stream) {
            Ok((buf, meta)) => {
                let used = (meta.bytesused as usize).min(buf.len());
                buf[..used].to_vec()
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(SourceEvent::Idle),
            Err(e) => return Err(disconnected(&self.settings, e)),
        };
        Ok(self.convert(&data))
    }

    fn describe(&self) -> String {
        format!(
            "V4L2 {} {}",
            self.settings.device.display(),
            self.negotiated
        )
    }
}

impl Drop for V4l2Stream {
    fn drop(&mut self) {
        let Some(mut stream) = self.stream.take() else {
            return;
        };
        match stream.stop() {
            // Its own drop stops it again, which then succeeds (or is ENODEV) too.
            Ok(()) => drop(stream),
            Err(e) if e.raw_os_error() == Some(ENODEV) => drop(stream),
            // Any other failure would make v4l's drop panic: leak the buffers instead. This only
            // happens when the device is already broken, at most once per reconnection.
            Err(_) => std::mem::forget(stream),
        }
    }
}

/// Asks for the configured format and frame rate and reads back what the driver set.
fn negotiate(device: &Device, settings: &CameraSettings) -> Result<Negotiated, SourceError> {
    let gone = |cause| disconnected(settings, cause);
    let mut format = device.format().map_err(gone)?;
    format.width = settings.width;
    format.height = settings.height;
    format.fourcc = FourCC::new(&settings.format.fourcc());
    device.set_format(&format).map_err(gone)?;
    let actual = device.format().map_err(gone)?;
    let Some(pixel_format) = PixelFormat::from_fourcc(actual.fourcc.repr) else {
        return Err(SourceError::Setting {
            source_name: settings.device.display().to_string(),
            setting: "format",
            value: settings.format.to_string(),
            expected: format!(
                "a format this camera offers in YUYV or MJPG (the driver chose {})",
                String::from_utf8_lossy(&actual.fourcc.repr)
            ),
        });
    };
    // Not every driver supports setting the frame rate; the stream then runs at its default.
    let _ = device.set_params(&Parameters::with_fps(settings.fps));
    let fps = device.params().ok().and_then(|p| {
        let i = p.interval;
        (i.numerator > 0).then(|| f64::from(i.denominator) / f64::from(i.numerator))
    });
    Ok(Negotiated {
        format: pixel_format,
        width: actual.width,
        height: actual.height,
        bytes_per_line: actual.stride,
        fps,
    })
}

fn disconnected(settings: &CameraSettings, cause: io::Error) -> SourceError {
    SourceError::Disconnected {
        device: settings.device.display().to_string(),
        cause,
    }
}
