//! Writing a scene set: large JPEG camera frames with their ground truth ([`generate_scenes`]).
//!
//! Layout of the output folder:
//! - `images/NNNNN.jpg`: independent frames, each with zero to [`MAX_BIRDS`] birds;
//! - `sequences/sNNN/fNN.jpg`: bursts of one fixed scene into which a bird arrives;
//! - `md.json`, `coco.json`, `scenes.jsonl`: the ground truth ([`super::truth_files`]);
//! - `synth-scenes.json`: the parameters and the species, for provenance.
//!
//! As in [`super::generate`], every frame and every sequence is a job keyed by (seed, index) and
//! rendered from its own stream on worker threads, and the records are put back in job order, so
//! the same arguments give byte-identical files.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbImage};
use rand::Rng;
use serde::Serialize;

use super::output::{prepare_output, run_parallel, write_json, write_jsonl};
use super::random::{chance, index, keyed_rng, DOMAIN_SCENE, DOMAIN_SEQUENCE};
use super::scenes::{render_scene, render_sequence, SceneFrame, MAX_BIRDS, MIN_SEQUENCE_LENGTH};
use super::species::{derive_species, Species};
use super::truth_files::{box_records, capture_time, coco, megadetector, ImageRecord};
use super::{SynthError, GENERATOR_VERSION, MAX_CLASSES};

/// Frame sizes of common trail cameras (16:9 video-style and 4:3-ish stills); each frame or
/// sequence draws one.
pub const CAMERA_SIZES: [(u32, u32); 3] = [(1280, 720), (1920, 1080), (2048, 1440)];
/// JPEG quality, about what trail cameras write.
pub const JPEG_QUALITY: u8 = 90;
/// Default fraction of frames without a bird.
pub const DEFAULT_SCENE_EMPTY_FRACTION: f64 = 0.1;
/// Default frames per sequence.
pub const DEFAULT_SEQUENCE_LENGTH: usize = 5;
/// Most frames (file names have five digits), sequences (three) and frames per sequence (two).
pub const MAX_FRAMES: usize = 99_999;
/// Most sequences.
pub const MAX_SEQUENCES: usize = 999;
/// Most frames per sequence.
pub const MAX_SEQUENCE_LENGTH: usize = 99;
/// Smallest and largest frame side accepted.
pub const SCENE_SIDE: (u32, u32) = (64, 8192);
/// Probability that a frame with birds has two, and three (else one).
const TWO_BIRDS: f64 = 0.25;
const THREE_BIRDS: f64 = 0.1;

/// Everything that determines a scene set; written to `synth-scenes.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SceneConfig {
    /// World seed: which species exist.
    pub world: u64,
    /// Image seed: which frames are drawn.
    pub seed: u64,
    /// Number of species birds are drawn from.
    pub classes: usize,
    /// Independent frames.
    pub count: usize,
    /// Fraction of frames (and of sequences) taken at night.
    pub night_fraction: f64,
    /// Fraction of independent frames without a bird.
    pub empty_fraction: f64,
    /// Bursts of one fixed scene into which a bird arrives.
    pub sequences: usize,
    /// Frames per sequence.
    pub sequence_length: usize,
    /// Frame sizes (width, height) drawn from, one per frame or sequence.
    pub sizes: Vec<(u32, u32)>,
}

