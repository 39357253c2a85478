//! Test support shared by the integration tests: tiny ONNX models, bundles written on the
//! fly, and a seeded generator. Each test binary uses part of it.
#![allow(dead_code)]

pub mod bundle_writer;
pub mod onnx_model;
pub mod rng;
pub mod weights;

use std::path::{Path, PathBuf};

use xrvlm_runtime::scoring::{CrmDims, CrmWeights, WeightsError};

/// The committed demo bundle.
pub fn demo_bundle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/demo")
}

/// A file or folder under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The `xrvlm` binary under test, as a command. Where the tests run under emulation (an aarch64
/// build on an x86 machine without binfmt_misc, `tools/test-all.sh`), `XRVLM_TEST_RUNNER` names
/// the emulator (e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu`) that runs it.
pub fn xrvlm() -> std::process::Command {
    let binary = env!("CARGO_BIN_EXE_xrvlm");
    let runner = std::env::var("XRVLM_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        None => std::process::Command::new(binary),
        Some(emulator) => {
            let mut command = std::process::Command::new(emulator);
            command.args(words).arg(binary);
            command
        }
    }
}

/// The `xrvlm` binary under test as `cpu` runs it, where the tests start it through qemu
/// (`XRVLM_TEST_RUNNER` = `qemu-aarch64 -cpu …`): the runner with its `-cpu` replaced. `None`
/// where the binary runs natively.
pub fn xrvlm_as_cpu(cpu: &str) -> Option<std::process::Command> {
    let runner = std::env::var("XRVLM_TEST_RUNNER").unwrap_or_default();
    let mut words: Vec<&str> = runner.split_whitespace().collect();
    if !words.first()?.starts_with("qemu-") {
        return None;
    }
    match words.iter().position(|w| *w == "-cpu") {
        Some(i) if i + 1 < words.len() => words[i + 1] = cpu,
        _ => words.splice(1..1, ["-cpu", cpu]).for_each(drop),
    }
    let mut command = std::process::Command::new(words[0]);
    command.args(&words[1..]).arg(env!("CARGO_BIN_EXE_xrvlm"));
    Some(command)
}
