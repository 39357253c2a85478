//! Frames of the synthetic bird world (`xrvlm-synth`), with the species known for every frame,
//! so that tests and the demo can check what the classifier says.
//!
//! Frames come in bursts, as from a trail camera triggered by an animal: every frame of a burst
//! shows the same species (or nothing, for a blank trigger), `frame_interval` apart in capture
//! time, and bursts start `burst_interval` apart. Frame `n` is the very image
//! `xrvlm-train synth --world W --seed S --size Z --night-fraction F` writes as
//! `<species>/<n:05>.png` (or `blank/<n:05>.png`), so a model evaluated on that seed's dataset
//! sees the same pictures here. Capture times start at a fixed instant, so runs are reproducible.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use xrvlm_synth::random::{chance, index, keyed_rng, DOMAIN_IMAGE};
use xrvlm_synth::scene::render_frame;
use xrvlm_synth::species::{derive_species, Species};
use xrvlm_synth::{BLANK_CLASS, BLANK_STREAM, MAX_CLASSES, MAX_SIZE, MIN_SIZE};

use super::{FrameSource, SourceError, SourceEvent};
use crate::field::frame::{Capture, Frame};

/// Domain tag of the burst streams (which species a burst shows), keyed by (seed, burst, 0).
const DOMAIN_BURST: u64 = 0x4255_5253_5431_0000;

/// What the synthetic source renders.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSettings {
    /// World seed: which species exist (as `xrvlm-train synth --world`).
    pub world: u64,
    /// Image seed: which pictures of them are drawn (as `--seed`).
    pub seed: u64,
    /// Number of species, 1 to 1000.
    pub classes: usize,
    /// Frame side in pixels, 32 to 512.
    pub size: u32,
    /// Whole camera frames or detector crops (as `--framing`).
    pub framing: xrvlm_synth::Framing,
    /// Fraction of frames with the night (infrared grey) look.
    pub night_fraction: f64,
    /// Fraction of bursts with no animal (a blank trigger: wind, sun).
    pub empty_fraction: f64,
    /// Frames per burst, at least 1.
    pub burst_len: u32,
    /// Capture time between the frames of a burst.
    pub frame_interval: Duration,
    /// Capture time between the starts of two bursts.
    pub burst_interval: Duration,
    /// Capture time of the first frame.
    pub start: SystemTime,
    /// Frames before the source ends; `None` for an endless stream.
    pub frames: Option<u64>,
}

impl SyntheticSettings {
    /// The first capture time: 2024-06-01T06:00:00Z, a fixed dawn so runs are reproducible.
    pub const START_UNIX: u64 = 1_717_221_600;

    /// Settings for `classes` species of `world` drawn with `seed`, 72-pixel frames (the
    /// generator's default), a quarter at night, one burst in ten blank, bursts of 3 frames
    /// 1 s apart every minute, endless.
    pub fn new(world: u64, seed: u64, classes: usize) -> Self {
        Self {
            world,
            seed,
            classes,
            size: xrvlm_synth::DEFAULT_SIZE,
            framing: xrvlm_synth::Framing::default(),
            night_fraction: xrvlm_synth::DEFAULT_NIGHT_FRACTION,
            empty_fraction: 0.1,
            burst_len: 3,
            frame_interval: Duration::from_secs(1),
            burst_interval: Duration::from_secs(60),
            start: UNIX_EPOCH + Duration::from_secs(Self::START_UNIX),
            frames: None,
        }
    }

    fn validate(&self) -> Result<(), SourceError> {
        let bad = |setting, value: String, expected: &str| {
            Err(SourceError::Setting {
                source_name: "synthetic".to_owned(),
                setting,
                value,
                expected: expected.to_owned(),
            })
        };
        if !(1..=MAX_CLASSES).contains(&self.classes) {
            return bad("classes", self.classes.to_string(), "1 to 1000");
        }
        if !(MIN_SIZE..=MAX_SIZE).contains(&self.size) {
            return bad("size", self.size.to_string(), "32 to 512 pixels");
        }
        for (name, f) in [
            ("night_fraction", self.night_fraction),
            ("empty_fraction", self.empty_fraction),
        ] {
            if !(0.0..=1.0).contains(&f) {
                return bad(name, f.to_string(), "a fraction between 0 and 1");
            }
        }
        if self.burst_len == 0 {
            return bad("burst_len", "0".to_owned(), "at least 1 frame");
        }
        Ok(())
    }
}

/// Frames of the synthetic world, with known labels.
#[derive(Debug, Clone)]
pub struct SyntheticSource {
    settings: SyntheticSettings,
    species: Vec<Species>,
    next: u64,
}

impl SyntheticSource {
    /// A source for `settings`, or a [`SourceError::Setting`] naming the bad setting.
    pub fn new(settings: SyntheticSettings) -> Result<Self, SourceError> {
        settings.validate()?;
        Ok(Self {
            species: derive_species(settings.world, settings.classes),
            settings,
            next: 0,
        })
    }

    /// The world's species, in world order.
    pub fn species(&self) -> &[Species] {
        &self.species
    }

    /// The true label of frame `sequence`: its species' name (the class folder name, e.g.
    /// `redcrest_finch`) or `blank`.
    pub fn label(&self, sequence: u64) -> &str {
        match self.species_of(sequence) {
            Some(s) => &s.name,
            None => BLANK_CLASS,
        }
    }

