//! `xrvlm`: the XR-VLM edge runtime's command line. The commands live in `cli/`; this file
//! only maps their outcome to the exit code (0 success, 1 error, 2 some inputs failed).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
