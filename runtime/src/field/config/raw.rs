//! The profile as serde reads it. `[source]` and `[display]` are flat tables here (every key of
//! every kind optional); [`RawSource::check`] and [`RawDisplay::check`] turn them into the enums
//! of `sections`, refusing keys the chosen kind does not use.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::sections::{
    DecisionConfig, Deployment, DisplayConfig, FolderConfig, FrameGeometry, LogConfig, ModelConfig,
    MotionConfig, OutputConfig, PixelFormat, SourceConfig, SyntheticConfig, V4l2Config,
};
use super::Problem;

/// The whole profile file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    pub deployment: Deployment,
    pub source: RawSource,
    pub model: ModelConfig,
    #[serde(default)]
    pub motion: MotionConfig,
    #[serde(default)]
    pub decision: DecisionConfig,
    pub output: OutputConfig,
    #[serde(default)]
    pub display: RawDisplay,
    #[serde(default)]
    pub log: LogConfig,
}

/// `[source]` with every key of every kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    kind: SourceKind,
    device: Option<PathBuf>,
    pixel_format: Option<PixelFormat>,
    width: Option<u32>,
    height: Option<u32>,
    fps: Option<u32>,
    path: Option<PathBuf>,
    watch: Option<bool>,
    poll_interval_s: Option<u32>,
    seed: Option<u64>,
    world: Option<u64>,
    species: Option<usize>,
    size: Option<u32>,
    framing: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SourceKind {
    V4l2,
    Folder,
    Synthetic,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::V4l2 => "v4l2",
            SourceKind::Folder => "folder",
            SourceKind::Synthetic => "synthetic",
        })
    }
}

/// Default V4L2 device node.
const DEFAULT_V4L2_DEVICE: &str = "/dev/video0";
/// Default frame size and rate: 720p at 5 fps is enough for a trigger-and-classify camera.
const DEFAULT_FRAME: FrameGeometry = FrameGeometry {
    width: 1280,
    height: 720,
    fps: 5,
};
/// Default seconds between scans of a watched folder.
const DEFAULT_POLL_INTERVAL_S: u32 = 2;

impl RawSource {
    /// The typed source, or the first key that is missing, misplaced or out of range.
    pub fn check(self) -> Result<SourceConfig, Problem> {
        let kind = self.kind;
        let used = [
            ("device", self.device.is_some()),
            ("pixel_format", self.pixel_format.is_some()),
            ("width", self.width.is_some()),
            ("height", self.height.is_some()),
            ("fps", self.fps.is_some()),
            ("path", self.path.is_some()),
            ("watch", self.watch.is_some()),
            ("poll_interval_s", self.poll_interval_s.is_some()),
            ("seed", self.seed.is_some()),
            ("world", self.world.is_some()),
            ("species", self.species.is_some()),
            ("size", self.size.is_some()),
            ("framing", self.framing.is_some()),
        ];
        let allowed: &[&str] = match kind {
            SourceKind::V4l2 => &["device", "pixel_format", "width", "height", "fps"],
            SourceKind::Folder => &["path", "watch", "poll_interval_s"],
            SourceKind::Synthetic => &["seed", "world", "species", "size", "framing"],
        };
        if let Some((key, _)) = used.iter().find(|(k, set)| *set && !allowed.contains(k)) {
            return Err(Problem::new(
                format!("source.{key}"),
                format!(
                    "does not apply to kind = \"{kind}\" (its keys: {})",
                    allowed.join(", ")
                ),
            ));
        }
        let frame = || self.frame();
        Ok(match kind {
            SourceKind::V4l2 => SourceConfig::V4l2(V4l2Config {
                device: self
                    .device
                    .clone()
                    .unwrap_or_else(|| DEFAULT_V4L2_DEVICE.into()),
                pixel_format: self.pixel_format.unwrap_or(PixelFormat::Mjpeg),
                frame: frame()?,
            }),
            SourceKind::Folder => SourceConfig::Folder(FolderConfig {
                path: self.path.clone().ok_or_else(|| {
                    Problem::new("source.path", "required when kind = \"folder\"")
                })?,
                watch: self.watch.unwrap_or(false),
                poll_interval_s: self.poll_interval()?,
            }),
            SourceKind::Synthetic => SourceConfig::Synthetic(self.synthetic()?),
        })
    }

    fn frame(&self) -> Result<FrameGeometry, Problem> {
        let frame = FrameGeometry {
            width: self.width.unwrap_or(DEFAULT_FRAME.width),
            height: self.height.unwrap_or(DEFAULT_FRAME.height),
            fps: self.fps.unwrap_or(DEFAULT_FRAME.fps),
        };
        Problem::check_range("source.width", frame.width, 16, 8192)?;
        Problem::check_range("source.height", frame.height, 16, 8192)?;
        Problem::check_range("source.fps", frame.fps, 1, 120)?;
        Ok(frame)
    }

