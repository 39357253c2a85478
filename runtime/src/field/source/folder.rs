//! An image folder as a frame source: an SD card read once, or a folder a trail camera keeps
//! writing to, watched for new files.
//!
//! Frames come in file-name order (relative paths, so `DCIM/100MEDIA/IMG_0001.JPG` before
//! `DCIM/101MEDIA/...`). Hidden files and files without an image extension are ignored. In watch
//! mode the folder is listed every poll interval, and a new file is taken only once its size is
//! the same at two listings in a row and not zero: a camera writing to the card grows the file
//! until it is done. Taken files are remembered (by media name) and never taken twice; the loop
//! can seed that memory from its log with [`FolderSource::mark_taken`].
//!
//! The capture time is EXIF `DateTimeOriginal` (+ `OffsetTimeOriginal`) when present, otherwise
//! the file's modification time. An unreadable or corrupt file is a [`SourceEvent::Failed`] event
//! naming the file, and the source moves on.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::decode::exif_time::exif_capture;
use super::{FailedFrame, FrameError, FrameSource, SourceError, SourceEvent};
use crate::field::clock::Clock;
use crate::field::frame::{Capture, Frame};
use crate::image_io::{decode_rgb, has_image_extension, ImageLoadError};

/// Read the folder once, or keep watching it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderMode {
    /// Take every image present at the first call, in order, then end.
    Once,
    /// List the folder every `poll` and take files whose size has settled; never ends.
    Watch {
        /// Time between listings; also the time a file's size must stay the same.
        poll: Duration,
    },
}

/// Frames from the images in a folder tree.
#[derive(Debug)]
pub struct FolderSource<C: Clock> {
    root: PathBuf,
    mode: FolderMode,
    clock: C,
    /// Media names already taken (or marked so by the loop); never taken again.
    taken: HashSet<String>,
    /// Files seen at the last listing but not yet stable, with the size seen then.
    growing: BTreeMap<String, u64>,
    /// Files ready to be taken, in name order.
    ready: VecDeque<String>,
    /// When the next listing is due; `None` in [`FolderMode::Once`] after the one listing.
    next_listing: Option<Duration>,
    /// Whether the last listing succeeded: a pulled card stays gone between listings.
    listed: bool,
    sequence: u64,
}

impl<C: Clock> FolderSource<C> {
    /// A source over `root`; nothing is read until the first [`FrameSource::next_frame`].
    pub fn new(root: impl Into<PathBuf>, mode: FolderMode, clock: C) -> Self {
        Self {
            root: root.into(),
            mode,
            clock,
            taken: HashSet::new(),
            growing: BTreeMap::new(),
            ready: VecDeque::new(),
            next_listing: Some(Duration::ZERO),
            listed: true,
            sequence: 0,
        }
    }

    /// Remembers these media names (paths relative to the folder, `/`-separated) as already
    /// taken, e.g. from the detection log of a previous run.
    pub fn mark_taken(&mut self, media: impl IntoIterator<Item = String>) {
        self.taken.extend(media);
    }

    /// Lists the folder if a listing is due and queues what became ready.
    fn maybe_list(&mut self) -> Result<(), SourceError> {
        let Some(due) = self.next_listing else {
            return Ok(());
        };
        let now = self.clock.monotonic();
        if now < due {
            return Ok(());
        }
        // A watched folder that cannot be listed (card pulled) is retried at the next poll, not
        // on every call.
        if let FolderMode::Watch { poll } = self.mode {
            self.next_listing = Some(now + poll);
        }
        let files = list_images(&self.root);
        self.listed = files.is_ok();
        let files = files?;
        match self.mode {
            FolderMode::Once => {
                self.ready
                    .extend(files.into_keys().filter(|m| !self.taken.contains(m)));
                self.next_listing = None;
            }
            FolderMode::Watch { .. } => self.queue_settled(files),
        }
        Ok(())
    }

    /// Watch mode: files whose size matches the previous listing become ready.
    fn queue_settled(&mut self, files: BTreeMap<String, u64>) {
        let mut growing = BTreeMap::new();
        for (media, size) in files {
            if self.taken.contains(&media) || self.ready.contains(&media) {
                continue;
            }
            if size > 0 && self.growing.get(&media) == Some(&size) {
                self.ready.push_back(media);
            } else {
                growing.insert(media, size);
            }
        }
        self.growing = growing;
    }

