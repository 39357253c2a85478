//! `xrvlm`: the XR-VLM edge runtime's command line. The commands live in `cli/`; this file
//! only maps their outcome to the exit code (0 success, 1 error, 2 some inputs failed).

mod cli;

fn main() -> std::process::ExitCode {
    no_error_backtraces();
    cli::main()
}

/// Turns off the backtraces that errors capture (`std::backtrace::Backtrace::capture`, which
/// anyhow calls for every error it builds) unless the user asked for them by name with
/// `RUST_LIB_BACKTRACE`. tract builds and drops errors on the happy path while it optimizes a
/// model (`Tensor::close_enough`, asked by `TypedBinOp::declutter` whether a constant is
/// uniform: 134 errors loading the demo at int8), so with `RUST_BACKTRACE=1`, as a unit file
/// may set it to debug a crash, each of them walked the stack: on a Cortex-A76 (static musl
/// build, libunwind) that made loading the demo at int8 and running one frame cost 2.95× the
/// cycles (`BENCHMARKS.md`, "Load time"). Nothing is lost: `main` prints errors with their
/// causes, never a backtrace. Panics still follow `RUST_BACKTRACE`, which this leaves alone.
/// Called first thing in `main`, while no other thread exists to read the environment as it
/// changes.
fn no_error_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
}