impl SceneConfig {
    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<(), SynthError> {
        let bad = |name: &'static str, value: String, expected: &'static str| {
            Err(SynthError::InvalidParameter {
                name,
                value,
                expected,
            })
        };
        if !(1..=MAX_CLASSES).contains(&self.classes) {
            return bad("classes", self.classes.to_string(), "1 to 1000");
        }
        if self.count > MAX_FRAMES {
            return bad("count", self.count.to_string(), "0 to 99999");
        }
        if self.sequences > MAX_SEQUENCES {
            return bad("sequences", self.sequences.to_string(), "0 to 999");
        }
        if self.count + self.sequences == 0 {
            return bad("count", "0".to_owned(), "at least 1 (or some --sequences)");
        }
        if !(MIN_SEQUENCE_LENGTH..=MAX_SEQUENCE_LENGTH).contains(&self.sequence_length) {
            return bad(
                "sequence-length",
                self.sequence_length.to_string(),
                "2 to 99 frames",
            );
        }
        for (name, f) in [
            ("night-fraction", self.night_fraction),
            ("empty-fraction", self.empty_fraction),
        ] {
            if !(0.0..=1.0).contains(&f) {
                return bad(name, f.to_string(), "a fraction between 0 and 1");
            }
        }
        let side = SCENE_SIDE.0..=SCENE_SIDE.1;
        let odd = self
            .sizes
            .iter()
            .find(|(w, h)| !side.contains(w) || !side.contains(h));
        match (self.sizes.is_empty(), odd) {
            (true, _) => bad("sizes", "none".to_owned(), "at least one WIDTHxHEIGHT"),
            (false, Some((w, h))) => bad("sizes", format!("{w}x{h}"), "sides of 64 to 8192"),
            (false, None) => Ok(()),
        }
    }
}

/// Parses `WIDTHxHEIGHT[,WIDTHxHEIGHT...]`, e.g. `1280x720,1920x1080`.
pub fn parse_sizes(s: &str) -> Option<Vec<(u32, u32)>> {
    s.split(',')
        .map(|one| {
            let (w, h) = one.trim().split_once(['x', 'X'])?;
            Some((w.parse().ok()?, h.parse().ok()?))
        })
        .collect()
}

/// What [`generate_scenes`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenesSummary {
    /// Images written, sequence frames included.
    pub images: usize,
    /// Images without a bird.
    pub empty: usize,
    /// Night images.
    pub night: usize,
    /// Ground-truth boxes.
    pub boxes: usize,
}

/// One unit of work: an independent frame or a whole sequence.
#[derive(Debug, Clone, Copy)]
enum Job {
    Frame(usize),
    Sequence(usize),
}

/// Generates the scene set described by `config` into `out`, which must be absent or empty.
pub fn generate_scenes(config: &SceneConfig, out: &Path) -> Result<ScenesSummary, SynthError> {
    config.validate()?;
    prepare_output(out)?;
    let species = derive_species(config.world, config.classes);
    create_dir(&out.join("images"))?;
    for s in 0..config.sequences {
        create_dir(&out.join(sequence_dir(s)))?;
    }
    let jobs: Vec<Job> = (0..config.count)
        .map(Job::Frame)
        .chain((0..config.sequences).map(Job::Sequence))
        .collect();
    let records: Vec<ImageRecord> = run_parallel(&jobs, out, |job| match *job {
        Job::Frame(i) => frame_job(config, &species, i, out).map(|r| vec![r]),
        Job::Sequence(s) => sequence_job(config, &species, s, out),
    })?
    .into_iter()
    .flatten()
    .collect();
    let description = format!(
        "xrvlm-synth scene set: world {}, {} species, seed {}",
        config.world, config.classes, config.seed
    );
    write_json(&out.join("md.json"), &megadetector(&records, &species))?;
    let coco_file = coco(&records, &species, GENERATOR_VERSION, description);
    write_json(&out.join("coco.json"), &coco_file)?;
    write_jsonl(&out.join("scenes.jsonl"), &box_records(&records, &species))?;
    write_json(
        &out.join("synth-scenes.json"),
        &provenance(config, &species),
    )?;
    Ok(ScenesSummary {
        images: records.len(),
        empty: records.iter().filter(|r| r.birds.is_empty()).count(),
        night: records.iter().filter(|r| r.night).count(),
        boxes: records.iter().map(|r| r.birds.len()).sum(),
    })
}