    /// Reads and decodes one file.
    fn take(&mut self, media: String) -> SourceEvent {
        self.taken.insert(media.clone());
        let sequence = self.sequence;
        self.sequence += 1;
        let path = self.root.join(&media);
        match read_frame(&path) {
            Ok((image, captured)) => SourceEvent::Frame(Frame {
                image,
                sequence,
                media,
                captured,
            }),
            Err(e) => SourceEvent::Failed(FailedFrame {
                sequence,
                media,
                error: FrameError::Image(e),
            }),
        }
    }
}

impl<C: Clock> FrameSource for FolderSource<C> {
    fn next_frame(&mut self) -> Result<SourceEvent, SourceError> {
        self.maybe_list()?;
        if let Some(media) = self.ready.pop_front() {
            return Ok(self.take(media));
        }
        Ok(match self.mode {
            FolderMode::Once => SourceEvent::End,
            FolderMode::Watch { .. } => SourceEvent::Idle,
        })
    }

    fn describe(&self) -> String {
        match self.mode {
            FolderMode::Once => format!("image folder {}", self.root.display()),
            FolderMode::Watch { poll } => format!(
                "image folder {} (watched every {:.1} s)",
                self.root.display(),
                poll.as_secs_f64()
            ),
        }
    }

    fn is_connected(&self) -> bool {
        self.listed
    }
}

/// The file's pixels and capture time.
fn read_frame(path: &Path) -> Result<(image::RgbImage, Capture), ImageLoadError> {
    let bytes = fs::read(path).map_err(|e| ImageLoadError::from_io(path, e))?;
    let image = decode_rgb(&bytes, path)?;
    let captured = match exif_capture(&bytes) {
        Some(c) => c,
        None => Capture::System(modified(path)),
    };
    Ok((image, captured))
}

/// The file's modification time, or now when the file system does not record one.
fn modified(path: &Path) -> std::time::SystemTime {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| std::time::SystemTime::now())
}

/// Every image under `root`, by media name (relative, `/`-separated), with its size.
fn list_images(root: &Path) -> Result<BTreeMap<String, u64>, SourceError> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        let dir = root.join(&rel);
        let entries = fs::read_dir(&dir).map_err(|cause| SourceError::Folder {
            path: dir.clone(),
            cause,
        })?;
        // An entry that vanishes while listed is simply not there this time.
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(meta) = fs::metadata(entry.path()) else {
                continue;
            };
            if meta.is_dir() {
                dirs.push(rel.join(&name));
            } else if meta.is_file() && has_image_extension(Path::new(&name)) {
                let media = media_name(&rel, &name);
                found.insert(media, meta.len());
            }
        }
    }
    Ok(found)
}

