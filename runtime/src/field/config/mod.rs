//! Board profiles: `firmware-config/<board>.toml`, read by `xrvlm run --config`.
//!
//! [`Profile::load`] reads the file, [`Profile::parse`] the text (split for tests). Every table
//! rejects unknown keys; after serde, values are checked for range and consistency. Every error
//! names the file, the line and column, and the dotted key:
//! `firmware-config/x.toml:12:1: source.fpss: unknown field ...`.
//!
//! Relative paths in a profile (`model.bundle`, `output.folder`, a folder source, a PNG
//! display) are resolved against the directory of the profile file, so a profile means the
//! same thing whatever directory `xrvlm` is started from. `firmware-config/README.md`
//! documents every key.

mod byte_size;
pub mod locate;
mod raw;
mod sections;

use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::timestamp::{UtcOffset, UtcOffsetError};
pub use byte_size::{ByteSize, ByteSizeError};
pub use sections::{
    DecisionConfig, Deployment, DisplayConfig, FolderConfig, FrameGeometry, LogConfig, LogLevel,
    ModelConfig, MotionConfig, MotionMode, OutputConfig, PixelFormat, SaveFrames, SourceConfig,
    SyntheticConfig, V4l2Config, DEFAULT_BLANK_LABEL, DEFAULT_EVENT_GAP_S, DEFAULT_THRESHOLD,
};

use locate::Position;
use raw::RawProfile;

/// A checked board profile, paths resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// `[deployment]`.
    pub deployment: Deployment,
    /// `[source]`.
    pub source: SourceConfig,
    /// `[model]`.
    pub model: ModelConfig,
    /// `[motion]`.
    pub motion: MotionConfig,
    /// `[decision]`.
    pub decision: DecisionConfig,
    /// `[output]`.
    pub output: OutputConfig,
    /// `[display]`.
    pub display: DisplayConfig,
    /// `[log]`.
    pub log: LogConfig,
    /// The file and its text, to place errors found later (class names) in it.
    origin: Origin,
}

#[derive(Clone, Debug, PartialEq)]
struct Origin {
    path: PathBuf,
    text: String,
}

/// Why a profile was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The profile file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Bad TOML, an unknown or missing key, a wrong type or a value out of range.
    #[error("{}{}: {}{problem}", path.display(), Located(position), KeyPrefix(key))]
    Invalid {
        /// The profile file.
        path: PathBuf,
        /// Where in the file, when the key is written in it.
        position: Option<Position>,
        /// The dotted key (`source.fps`); empty for a syntax error outside any key.
        key: String,
        /// What is wrong and what is expected.
        problem: String,
    },
}

struct Located<'a>(&'a Option<Position>);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, ":{}:{}", p.line, p.column),
            None => Ok(()),
        }
    }
}

struct KeyPrefix<'a>(&'a str);

impl fmt::Display for KeyPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "{}: ", self.0)
        }
    }
}

/// A key and what is wrong with its value, before it is placed in the file.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Problem {
    key: String,
    message: String,
}

impl Problem {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }

    /// `value` within `lo..=hi`, else a problem saying so.
    fn check_range<T: PartialOrd + fmt::Display>(
        key: &str,
        value: T,
        lo: T,
        hi: T,
    ) -> Result<(), Problem> {
        if lo <= value && value <= hi {
            Ok(())
        } else {
            Err(Problem::new(
                key,
                format!("must be between {lo} and {hi}, got {value}"),
            ))
        }
    }

    fn check_non_empty(key: &str, value: &str) -> Result<(), Problem> {
        if value.trim().is_empty() {
            Err(Problem::new(key, "must not be empty"))
        } else {
            Ok(())
        }
    }
}

