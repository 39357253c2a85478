//! Writing a whole synthetic dataset: the ImageFolder tree, `captions.jsonl`, `species.json` and
//! `synth.json`.
//!
//! Each image is a job keyed by (seed, class stream, image index); worker threads take jobs from a
//! shared counter, render them from their own keyed stream and write their own file, and the
//! caption records are put back in job order. The output therefore depends only on the
//! parameters, never on scheduling: the same arguments give byte-identical files.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbImage};
use serde::Serialize;

use super::captions::{bird_caption, empty_caption};
use super::random::{chance, keyed_rng, DOMAIN_IMAGE};
use super::scene::render_frame;
use super::species::{derive_species, Attributes, Species};
use super::taxonomy::Taxonomy;
use super::{SynthConfig, SynthError, BLANK_CLASS};

/// Class stream of the empty frames (species use their index).
pub const BLANK_STREAM: u64 = u64::MAX;
/// Version of the output format and of the generator's drawing rules; bumped whenever the same
/// parameters would give different files. 2: `species.json` gives each species' taxonomy (the
/// images are those of 1).
pub const GENERATOR_VERSION: u32 = 2;

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSummary {
    /// The species, in world order.
    pub species: Vec<Species>,
    /// Images written, empty frames included.
    pub images: usize,
    /// Empty frames written.
    pub blank: usize,
    /// Night frames written.
    pub night: usize,
}

/// One image to render.
#[derive(Debug, Clone)]
struct Job {
    /// Class folder.
    folder: String,
    /// Image index within its class.
    index: usize,
    /// Species index, `None` for an empty frame.
    species: Option<usize>,
}

/// One line of `captions.jsonl`.
#[derive(Debug, Clone, Serialize)]
struct CaptionRecord {
    image: String,
    caption: String,
    species: String,
    night: bool,
    empty: bool,
}

/// Generates the dataset described by `config` into `out`, which must be absent or empty.
///
/// Writes `out/<species>/<NNNNN>.png` (and `out/blank/...`), `captions.jsonl` (one record per
/// image, species in world order then blank frames), `species.json` and `synth.json`.
pub fn generate(config: &SynthConfig, out: &Path) -> Result<SynthSummary, SynthError> {
    config.validate()?;
    prepare_output(out)?;
    let species = derive_species(config.world, config.classes);
    let jobs = plan(config, &species);
    for folder in class_folders(config, &species) {
        let dir = out.join(&folder);
        fs::create_dir(&dir).map_err(|source| SynthError::Io { path: dir, source })?;
    }
    let records = run_jobs(config, &species, &jobs, out)?;
    write_jsonl(&out.join("captions.jsonl"), &records)?;
    write_json(&out.join("species.json"), &species_file(config, &species))?;
    write_json(&out.join("synth.json"), &provenance(config, &species))?;
    Ok(SynthSummary {
        images: records.len(),
        blank: records.iter().filter(|r| r.empty).count(),
        night: records.iter().filter(|r| r.night).count(),
        species,
    })
}

/// Creates `out`, or checks that it is empty.
pub(crate) fn prepare_output(out: &Path) -> Result<(), SynthError> {
    let io = |source| SynthError::Io {
        path: out.to_path_buf(),
        source,
    };
    if out.exists() {
        if fs::read_dir(out).map_err(io)?.next().is_some() {
            return Err(SynthError::OutputNotEmpty {
                path: out.to_path_buf(),
            });
        }
        return Ok(());
    }
    fs::create_dir_all(out).map_err(io)
}

/// The ImageFolder class folders, sorted as `ImageFolder` sorts them (label order).
fn class_folders(config: &SynthConfig, species: &[Species]) -> Vec<String> {
    let mut folders: Vec<String> = species.iter().map(|s| s.name.clone()).collect();
    if config.blank_images() > 0 {
        folders.push(BLANK_CLASS.to_owned());
    }
    folders.sort();
    folders
}

fn plan(config: &SynthConfig, species: &[Species]) -> Vec<Job> {
    let birds = species.iter().flat_map(|s| {
        (0..config.per_class).map(|index| Job {
            folder: s.name.clone(),
            index,
            species: Some(s.index),
        })
    });
    let blanks = (0..config.blank_images()).map(|index| Job {
        folder: BLANK_CLASS.to_owned(),
        index,
        species: None,
    });
    birds.chain(blanks).collect()
}

/// Renders and writes every job on all cores; returns the records in job order.
fn run_jobs(
    config: &SynthConfig,
    species: &[Species],
    jobs: &[Job],
    out: &Path,
) -> Result<Vec<CaptionRecord>, SynthError> {
    run_parallel(jobs, out, |job| run_job(config, species, job, out))
}

