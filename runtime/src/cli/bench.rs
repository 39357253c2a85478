//! `xrvlm bench BUNDLE`: where the time goes, on this device.
//!
//! Times bundle verification and plan building (which reads and verifies the image model) once,
//! then for every frame (after warm-up) decoding, preprocessing, the image model and scoring
//! separately, and reports the median, 10th and 90th percentiles (nearest rank) of each, plus
//! the peak resident memory of the process (`VmHWM` in `/proc/self/status`, Linux only). Frames
//! cycle over the given images, or the bundle's golden images.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use xrvlm_runtime::bundle::Bundle;
use xrvlm_runtime::classifier::Classifier;
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
}

/// Per-frame durations of each stage.
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
    for i in 0..args.warmup + args.frames.get() {
        let frame = measure_frame(&classifier, &images[i % images.len()])?;
        if i >= args.warmup {
            samples.push(frame);
        }
    }
    print!(
        "{}",
        report(&args, verify, plan, &samples, peak_memory_kib())
    );
    if let Some(frames) = args.profile {
        let decoded = load_rgb(&images[0])?;
        let input = classifier.preprocess().apply(&decoded)?;
        let profile = classifier.plan().profile(&input, frames.get())?;
        print!("{}", profile_report(&profile, frames.get()));
    }
    Ok(Status::Success)
}

/// One frame's stage durations: decode, preprocess, model, scoring.
fn measure_frame(classifier: &Classifier, image: &Path) -> Result<[Duration; 4]> {
    let t0 = Instant::now();
    let decoded = load_rgb(image)?;
    let decode = t0.elapsed();
    let (_, t) = classifier.classify_timed(&decoded, 1)?;
    Ok([decode, t.preprocess, t.model, t.scoring])
}

impl Samples {
    fn push(&mut self, [decode, preprocess, model, scoring]: [Duration; 4]) {
        self.decode.push(decode);
        self.preprocess.push(preprocess);
        self.model.push(model);
        self.scoring.push(scoring);
        self.total.push(decode + preprocess + model + scoring);
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
    out += &format!(
        "{:<12} {:>10} {:>10} {:>10}\n",
        "stage (ms)", "median", "p10", "p90"
    );
    let rows = [
        ("decode", &samples.decode),
        ("preprocess", &samples.preprocess),
        ("image model", &samples.model),
        ("scoring", &samples.scoring),
        ("total", &samples.total),
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
    out += &match peak_kib {
        Some(kib) => format!("peak memory (VmHWM): {:.1} MiB\n", kib as f64 / 1024.0),
        None => "peak memory: unavailable (no /proc/self/status)\n".to_string(),
    };
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
    fn vm_hwm_is_read_in_kib() {
        let status = "Name:\txrvlm\nVmPeak:\t  9999 kB\nVmHWM:\t   20480 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(20480));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
    }
}
