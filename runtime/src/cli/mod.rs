//! The `xrvlm` commands, one file each, all of the same shape: a clap `Args` struct and a
//! `run(args) -> anyhow::Result<Status>`.
//!
//! Exit codes: 0 when everything succeeded, 1 on an error that stopped the command (a bundle
//! refused, an output that cannot be written), 2 when the command finished but some inputs
//! failed (an unreadable image or an unusable box in `classify`, a log line that is not a record in
//! `export-camtrap`), 3 when `check` found a regression. Errors are printed once, with their causes. A
//! closed stdout (`| head`) ends the command quietly with 0.

mod bench;
mod check;
mod classify;
mod classify_detections;
mod explain;
mod export_camtrap;
mod info;
mod inputs;
mod keygen;
mod output;
mod run;
mod sign;
mod trust;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// XR-VLM species recognition on the edge.
#[derive(Debug, Parser)]
#[command(name = "xrvlm", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Classify image files and folder trees with a bundle, or (--detections) the animals a
    /// MegaDetector batch-output file has boxes for.
    Classify(classify::ClassifyArgs),
    /// Print a bundle's manifest and verify every file.
    Info(info::InfoArgs),
    /// Check the bundle on this device: golden parity and a labelled set's accuracy against
    /// the manifest's reference figures (exit code 3 on a regression).
    Check(check::CheckArgs),
    /// Time loading, preprocessing, the image model and scoring, and report peak memory.
    Bench(bench::BenchArgs),
    /// Run the field loop of a board profile: frames in, detection log, saved frames and
    /// status display out, until the source ends or SIGTERM/SIGINT.
    Run(run::RunArgs),
    /// Write a Camtrap DP package from a field detection log.
    ExportCamtrap(export_camtrap::ExportCamtrapArgs),
    /// Make an Ed25519 key pair for signing bundles.
    Keygen(keygen::KeygenArgs),
    /// Verify a bundle and sign its manifest (writes manifest.sig).
    Sign(sign::SignArgs),
}

/// How a command that ran to the end went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything succeeded.
    Success,
    /// The command finished, but some inputs failed (and were recorded).
    SomeInputsFailed,
    /// `check` measured a figure outside its tolerance.
    Regression,
}

/// Parses the command line, runs the command and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Classify(args) => classify::run(args),
        Command::Info(args) => info::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Check(args) => check::run(args),
        Command::Run(args) => run::run(args),
        Command::ExportCamtrap(args) => export_camtrap::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Sign(args) => sign::run(args),
    };
    match result {
        Ok(Status::Success) => ExitCode::SUCCESS,
        Ok(Status::SomeInputsFailed) => ExitCode::from(2),
        Ok(Status::Regression) => ExitCode::from(3),
        // The reader of stdout went away (`xrvlm classify … | head`): stop quietly, as Unix
        // filters do, instead of reporting an error nobody asked about.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xrvlm: error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// Whether `err` was caused by writing to a closed pipe.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
