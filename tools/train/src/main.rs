//! `xrvlm-train`: train, evaluate and inspect XR-VLM models. `main` only maps the result of a
//! subcommand to an exit code: 0 on success, 2 on error (the full error chain on stderr).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = xrvlm_train::cli::Cli::parse();
    match xrvlm_train::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
