//! `xrvlm bench BUNDLE`: where the time goes, on this device.
//!
//! Times bundle verification and plan building (which reads and verifies the image model) once,
//! then for every frame (after warm-up) decoding, preprocessing, the image model and scoring
//! separately, and reports the median, 10th and 90th percentiles (nearest rank) of each, plus
//! the peak resident memory of the process (`VmHWM` in `/proc/self/status`, Linux only). Frames
//! cycle over the given images, or the bundle's golden images.
//!
//! With `--crop X,Y,W,H` every frame is also classified on the square crop of that box (the
//! crop rule of `classify --detections` and of the field loop's motion region), right after
//! its whole-frame run, so both paths are timed side by side under the same conditions: the
//! crop's cut, preprocessing, image model and scoring (decoding is the frame's, counted in
//! both totals).

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use image::RgbImage;
use xrvlm_runtime::bundle::Bundle;
use xrvlm_runtime::classifier::Classifier;
use xrvlm_runtime::crop::{CropRule, NormalizedBox};
use xrvlm_runtime::engine::{PlanOptions, Precision, Profile};
use xrvlm_runtime::image_io::load_rgb;

use super::Status;

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The model bundle directory.
    pub bundle: PathBuf,
    /// Arithmetic of the image model: fp32, int8 or f16.
    #[arg(long, default_value = "fp32")]
    pub precision: Precision,
    /// Threads for the image model.
    #[arg(long, default_value = "1")]
    pub threads: NonZeroUsize,
    /// Frames measured.
    #[arg(long, default_value = "50")]
    pub frames: NonZeroUsize,
    /// Frames run before measuring.
    #[arg(long, default_value = "5")]
    pub warmup: usize,
    /// Images to cycle over (default: the bundle's golden images).
    #[arg(long = "image")]
    pub images: Vec<PathBuf>,
    /// Also time every operation of the image model over this many frames and print where the
    /// time goes, per kind of operation.
    #[arg(long, value_name = "FRAMES")]
    pub profile: Option<NonZeroUsize>,
    /// Also time each frame classified on the square crop of this box (fractions of the
    /// frame: left, top, width, height, as MegaDetector writes them).
    #[arg(long, value_name = "X,Y,W,H", value_parser = parse_box)]
    pub crop: Option<NormalizedBox>,
}

/// `X,Y,W,H` as a checked box.
fn parse_box(text: &str) -> Result<NormalizedBox, String> {
    let values: Vec<f64> = text
        .split(',')
        .map(|v| v.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("'{text}': {e}; expected four numbers X,Y,W,H"))?;
    let [x, y, w, h] = values[..] else {
        return Err(format!(
            "'{text}' has {} numbers; expected four: X,Y,W,H",
            values.len()
        ));
    };
    NormalizedBox::new(x, y, w, h).map_err(|e| e.to_string())
}

/// Per-frame durations of each stage of one path (whole frame, or a crop: then `decode` is
/// the crop's cut and `total` also counts the frame's decoding).
#[derive(Default)]
struct Samples {
    decode: Vec<Duration>,
    preprocess: Vec<Duration>,
    model: Vec<Duration>,
    scoring: Vec<Duration>,
    total: Vec<Duration>,
}

/// Runs `bench`.
pub fn run(args: BenchArgs) -> Result<Status> {
    let start = Instant::now();
    let bundle = Bundle::open(&args.bundle)
        .with_context(|| format!("loading bundle {}", args.bundle.display()))?;
    let verify = start.elapsed();
    let images = if args.images.is_empty() {
        bundle
            .golden()
            .iter()
            .map(|g| bundle.golden_image(g))
            .collect()
    } else {
        args.images.clone()
    };
    let start = Instant::now();
    let options = PlanOptions {
        precision: args.precision,
        threads: args.threads,
    };
    let classifier = Classifier::new(bundle, options)
        .with_context(|| format!("preparing the {} image model", args.precision))?;
    let plan = start.elapsed();
    let mut samples = Samples::default();
    let mut crops = Samples::default();
    for i in 0..args.warmup + args.frames.get() {
        let t0 = Instant::now();
        let decoded = load_rgb(&images[i % images.len()])?;
        let decode = t0.elapsed();
        let frame = measure_stages(&classifier, &decoded, decode)?;
        let crop = args
            .crop
            .map(|bbox| measure_crop(&classifier, &decoded, bbox))
            .transpose()?;
        if i >= args.warmup {
            samples.push(frame, Duration::ZERO);
            if let Some(crop) = crop {
                crops.push(crop, decode);
            }
        }
    }
    print!(
        "{}",
        report(&args, verify, plan, &samples, peak_memory_kib())
    );
    if let Some(bbox) = args.crop {
        print!("{}", crop_report(bbox, &decoded_size(&images[0])?, &crops));
    }
    if let Some(frames) = args.profile {
        let decoded = load_rgb(&images[0])?;
        let input = classifier.preprocess().apply(&decoded)?;
        let profile = classifier.plan().profile(&input, frames.get())?;
        print!("{}", profile_report(&profile, frames.get()));
    }
    Ok(Status::Success)
}

/// One image's stage durations: `first` (its decoding or cut), preprocess, model, scoring.
fn measure_stages(
    classifier: &Classifier,
    image: &RgbImage,
    first: Duration,
) -> Result<[Duration; 4]> {
    let (_, t) = classifier.classify_timed(image, 1)?;
    Ok([first, t.preprocess, t.model, t.scoring])
}

