//! `xrvlm run --config PROFILE [--max-frames N]`: the field loop, from boot until power-off.
//!
//! SIGTERM (systemd stopping the service) and SIGINT (Ctrl-C) finish the current frame, close
//! the open event, log health and exit 0. What the loop records is echoed on standard output as
//! it reaches the disk, filtered by the profile's `log.level`: events at `info`, every frame at
//! `debug`, failures at `warn`; an event printed here is on disk.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context, Result};
use xrvlm_runtime::field::config::{LogLevel, Profile};
use xrvlm_runtime::field::detection_log::{Entry, Record};
use xrvlm_runtime::field::station::assemble::open_station;
use xrvlm_runtime::field::station::{StationOptions, StopReason};

use super::Status;

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The board profile (`firmware-config/BOARD.toml`).
    #[arg(long)]
    pub config: PathBuf,
    /// Stop after this many frames from the source (for trials and tests).
    #[arg(long)]
    pub max_frames: Option<u64>,
}

/// Runs the field loop.
pub fn run(args: RunArgs) -> Result<Status> {
    let profile = Profile::load(&args.config)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the SIGTERM/SIGINT handlers")?;
    }
    let options = StationOptions {
        max_frames: args.max_frames,
        ..StationOptions::from_profile(&profile)
    };
    let mut station = open_station(&profile, options)
        .with_context(|| format!("cannot start the profile {}", args.config.display()))?;
    let level = profile.log.level;
    if level >= LogLevel::Info {
        println!(
            "xrvlm run: {} -> {} (source: {})",
            profile.deployment.id,
            station.log_path().display(),
            station.source_name()
        );
    }
    let summary = station.run(&stop, |entry| echo(entry, level))?;
    let c = &summary.counters;
    if level >= LogLevel::Info {
        let why = match summary.reason {
            StopReason::SourceEnded => "the source ended",
            StopReason::MaxFrames => "--max-frames reached",
            StopReason::Stopped => "stopped by a signal",
        };
        println!(
            "xrvlm run: {why}: {} frames, {} scored, {} skipped by the gate, {} events, {} failures",
            c.frames, c.inferences, c.skipped, c.events, c.failures
        );
    }
    Ok(Status::Success)
}

/// Prints a record that reached the disk, if `level` asks for its kind.
fn echo(entry: &Entry, level: LogLevel) {
    let line = match &entry.record {
        Record::Event(e) if level >= LogLevel::Info => format!(
            "event {} logged: {} frames, {:?}, best {:.3} ({} .. {})",
            e.event_id, e.frames, e.outcome, e.best_probability, e.start, e.end
        ),
        Record::Failure(f) if level >= LogLevel::Warn => format!(
            "failure ({:?}){}: {}",
            f.stage,
            f.file_name
                .as_deref()
                .map(|n| format!(" {n}"))
                .unwrap_or_default(),
            f.error
        ),
        Record::Recovery(r) if level >= LogLevel::Warn => format!(
            "recovered the log: a torn last line ({} bytes) was set aside in {}",
            r.torn_bytes, r.side_file
        ),
        Record::Frame(f) if level >= LogLevel::Debug => format!(
            "frame {} {} {}: {:?} ({:.1} ms){}",
            f.media_id,
            f.file_name,
            f.captured,
            f.outcome,
            f.latency_ms,
            f.saved_frame
                .as_deref()
                .map(|p| format!(" saved {p}"))
                .unwrap_or_default()
        ),
        Record::Health(h) if level >= LogLevel::Debug => format!(
            "health: {} frames, {} scored, {} events, {} failures, mean {:.1} ms",
            h.frames,
            h.inferences,
            h.events,
            h.failures,
            h.mean_latency_ms.unwrap_or(0.0)
        ),
        _ => return,
    };
    // A closed or full stdout must not stop the camera: the log on disk is the record.
    let _ = writeln!(std::io::stdout(), "{line}");
}