    fn synthetic(&self) -> Result<SyntheticConfig, Problem> {
        let species = self.species.ok_or_else(|| {
            Problem::new(
                "source.species",
                "required when kind = \"synthetic\": how many species of the world to draw",
            )
        })?;
        Problem::check_range("source.species", species, 1, xrvlm_synth::MAX_CLASSES)?;
        let size = self.size.unwrap_or(xrvlm_synth::DEFAULT_SIZE);
        Problem::check_range(
            "source.size",
            size,
            xrvlm_synth::MIN_SIZE,
            xrvlm_synth::MAX_SIZE,
        )?;
        let framing = match self.framing.as_deref() {
            None => xrvlm_synth::Framing::default(),
            Some(s) => xrvlm_synth::Framing::parse(s).ok_or_else(|| {
                Problem::new(
                    "source.framing",
                    format!(
                        "must be \"scene\" (whole frames) or \"crop\" (detector crops), got {s:?}"
                    ),
                )
            })?,
        };
        Ok(SyntheticConfig {
            seed: self.seed.unwrap_or(0),
            world: self.world.unwrap_or(xrvlm_synth::DEFAULT_WORLD),
            species,
            size,
            framing,
        })
    }

    fn poll_interval(&self) -> Result<u32, Problem> {
        let s = self.poll_interval_s.unwrap_or(DEFAULT_POLL_INTERVAL_S);
        Problem::check_range("source.poll_interval_s", s, 1, 3600)?;
        Ok(s)
    }
}

/// `[display]` with every key of every kind.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDisplay {
    #[serde(default)]
    kind: DisplayKind,
    path: Option<PathBuf>,
    device: Option<PathBuf>,
    address: Option<u8>,
    interval_s: Option<u32>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum DisplayKind {
    #[default]
    None,
    Png,
    Ssd1306,
    Framebuffer,
}

impl fmt::Display for DisplayKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DisplayKind::None => "none",
            DisplayKind::Png => "png",
            DisplayKind::Ssd1306 => "ssd1306",
            DisplayKind::Framebuffer => "framebuffer",
        })
    }
}

/// Default seconds between display redraws.
const DEFAULT_DISPLAY_INTERVAL_S: u32 = 5;
/// The SSD1306's usual I²C address (0x3D when its SA0 pin is high).
const DEFAULT_SSD1306_ADDRESS: u8 = 0x3C;

impl RawDisplay {
    /// The typed display, or the first key that is missing, misplaced or out of range.
    pub fn check(self) -> Result<DisplayConfig, Problem> {
        let kind = self.kind;
        let used = [
            ("path", self.path.is_some()),
            ("device", self.device.is_some()),
            ("address", self.address.is_some()),
            ("interval_s", self.interval_s.is_some()),
        ];
        let allowed: &[&str] = match kind {
            DisplayKind::None => &[],
            DisplayKind::Png => &["path", "interval_s"],
            DisplayKind::Ssd1306 => &["device", "address", "interval_s"],
            DisplayKind::Framebuffer => &["device", "interval_s"],
        };
        if let Some((key, _)) = used.iter().find(|(k, set)| *set && !allowed.contains(k)) {
            return Err(Problem::new(
                format!("display.{key}"),
                format!("does not apply to kind = \"{kind}\""),
            ));
        }
        let interval_s = self.interval_s.unwrap_or(DEFAULT_DISPLAY_INTERVAL_S);
        Problem::check_range("display.interval_s", interval_s, 1, 3600)?;
        let required = |value: Option<PathBuf>, key: &str| {
            value.ok_or_else(|| {
                Problem::new(
                    format!("display.{key}"),
                    format!("required when kind = \"{kind}\""),
                )
            })
        };
        Ok(match kind {
            DisplayKind::None => DisplayConfig::None,
            DisplayKind::Png => DisplayConfig::Png {
                path: required(self.path, "path")?,
                interval_s,
            },
            DisplayKind::Ssd1306 => {
                let address = self.address.unwrap_or(DEFAULT_SSD1306_ADDRESS);
                // 0x00–0x02 and 0x78–0x7F are reserved by the I²C specification.
                Problem::check_range("display.address", address, 0x03, 0x77)?;
                DisplayConfig::Ssd1306 {
                    device: required(self.device, "device")?,
                    address,
                    interval_s,
                }
            }
            DisplayKind::Framebuffer => DisplayConfig::Framebuffer {
                device: required(self.device, "device")?,
                interval_s,
            },
        })
    }
}