/// The crop path's durations: the cut of `bbox`'s square, then the stages on it.
fn measure_crop(
    classifier: &Classifier,
    frame: &RgbImage,
    bbox: NormalizedBox,
) -> Result<[Duration; 4]> {
    let t0 = Instant::now();
    let crop = CropRule::DETECTION.cut(frame, bbox);
    measure_stages(classifier, &crop, t0.elapsed())
}

/// The first image's width and height, for the crop report.
fn decoded_size(image: &Path) -> Result<(u32, u32)> {
    Ok(load_rgb(image)?.dimensions())
}

impl Samples {
    /// One run's stages; `before` is time spent before them that the total also counts (the
    /// frame's decoding, for a crop).
    fn push(&mut self, [first, preprocess, model, scoring]: [Duration; 4], before: Duration) {
        self.decode.push(first);
        self.preprocess.push(preprocess);
        self.model.push(model);
        self.scoring.push(scoring);
        self.total
            .push(before + first + preprocess + model + scoring);
    }
}

/// Median, p10 and p90 (nearest rank) of `samples`.
fn summarize(samples: &[Duration]) -> [Duration; 3] {
    let mut sorted = samples.to_vec();
    sorted.sort();
    [0.5, 0.1, 0.9].map(|q| nearest_rank(&sorted, q))
}

/// The smallest sample with at least a fraction `q` of the samples at or below it.
fn nearest_rank(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn report(
    args: &BenchArgs,
    verify: Duration,
    plan: Duration,
    samples: &Samples,
    peak_kib: Option<u64>,
) -> String {
    let mut out = format!(
        "xrvlm bench {}: precision {}, {} thread(s), {} frames after {} warm-up, batch 1\n",
        args.bundle.display(),
        args.precision,
        args.threads,
        args.frames,
        args.warmup
    );
    out += &format!("load: verify {} ms, plan {} ms\n", ms(verify), ms(plan));
    out += &stage_table(samples, "decode", "total");
    out += &match peak_kib {
        Some(kib) => format!("peak memory (VmHWM): {:.1} MiB\n", kib as f64 / 1024.0),
        None => "peak memory: unavailable (no /proc/self/status)\n".to_string(),
    };
    out
}

/// The stages' median, p10 and p90; `first` names the first stage, `total` the last row.
fn stage_table(samples: &Samples, first: &str, total: &str) -> String {
    let mut out = format!(
        "{:<12} {:>10} {:>10} {:>10}\n",
        "stage (ms)", "median", "p10", "p90"
    );
    let rows = [
        (first, &samples.decode),
        ("preprocess", &samples.preprocess),
        ("image model", &samples.model),
        ("scoring", &samples.scoring),
        (total, &samples.total),
    ];
    for (name, values) in rows {
        let [median, p10, p90] = summarize(values);
        out += &format!(
            "{name:<12} {:>10} {:>10} {:>10}\n",
            ms(median),
            ms(p10),
            ms(p90)
        );
    }
    out
}

/// The crop path's table, after the whole frame's.
fn crop_report(bbox: NormalizedBox, (width, height): &(u32, u32), crops: &Samples) -> String {
    let rect = CropRule::DETECTION.square(bbox, *width, *height);
    let mut out = format!(
        "crop of {:?} (first image: a {}x{} square of the {width}x{height} frame), each frame \
         right after its whole-frame run; total = the frame's decode + the rows above it\n",
        bbox.to_array(),
        rect.width,
        rect.height
    );
    out += &stage_table(crops, "cut", "total");
    out
}

/// The per-operation table: time per frame, share of the image model, node count.
fn profile_report(profile: &Profile, frames: usize) -> String {
    let total = profile.total().as_secs_f64().max(f64::MIN_POSITIVE);
    let mut out = format!(
        "image model by operation ({frames} frame(s) profiled, {} ms per frame in all)\n",
        ms(profile.total() / frames as u32)
    );
    out += &format!(
        "{:<32} {:>6} {:>12} {:>7}\n",
        "operation", "nodes", "ms/frame", "share"
    );
    for op in &profile.ops {
        out += &format!(
            "{:<32} {:>6} {:>12} {:>6.1}%\n",
            op.op,
            op.nodes,
            ms(op.total / frames as u32),
            100.0 * op.total.as_secs_f64() / total
        );
    }
    out
}

/// Peak resident set size of this process in KiB, from `/proc/self/status`.
fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<Duration> = (1..=10).rev().map(Duration::from_millis).collect();
        let [median, p10, p90] = summarize(&samples);
        assert_eq!(
            (median, p10, p90),
            (
                Duration::from_millis(5),
                Duration::from_millis(1),
                Duration::from_millis(9)
            )
        );
        assert_eq!(
            summarize(&[Duration::from_millis(3)])[2],
            Duration::from_millis(3)
        );
    }

    #[test]
    fn crop_boxes_parse_as_four_checked_numbers() {
        let b = parse_box("0.1, 0.2,0.3,0.4").unwrap();
        assert_eq!(b.to_array(), [0.1, 0.2, 0.3, 0.4]);
        assert!(parse_box("0.1,0.2,0.3")
            .unwrap_err()
            .contains("expected four"));
        assert!(parse_box("0.1,x,0.3,0.4")
            .unwrap_err()
            .contains("expected four"));
        assert!(parse_box("0.9,0.2,0.3,0.4")
            .unwrap_err()
            .contains("outside"));
    }

    #[test]
    fn vm_hwm_is_read_in_kib() {
        let status = "Name:\txrvlm\nVmPeak:\t  9999 kB\nVmHWM:\t   20480 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(20480));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
    }
}