impl Profile {
    /// Reads and checks the profile at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks profile text; `path` names the file in errors and is the base of
    /// relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let origin = Origin {
            path: path.to_path_buf(),
            text: text.to_string(),
        };
        let raw: RawProfile = toml::from_str(text).map_err(|e| origin.syntax_error(&e))?;
        let profile = Self::check(raw, origin.clone()).map_err(|p| origin.place(p))?;
        Ok(profile.resolve_paths())
    }

    /// The profile file.
    pub fn path(&self) -> &Path {
        &self.origin.path
    }

    /// Checks the labels the profile names (`decision.blank_label`, `decision.thresholds`)
    /// against the bundle's class labels.
    pub fn check_classes<'a>(
        &self,
        labels: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), ConfigError> {
        let labels: Vec<&str> = labels.into_iter().collect();
        let known = |key: String, label: &str| {
            if labels.contains(&label) {
                Ok(())
            } else {
                Err(Problem::new(
                    key,
                    format!(
                        "{label:?} is not a class of the bundle (its classes: {})",
                        labels.join(", ")
                    ),
                ))
            }
        };
        let check = || -> Result<(), Problem> {
            known("decision.blank_label".into(), &self.decision.blank_label)?;
            for label in self.decision.thresholds.keys() {
                known(format!("decision.thresholds.{label}"), label)?;
            }
            Ok(())
        };
        check().map_err(|p| self.origin.place(p))
    }

    fn check(raw: RawProfile, origin: Origin) -> Result<Self, Problem> {
        check_deployment(&raw.deployment)?;
        check_model(&raw.model)?;
        check_motion(&raw.motion)?;
        check_decision(&raw.decision)?;
        check_output(&raw.output)?;
        Problem::check_range(
            "log.health_interval_min",
            raw.log.health_interval_min,
            1,
            1440,
        )?;
        Ok(Self {
            deployment: raw.deployment,
            source: raw.source.check()?,
            model: raw.model,
            motion: raw.motion,
            decision: raw.decision,
            output: raw.output,
            display: raw.display.check()?,
            log: raw.log,
            origin,
        })
    }

    /// Relative paths joined to the profile's directory.
    fn resolve_paths(mut self) -> Self {
        let base = self
            .origin
            .path
            .parent()
            .unwrap_or(Path::new(""))
            .to_path_buf();
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.model.bundle);
        resolve(&mut self.output.folder);
        match &mut self.source {
            SourceConfig::V4l2(v) => resolve(&mut v.device),
            SourceConfig::Folder(f) => resolve(&mut f.path),
            SourceConfig::Synthetic(_) => {}
        }
        match &mut self.display {
            DisplayConfig::None => {}
            DisplayConfig::Png { path, .. } => resolve(path),
            DisplayConfig::Ssd1306 { device, .. } | DisplayConfig::Framebuffer { device, .. } => {
                resolve(device)
            }
        }
        self
    }
}

impl Origin {
    /// A serde or TOML error, placed by its span.
    fn syntax_error(&self, e: &toml::de::Error) -> ConfigError {
        let offset = e.span().map(|s| s.start);
        ConfigError::Invalid {
            path: self.path.clone(),
            position: offset.map(|o| Position::of_offset(&self.text, o)),
            key: offset
                .and_then(|o| locate::key_at(&self.text, o))
                .unwrap_or_default(),
            problem: e.message().trim_end().to_string(),
        }
    }

    /// A checked value's problem, placed at its key (or the closest table written).
    fn place(&self, problem: Problem) -> ConfigError {
        let position = locate::span_of(&self.text, &problem.key)
            .map(|span| Position::of_offset(&self.text, span.start));
        ConfigError::Invalid {
            path: self.path.clone(),
            position,
            key: problem.key,
            problem: problem.message,
        }
    }
}

fn check_deployment(d: &Deployment) -> Result<(), Problem> {
    Problem::check_non_empty("deployment.id", &d.id)?;
    Problem::check_non_empty("deployment.location_name", &d.location_name)?;
    Problem::check_range("deployment.latitude", d.latitude, -90.0, 90.0)?;
    Problem::check_range("deployment.longitude", d.longitude, -180.0, 180.0)?;
    if let Some(u) = d.coordinate_uncertainty_m {
        Problem::check_range("deployment.coordinate_uncertainty_m", u, 1, 20_000_000)?;
    }
    if let Some(h) = d.camera_height_m {
        Problem::check_range("deployment.camera_height_m", h, 0.0, 1000.0)?;
    }
    Ok(())
}

fn check_model(m: &ModelConfig) -> Result<(), Problem> {
    Problem::check_range("model.top_k", m.top_k, 1, 1000)?;
    if m.require_signature && m.trusted_keys.is_empty() {
        return Err(Problem::new(
            "model.trusted_keys",
            "require_signature = true needs at least one trusted key",
        ));
    }
    Ok(())
}

fn check_motion(m: &MotionConfig) -> Result<(), Problem> {
    Problem::check_range("motion.downscale_width", m.downscale_width, 8, 4096)?;
    Problem::check_range("motion.pixel_threshold", m.pixel_threshold, 1, 255)?;
    if !(m.changed_fraction > 0.0 && m.changed_fraction <= 1.0) {
        return Err(Problem::new(
            "motion.changed_fraction",
            format!("must be > 0 and at most 1, got {}", m.changed_fraction),
        ));
    }
    Problem::check_range(
        "motion.timelapse_interval_s",
        m.timelapse_interval_s,
        1,
        86_400,
    )
}

fn check_decision(d: &DecisionConfig) -> Result<(), Problem> {
    Problem::check_range("decision.threshold", d.threshold, 0.0, 1.0)?;
    for (label, &t) in &d.thresholds {
        Problem::check_range(&format!("decision.thresholds.{label}"), t, 0.0, 1.0)?;
    }
    Problem::check_non_empty("decision.blank_label", &d.blank_label)?;
    if !d.allowed_species.is_empty() && !d.excluded_species.is_empty() {
        return Err(Problem::new(
            "decision.excluded_species",
            "give allowed_species or excluded_species, not both",
        ));
    }
    Problem::check_range("decision.event_gap_s", d.event_gap_s, 1, 86_400)
}

fn check_output(o: &OutputConfig) -> Result<(), Problem> {
    Problem::check_range("output.jpeg_quality", o.jpeg_quality, 1, 100)?;
    if o.storage_budget.0 == 0 {
        return Err(Problem::new(
            "output.storage_budget",
            "must be more than 0 bytes",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