/// Runs `work` on every job on all cores, each worker taking the next job from a shared
/// counter; returns the results in job order (so they never depend on scheduling), or the
/// first job's error in that order. `out` names the output folder in a panic's error.
pub(crate) fn run_parallel<J: Sync, T: Send>(
    jobs: &[J],
    out: &Path,
    work: impl Fn(&J) -> Result<T, SynthError> + Sync,
) -> Result<Vec<T>, SynthError> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(jobs.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, Result<T, SynthError>)> = Vec::with_capacity(jobs.len());
    let mut panicked = false;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        mine.push((i, work(job)));
                    }
                    mine
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(mine) => done.extend(mine),
                Err(_) => panicked = true,
            }
        }
    });
    if panicked {
        return Err(SynthError::WorkerPanicked {
            path: out.to_path_buf(),
        });
    }
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Renders one image, writes it, and returns its caption record.
fn run_job(
    config: &SynthConfig,
    species: &[Species],
    job: &Job,
    out: &Path,
) -> Result<CaptionRecord, SynthError> {
    let stream = job.species.map_or(BLANK_STREAM, |s| s as u64);
    let mut rng = keyed_rng(DOMAIN_IMAGE, config.seed, stream, job.index as u64);
    // Both decisions are drawn first and always, so each fraction changes only what it governs.
    let night = chance(&mut rng, config.night_fraction);
    let named = chance(&mut rng, config.name_fraction);
    let sp: Option<&Species> = job.species.and_then(|i| species.get(i));
    let attrs: Option<&Attributes> = sp.map(|s| &s.attributes);
    let frame = render_frame(&mut rng, attrs, config.size, night, config.framing);
    let caption = match (sp, &frame.bird) {
        (Some(s), Some(view)) => {
            let name = named.then(|| s.spoken_name());
            bird_caption(&mut rng, &s.attributes, view, night, name.as_deref())
        }
        _ => empty_caption(&mut rng, &frame.backdrop, night),
    };
    let image = format!("{}/{:05}.png", job.folder, job.index);
    write_png(&out.join(&image), &frame.image)?;
    Ok(CaptionRecord {
        image,
        caption,
        species: job.folder.clone(),
        night,
        empty: sp.is_none(),
    })
}

fn write_png(path: &Path, img: &RgbImage) -> Result<(), SynthError> {
    let io = |source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut w = BufWriter::new(File::create(path).map_err(io)?);
    PngEncoder::new(&mut w)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            ExtendedColorType::Rgb8,
        )
        .map_err(|source| SynthError::Png {
            path: path.to_path_buf(),
            source,
        })?;
    w.flush().map_err(io)
}

/// Writes one compact JSON line per record.
pub(crate) fn write_jsonl<T: Serialize>(path: &Path, records: &[T]) -> Result<(), SynthError> {
    let mut text = String::new();
    for r in records {
        let line = serde_json::to_string(r).map_err(|source| SynthError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        text.push_str(&line);
        text.push('\n');
    }
    fs::write(path, text).map_err(|source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `value` as pretty JSON and a final newline.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), SynthError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| SynthError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    text.push('\n');
    fs::write(path, text).map_err(|source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `species.json`: the world, the class folders in label order, and each species.
#[derive(Debug, Serialize)]
struct SpeciesFile<'a> {
    world: u64,
    /// ImageFolder classes in label order (sorted names, `blank` included when present).
    classes: Vec<String>,
    /// Species in label order.
    species: Vec<SpeciesEntry<'a>>,
}

#[derive(Debug, Serialize)]
struct SpeciesEntry<'a> {
    name: &'a str,
    /// ImageFolder label: the position of `name` in `classes`.
    label: usize,
    /// Position in the world's species list (stable when `--classes` grows).
    index: usize,
    attributes: &'a Attributes,
    description: String,
    /// Genus, family, order and class ([`crate::taxonomy`]).
    taxonomy: Taxonomy,
}

fn species_file<'a>(config: &SynthConfig, species: &'a [Species]) -> SpeciesFile<'a> {
    let classes = class_folders(config, species);
    let mut entries: Vec<SpeciesEntry> = species
        .iter()
        .map(|s| SpeciesEntry {
            name: &s.name,
            label: classes.iter().position(|c| *c == s.name).unwrap_or(0),
            index: s.index,
            attributes: &s.attributes,
            description: s.attributes.description(),
            taxonomy: Taxonomy::of(&s.attributes),
        })
        .collect();
    entries.sort_by_key(|e| e.label);
    SpeciesFile {
        world: config.world,
        classes,
        species: entries,
    }
}

/// `synth.json`: the exact parameters, for provenance.
#[derive(Debug, Serialize)]
struct Provenance<'a> {
    generator: &'static str,
    generator_version: u32,
    parameters: &'a SynthConfig,
    classes: Vec<String>,
    bird_images: usize,
    blank_images: usize,
}

fn provenance<'a>(config: &'a SynthConfig, species: &[Species]) -> Provenance<'a> {
    Provenance {
        generator: "xrvlm-train synth",
        generator_version: GENERATOR_VERSION,
        parameters: config,
        classes: class_folders(config, species),
        bird_images: config.classes * config.per_class,
        blank_images: config.blank_images(),
    }
}
