#!/usr/bin/env bash
# The whole test suite, as CI runs it (`.ci/run` calls exactly this), on a fresh Debian machine
# with only a Rust toolchain: installs what it needs, then checks formatting, lints and runs every
# test of the workspace. Exit status non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the build needs: a C compiler, and for the `camera` feature (V4L2) libclang,
# which v4l's bindgen loads at build time, and the kernel's videodev2.h header.
need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
dpkg -s libclang-dev >/dev/null 2>&1 || need_apt+=(libclang-dev)
[ -e /usr/include/linux/videodev2.h ] || need_apt+=(linux-libc-dev)
# The boards' build (aarch64): Debian's cross linker and qemu to run what it builds.
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need_apt+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null 2>&1 || need_apt+=(qemu-user)
command -v file >/dev/null 2>&1 || need_apt+=(file)
# The runtime's tests read `classify --detections` output with Python's json module, as
# MegaDetector's and Timelapse's Python tools do.
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# The service unit's hardening is checked offline by systemd's analyzer (no systemd as init).
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing: ${need_apt[*]}"
    if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup target list --installed | grep -qx aarch64-unknown-linux-musl \
    || rustup target add aarch64-unknown-linux-musl

# The field service's sandbox (deploy/xrvlm.service, docs/DEPLOY.md "Hardening"): fails if its
# exposure rises above 2.0, "OK" (--threshold is the exposure times 10). Not `systemd-analyze
# verify`: it refuses the unit because /usr/local/bin/xrvlm does not exist on a CI machine.
systemd-analyze security --offline=yes --threshold=20 deploy/xrvlm.service

# No incremental caches: a one-shot build does not reuse them and they cost disk.
export CARGO_INCREMENTAL=0

# The field hardware (V4L2 camera, SSD1306 OLED, Linux framebuffer) is behind features of
# xrvlm-runtime, off by default; `--all-features` would also ask for xrvlm-train's `cuda`.
HARDWARE=(--features xrvlm-runtime/hardware)

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked "${HARDWARE[@]}" -- -D warnings
# The default build's stand-ins for the hardware ("rebuild with --features camera") are only
# compiled without the features: lint the runtime that way too (the other crates do not change
# with the features). Their tests run in the aarch64 leg below, which builds without the
# features; a host test build of the runtime alone would rebuild its dependencies with another
# feature set (10.6 min of CI on 2 cores, measured).
cargo clippy -p xrvlm-runtime --all-targets --locked -- -D warnings
cargo test --workspace --locked "${HARDWARE[@]}"

# The boards (aarch64), built once: the static musl target, linked by Debian's aarch64 gcc and
# run by qemu as a Cortex-A76, the Raspberry Pi 5's core (.cargo/config.toml). The runtime's
# tests run under emulation, tract's ARM int8 (SDOT) and fp16 kernels included; tests that
# start the `xrvlm` binary start it through qemu too.
AARCH64=aarch64-unknown-linux-musl
XRVLM_TEST_RUNNER="qemu-aarch64 -cpu cortex-a76" cargo test -p xrvlm-runtime --locked --target "$AARCH64"
# That build's `xrvlm` is one static binary; on the device it first proves the demo bundle at
# int8 against the manifest (exit 3 on a regression).
kind=$(file "target/$AARCH64/debug/xrvlm")
echo "$kind"
grep -q "statically linked" <<<"$kind"
qemu-aarch64 -cpu cortex-a76 "target/$AARCH64/debug/xrvlm" check --bundle models/demo --precision int8 \
    --report "target/$AARCH64/check-report.json"