    /// The species frame `sequence` shows, `None` for a blank frame.
    pub fn species_of(&self, sequence: u64) -> Option<&Species> {
        let burst = sequence / u64::from(self.settings.burst_len);
        let mut rng = keyed_rng(DOMAIN_BURST, self.settings.seed, burst, 0);
        let blank = chance(&mut rng, self.settings.empty_fraction);
        let pick = index(&mut rng, self.species.len());
        (!blank).then(|| &self.species[pick])
    }

    /// Renders frame `sequence` (the same for any call order).
    pub fn render(&self, sequence: u64) -> Frame {
        let species = self.species_of(sequence);
        let stream = species.map_or(BLANK_STREAM, |s| s.index as u64);
        let mut rng = keyed_rng(DOMAIN_IMAGE, self.settings.seed, stream, sequence);
        // The dataset writer draws `night`, then whether the caption names the species, then
        // renders; drawing the same way gives the same pictures.
        let night = chance(&mut rng, self.settings.night_fraction);
        let _caption_names_species = chance(&mut rng, 0.0);
        let attrs = species.map(|s| &s.attributes);
        let frame = render_frame(
            &mut rng,
            attrs,
            self.settings.size,
            night,
            self.settings.framing,
        );
        Frame {
            image: frame.image,
            sequence,
            media: format!("synthetic-{sequence:06}"),
            captured: Capture::System(self.capture_time(sequence)),
        }
    }

    /// Capture time of frame `sequence`.
    pub fn capture_time(&self, sequence: u64) -> SystemTime {
        let len = u64::from(self.settings.burst_len);
        let (burst, within) = (sequence / len, sequence % len);
        let times = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        let offset = self.settings.burst_interval.saturating_mul(times(burst))
            + self.settings.frame_interval.saturating_mul(times(within));
        self.settings.start + offset
    }
}

impl FrameSource for SyntheticSource {
    fn next_frame(&mut self) -> Result<SourceEvent, SourceError> {
        if self.settings.frames.is_some_and(|n| self.next >= n) {
            return Ok(SourceEvent::End);
        }
        let frame = self.render(self.next);
        self.next += 1;
        Ok(SourceEvent::Frame(frame))
    }

    fn describe(&self) -> String {
        let s = &self.settings;
        format!(
            "synthetic world {} seed {}: {} species, {}x{} px, bursts of {}",
            s.world, s.seed, s.classes, s.size, s.size, s.burst_len
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SyntheticSettings {
        SyntheticSettings {
            size: 32,
            night_fraction: 0.5,
            framing: xrvlm_synth::Framing::Crop,
            ..SyntheticSettings::new(1, 5, 3)
        }
    }

    #[test]
    fn frames_are_the_images_the_dataset_writer_draws() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = xrvlm_synth::SynthConfig {
            world: 1,
            seed: 5,
            classes: 3,
            per_class: 8,
            size: 32,
            night_fraction: 0.5,
            empty_fraction: 0.0,
            name_fraction: 0.3,
            framing: xrvlm_synth::Framing::Crop,
        };
        xrvlm_synth::generate(&config, dir.path()).expect("generate");
        let src = SyntheticSource::new(small()).expect("settings");
        let mut compared = 0;
        for n in 0..8u64 {
            let Some(species) = src.species_of(n) else {
                continue;
            };
            let path = dir.path().join(&species.name).join(format!("{n:05}.png"));
            let expected = image::open(&path).expect("dataset image").to_rgb8();
            assert_eq!(src.render(n).image, expected, "frame {n}");
            compared += 1;
        }
        assert!(
            compared >= 4,
            "only {compared} bird frames among the first 8"
        );
    }

    #[test]
    fn a_burst_shows_one_species_and_labels_are_reproducible() {
        let settings = SyntheticSettings {
            burst_len: 4,
            empty_fraction: 0.3,
            ..small()
        };
        let src = SyntheticSource::new(settings.clone()).expect("settings");
        let again = SyntheticSource::new(settings).expect("settings");
        let labels: Vec<&str> = (0..40).map(|n| src.label(n)).collect();
        for burst in labels.chunks(4) {
            assert!(burst.iter().all(|l| *l == burst[0]), "{burst:?}");
        }
        assert!(labels.contains(&BLANK_CLASS), "{labels:?}");
        assert!(labels.iter().any(|l| *l != BLANK_CLASS), "{labels:?}");
        assert_eq!(labels, (0..40).map(|n| again.label(n)).collect::<Vec<_>>());
        assert_eq!(src.render(7), again.render(7));
    }

    #[test]
    fn capture_times_follow_bursts_and_the_stream_ends_when_asked() {
        let settings = SyntheticSettings {
            frames: Some(5),
            ..small()
        };
        let mut src = SyntheticSource::new(settings).expect("settings");
        let mut seconds = Vec::new();
        while let SourceEvent::Frame(f) = src.next_frame().expect("source") {
            seconds.push(crate::timestamp::unix_seconds(src.capture_time(f.sequence)));
            assert_eq!(f.media, format!("synthetic-{:06}", f.sequence));
        }
        let t0 = SyntheticSettings::START_UNIX as i64;
        assert_eq!(seconds, [t0, t0 + 1, t0 + 2, t0 + 60, t0 + 61]);
        assert!(matches!(src.next_frame(), Ok(SourceEvent::End)));
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let err = SyntheticSource::new(SyntheticSettings {
            classes: 0,
            ..small()
        })
        .expect_err("zero classes");
        assert!(err.to_string().contains("classes = 0"), "{err}");
        let err = SyntheticSource::new(SyntheticSettings {
            burst_len: 0,
            ..small()
        })
        .expect_err("empty bursts");
        assert!(err.to_string().contains("burst_len"), "{err}");
    }
}