fn create_dir(dir: &Path) -> Result<(), SynthError> {
    fs::create_dir_all(dir).map_err(|source| SynthError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn sequence_dir(s: usize) -> String {
    format!("sequences/s{s:03}")
}

/// Renders independent frame `i` and writes it.
fn frame_job(
    config: &SceneConfig,
    species: &[Species],
    i: usize,
    out: &Path,
) -> Result<ImageRecord, SynthError> {
    let mut rng = keyed_rng(DOMAIN_SCENE, config.seed, 0, i as u64);
    // Every decision is drawn, always, so each parameter changes only what it governs.
    let night = chance(&mut rng, config.night_fraction);
    let empty = chance(&mut rng, config.empty_fraction);
    let (w, h) = config.sizes[index(&mut rng, config.sizes.len())];
    let count = bird_count(&mut rng);
    let drawn: Vec<&Species> = (0..MAX_BIRDS)
        .map(|_| &species[index(&mut rng, species.len())])
        .collect();
    let birds = if empty { &drawn[..0] } else { &drawn[..count] };
    let frame = render_scene(&mut rng, birds, w, h, night);
    let file = format!("images/{i:05}.jpg");
    write_jpeg(&out.join(&file), &frame.image)?;
    let seq_id = format!("frame{i:05}");
    Ok(record(
        file,
        seq_id,
        (1, 0),
        capture_time(i, night, 0),
        frame,
    ))
}

/// One bird mostly, sometimes two or three.
fn bird_count<R: Rng>(rng: &mut R) -> usize {
    let u = rng.random::<f64>();
    if u < THREE_BIRDS {
        3
    } else if u < THREE_BIRDS + TWO_BIRDS {
        2
    } else {
        1
    }
}

/// Renders sequence `s` and writes its frames.
fn sequence_job(
    config: &SceneConfig,
    species: &[Species],
    s: usize,
    out: &Path,
) -> Result<Vec<ImageRecord>, SynthError> {
    let mut rng = keyed_rng(DOMAIN_SEQUENCE, config.seed, s as u64, 0);
    let night = chance(&mut rng, config.night_fraction);
    let (w, h) = config.sizes[index(&mut rng, config.sizes.len())];
    let bird = &species[index(&mut rng, species.len())];
    let length = config.sequence_length;
    let frames = render_sequence(&mut rng, bird, w, h, night, length);
    let seq_id = format!("s{s:03}");
    let ordinal = config.count + s;
    frames
        .into_iter()
        .enumerate()
        .map(|(j, frame)| {
            let file = format!("{}/f{j:02}.jpg", sequence_dir(s));
            write_jpeg(&out.join(&file), &frame.image)?;
            let time = capture_time(ordinal, night, j);
            Ok(record(file, seq_id.clone(), (length, j), time, frame))
        })
        .collect()
}

/// The record of a written frame; `(frames, number)` places it in its burst.
fn record(
    file: String,
    seq_id: String,
    (frames, number): (usize, usize),
    datetime: String,
    frame: SceneFrame,
) -> ImageRecord {
    ImageRecord {
        file,
        width: frame.image.width(),
        height: frame.image.height(),
        night: frame.night,
        seq_id,
        seq_num_frames: frames,
        frame_num: number,
        datetime,
        birds: frame.birds,
    }
}

fn write_jpeg(path: &Path, img: &RgbImage) -> Result<(), SynthError> {
    let io = |source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut w = BufWriter::new(File::create(path).map_err(io)?);
    JpegEncoder::new_with_quality(&mut w, JPEG_QUALITY)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            ExtendedColorType::Rgb8,
        )
        .map_err(|source| SynthError::Jpeg {
            path: path.to_path_buf(),
            source,
        })?;
    w.flush().map_err(io)
}

/// `synth-scenes.json`: the exact parameters and the species, for provenance.
#[derive(Debug, Serialize)]
struct Provenance<'a> {
    generator: &'static str,
    generator_version: u32,
    parameters: &'a SceneConfig,
    /// Species names by index (`coco.json` category `index + 1`).
    species: Vec<&'a str>,
}

fn provenance<'a>(config: &'a SceneConfig, species: &'a [Species]) -> Provenance<'a> {
    Provenance {
        generator: "xrvlm-train synth-scenes",
        generator_version: GENERATOR_VERSION,
        parameters: config,
        species: species.iter().map(|s| s.name.as_str()).collect(),
    }
}

#[cfg(test)]
mod tests;
