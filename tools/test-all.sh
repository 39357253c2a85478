#!/usr/bin/env bash
# The whole test suite, as CI runs it (`.ci/run` calls exactly this), on a fresh Debian machine
# with only a Rust toolchain: installs what it needs, then checks formatting, lints and runs every
# test of the workspace. Exit status non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the build needs (none beyond a C compiler today; later issues add
# libclang-dev for V4L2 bindings and the aarch64 cross toolchain + qemu).
need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing: ${need_apt[*]}"
    if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

# No incremental caches: a one-shot build does not reuse them and they cost disk.
export CARGO_INCREMENTAL=0

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