/// `dir/sub/name`, with `/` whatever the platform, so names in logs are portable.
fn media_name(rel_dir: &Path, name: &str) -> String {
    let mut parts: Vec<String> = rel_dir
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.push(name.to_owned());
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::clock::FakeClock;

    const POLL: Duration = Duration::from_secs(2);

    fn write_png(path: &Path, shade: u8) {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).expect("mkdir");
        }
        image::RgbImage::from_pixel(6, 4, image::Rgb([shade, 0, 0]))
            .save_with_format(path, image::ImageFormat::Png)
            .expect("write png");
    }

    fn media_of(event: SourceEvent) -> String {
        match event {
            SourceEvent::Frame(f) => f.media,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn once_mode_takes_images_in_name_order_then_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_png(&dir.path().join("b.png"), 2);
        write_png(&dir.path().join("a.PNG"), 1);
        write_png(&dir.path().join("DCIM/100MEDIA/c.png"), 3);
        write_png(&dir.path().join(".hidden.png"), 4);
        fs::write(dir.path().join("notes.txt"), "not an image").expect("write");
        let mut src = FolderSource::new(dir.path(), FolderMode::Once, FakeClock::default());
        let mut names = Vec::new();
        loop {
            match src.next_frame().expect("source") {
                SourceEvent::Frame(f) => names.push((f.sequence, f.media)),
                SourceEvent::End => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        let expected = [(0, "DCIM/100MEDIA/c.png"), (1, "a.PNG"), (2, "b.png")];
        let expected: Vec<(u64, String)> =
            expected.iter().map(|(s, m)| (*s, m.to_string())).collect();
        assert_eq!(names, expected);
        assert!(matches!(src.next_frame(), Ok(SourceEvent::End)));
    }

    #[test]
    fn a_corrupt_file_is_a_failed_frame_naming_it_and_the_source_goes_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("a.jpg"), b"\xFF\xD8\xFF\xE0 cut short").expect("write");
        write_png(&dir.path().join("b.png"), 9);
        let mut src = FolderSource::new(dir.path(), FolderMode::Once, FakeClock::default());
        match src.next_frame().expect("source") {
            SourceEvent::Failed(f) => {
                assert_eq!((f.sequence, f.media.as_str()), (0, "a.jpg"));
                assert!(f.to_string().contains("a.jpg"), "{f}");
            }
            other => panic!("expected a failed frame, got {other:?}"),
        }
        assert_eq!(media_of(src.next_frame().expect("source")), "b.png");
    }

    #[test]
    fn watch_mode_takes_a_file_once_its_size_has_settled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = FakeClock::default();
        let mut src =
            FolderSource::new(dir.path(), FolderMode::Watch { poll: POLL }, clock.clone());
        assert!(matches!(src.next_frame(), Ok(SourceEvent::Idle)));

        // A camera starts writing: the file exists but is still growing.
        let path = dir.path().join("IMG_0001.png");
        fs::write(&path, b"\x89PNG partial").expect("write");
        clock.advance(POLL);
        assert!(matches!(src.next_frame(), Ok(SourceEvent::Idle)));
        write_png(&path, 5);
        clock.advance(POLL);
        assert!(matches!(src.next_frame(), Ok(SourceEvent::Idle)));
        // Listings are only made every POLL, however often the loop asks.
        clock.advance(POLL / 2);
        assert!(matches!(src.next_frame(), Ok(SourceEvent::Idle)));
        clock.advance(POLL / 2);
        assert_eq!(media_of(src.next_frame().expect("source")), "IMG_0001.png");

        // Taken once only.
        clock.advance(POLL * 3);
        assert!(matches!(src.next_frame(), Ok(SourceEvent::Idle)));
    }

    #[test]
    fn a_pulled_card_stays_gone_between_listings_until_it_is_listed_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let card = dir.path().join("card");
        fs::create_dir(&card).expect("mkdir");
        let clock = FakeClock::default();
        let mut src = FolderSource::new(&card, FolderMode::Watch { poll: POLL }, clock.clone());
        assert!(matches!(src.next_frame(), Ok(SourceEvent::Idle)));
        assert!(src.is_connected());
        fs::remove_dir(&card).expect("pull the card");
        clock.advance(POLL);
        assert!(src.next_frame().is_err());
        assert!(!src.is_connected());
        clock.advance(POLL / 2);
        assert!(matches!(src.next_frame(), Ok(SourceEvent::Idle)));
        assert!(!src.is_connected(), "no listing between, so still gone");
        fs::create_dir(&card).expect("put the card back");
        clock.advance(POLL / 2);
        assert!(matches!(src.next_frame(), Ok(SourceEvent::Idle)));
        assert!(src.is_connected());
    }

    #[test]
    fn files_marked_taken_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_png(&dir.path().join("a.png"), 1);
        write_png(&dir.path().join("b.png"), 2);
        let mut src = FolderSource::new(dir.path(), FolderMode::Once, FakeClock::default());
        src.mark_taken(["a.png".to_owned()]);
        assert_eq!(media_of(src.next_frame().expect("source")), "b.png");
        assert!(matches!(src.next_frame(), Ok(SourceEvent::End)));
    }

    #[test]
    fn without_exif_the_capture_time_is_the_modification_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.png");
        write_png(&path, 1);
        let mtime = fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime");
        let mut src = FolderSource::new(dir.path(), FolderMode::Once, FakeClock::default());
        match src.next_frame().expect("source") {
            SourceEvent::Frame(f) => assert_eq!(f.captured, Capture::System(mtime)),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn exif_capture_time_and_offset_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/frames/exif_dated.jpg");
        fs::copy(&fixture, dir.path().join("IMG_0042.JPG")).expect("copy fixture");
        let mut src = FolderSource::new(dir.path(), FolderMode::Once, FakeClock::default());
        let frame = match src.next_frame().expect("source") {
            SourceEvent::Frame(f) => f,
            other => panic!("expected a frame, got {other:?}"),
        };
        let site = crate::timestamp::UtcOffset::UTC;
        assert_eq!(frame.timestamp(site), "2021-05-31T08:25:38+02:00");
    }

    #[test]
    fn an_unlistable_folder_is_a_disconnected_source_error_naming_it() {
        let mut src = FolderSource::new(
            "/nonexistent/sdcard",
            FolderMode::Once,
            FakeClock::default(),
        );
        let err = src.next_frame().expect_err("missing folder");
        assert_eq!(err.kind(), super::super::SourceErrorKind::Disconnected);
        assert!(err.to_string().contains("/nonexistent/sdcard"), "{err}");
    }
}
