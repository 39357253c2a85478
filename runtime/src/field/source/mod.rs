//! Frame sources: where the field loop's frames come from, behind one trait.
//!
//! A source is polled: [`FrameSource::next_frame`] never blocks for long and says what happened
//! as a [`SourceEvent`]. A frame that cannot be decoded is a [`SourceEvent::Failed`] event the loop
//! records and skips, not an error, so one corrupt picture never stops the loop. A
//! [`SourceError`] is about the source as a whole; its [`SourceErrorKind`] tells the loop whether
//! to keep polling (the camera vanished and is being reopened, the card was pulled) or to stop
//! (a setting the hardware refuses).
//!
//! # Layout
//! - [`folder`]: an image folder (an SD card), optionally watched for new files.
//! - [`synthetic`]: frames of the synthetic bird world with a known label per frame.
//! - [`v4l2`]: a V4L2 camera (feature `camera`; without it, opening one says how to get it).
//! - [`camera_settings`]: the requested and the negotiated camera format.
//! - [`decode`]: what sources read, decoded: camera pixel formats to RGB, EXIF capture times.
//! - [`reconnect`] and [`backoff`]: reopening a vanished device with capped exponential backoff.
//! - [`faulty`]: a wrapper that injects faults (a vanishing camera, corrupt frames) for tests.

pub mod backoff;
pub mod camera_settings;
pub mod decode;
pub mod faulty;
pub mod folder;
pub mod reconnect;
pub mod synthetic;
#[cfg_attr(feature = "camera", path = "v4l2.rs")]
#[cfg_attr(not(feature = "camera"), path = "v4l2_disabled.rs")]
pub mod v4l2;

use std::io;
use std::path::PathBuf;

use crate::image_io::ImageLoadError;

pub use self::decode::ConvertError;
pub use crate::field::frame::Frame;

/// Something frames come from.
///
/// A minimal source that yields one black frame and ends:
///
/// ```
/// use xrvlm_runtime::field::frame::{Capture, Frame};
/// use xrvlm_runtime::field::source::{FrameSource, SourceError, SourceEvent};
///
/// struct OneFrame {
///     done: bool,
/// }
///
/// impl FrameSource for OneFrame {
///     fn next_frame(&mut self) -> Result<SourceEvent, SourceError> {
///         if std::mem::replace(&mut self.done, true) {
///             return Ok(SourceEvent::End);
///         }
///         Ok(SourceEvent::Frame(Frame {
///             image: image::RgbImage::new(4, 4),
///             sequence: 0,
///             media: "black-000000".into(),
///             captured: Capture::System(std::time::SystemTime::now()),
///         }))
///     }
///
///     fn describe(&self) -> String {
///         "one black frame".into()
///     }
/// }
///
/// let mut source = OneFrame { done: false };
/// assert!(matches!(source.next_frame(), Ok(SourceEvent::Frame(_))));
/// assert!(matches!(source.next_frame(), Ok(SourceEvent::End)));
/// ```
pub trait FrameSource {
    /// The next thing that happened. Returns promptly: when no frame is ready it says
    /// [`SourceEvent::Idle`] and the caller waits a little before asking again.
    fn next_frame(&mut self) -> Result<SourceEvent, SourceError>;

    /// One line for logs and the status screen, e.g. `V4L2 /dev/video0 YUYV 640x480 @ 30 fps`.
    fn describe(&self) -> String;

    /// Whether the device is there, as far as the source knows: `false` from the
    /// [`SourceErrorKind::Disconnected`] error that said it was gone until it is back (reopened,
    /// listed again). The loop ends an outage when this turns true, before any frame comes, so
    /// that a camera that comes back and vanishes again while nothing moves is two outages, not
    /// one. A source that cannot vanish keeps the default.
    fn is_connected(&self) -> bool {
        true
    }
}

impl<S: FrameSource + ?Sized> FrameSource for Box<S> {
    fn next_frame(&mut self) -> Result<SourceEvent, SourceError> {
        (**self).next_frame()
    }

    fn describe(&self) -> String {
        (**self).describe()
    }

    fn is_connected(&self) -> bool {
        (**self).is_connected()
    }
}

/// What a source had to say.
#[derive(Debug)]
pub enum SourceEvent {
    /// A decoded frame.
    Frame(Frame),
    /// A frame arrived but could not be decoded; the loop records it and carries on.
    Failed(FailedFrame),
    /// Nothing new yet (a watched folder with no new file, a device being reopened).
    Idle,
    /// The source has nothing more and never will (a folder read once, a finite synthetic run).
    End,
}

/// A frame that arrived but could not be turned into pixels.
#[derive(Debug, thiserror::Error)]
#[error("{media} (frame {sequence}): {error}")]
pub struct FailedFrame {
    /// Its position in the stream (it used up a sequence number).
    pub sequence: u64,
    /// Its media name, as a [`Frame`] would have had.
    pub media: String,
    /// Why it could not be decoded.
    #[source]
    pub error: FrameError,
}

/// Why one frame could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// An image file (folder source) that is unreadable, truncated or not an image.
    #[error(transparent)]
    Image(#[from] ImageLoadError),
    /// A camera buffer that does not hold a valid frame of the negotiated format.
    #[error(transparent)]
    Pixels(#[from] ConvertError),
}

/// What the loop should do about a [`SourceError`]; decided by kind, never by message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceErrorKind {
    /// The device or folder is gone for now; the source recovers by itself (a camera is
    /// reopened with backoff, a folder is rescanned), so keep polling.
    Disconnected,
    /// The settings cannot work (out of range, refused by the hardware, not compiled in):
    /// stop and report.
    Config,
}

/// A failure of a source as a whole. Every variant names the device, folder or setting.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The device vanished or cannot be opened right now (ENODEV, EIO, ENOENT, ...).
    #[error("{device}: unavailable ({cause}); it will be reopened")]
    Disconnected {
        /// The device path or source description.
        device: String,
        /// The underlying error.
        #[source]
        cause: io::Error,
    },
    /// The watched folder cannot be listed (card pulled, permissions).
    #[error("{}: cannot list the image folder: {cause}", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        cause: io::Error,
    },
    /// A setting out of range or refused by the device.
    #[error("{source_name}: {setting} = {value} is not usable; expected {expected}")]
    Setting {
        /// The source (device path, folder or `synthetic`).
        source_name: String,
        /// The setting's name, as in the config file.
        setting: &'static str,
        /// The value asked for.
        value: String,
        /// What would work.
        expected: String,
    },
    /// The source needs a cargo feature this build lacks.
    #[error(
        "this xrvlm was built without the `{feature}` feature, needed for {what}; \
         rebuild with --features {feature}"
    )]
    NotBuilt {
        /// The cargo feature.
        feature: &'static str,
        /// What it provides, e.g. `V4L2 cameras`.
        what: &'static str,
    },
}

impl SourceError {
    /// What the loop should do about it.
    pub fn kind(&self) -> SourceErrorKind {
        match self {
            Self::Disconnected { .. } | Self::Folder { .. } => SourceErrorKind::Disconnected,
            Self::Setting { .. } | Self::NotBuilt { .. } => SourceErrorKind::Config,
        }
    }
}
