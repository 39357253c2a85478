#!/usr/bin/env bash
# Modelled Cortex-A76 (Raspberry Pi 5) cycles of one frame of `xrvlm bench` at fp32, f16 and
# int8, counted by a64-cycles (the team's qemu plugin, ../shared/tools/a64-cycles/README.md) on
# the release aarch64 musl build: a measurement of ARM speed that anyone can repeat on an x86 box.
# qemu's wall time means nothing here (it emulates floating point in software); the counted
# instructions, priced at the A76's issue rates, are the figure. Compare them as ratios (int8 vs
# fp32, before vs after a change), never as a board's milliseconds.
#
#   bash tools/arm-cycles.sh [BUNDLE]        (default: models/demo)
#
# What it prints:
# - per precision, the cycles of one frame (decode, preprocess, image model, scoring), with the
#   set-up taken out: every run is `xrvlm bench BUNDLE --threads 1 --warmup 0` on one image, at
#   FRAMES_1 (1) and FRAMES_2 (3) frames, and one frame is (cycles(F2) - cycles(F1)) / (F2 - F1)
#   (bench cannot run zero frames). This is done per A76 pipe (ASIMD, load, store, decode) and the
#   busiest pipe is the frame's figure. A refused precision (f16 on a CPU without fp16
#   arithmetic) is reported as refused and the others go on.
# - int8 against fp32: how many times fewer cycles a frame takes;
# - the share of the int8 frame spent outside the int8 products (a64-cycles' per-function
#   table, additive cycles, differenced the same way), its 15 costliest functions, and whether
#   integer MLA/SMLAL instructions run inside the products (a run with `--sym`: SMLAL there
#   means the SDOT kernel was not chosen);
# - the set-up (bundle verification, plan building, the first frame's extra) of an int8 run,
#   without and with RUST_BACKTRACE=1 in the environment.
#
# Issue 16's figures are on models/demo and on a ViT-B/16-width bundle with 4 blocks
# (`VISION_LAYERS=4 bash tools/make-vitb16-bundle.sh`: 224 px, patch 16, width 768, 12 heads,
# MLP 3072; 4 is the fewest XR-VLM takes), because 12 blocks at fp32 take long under emulation.
# Every block is the same matrix shapes on the same 197 tokens, so a block's int8/fp32 ratio is
# the 12-block model's; only the patch embedding, the head and pre/post-processing weigh more in
# the 4-block total than they would in 12 (they are counted once either way; see the top-15
# table).
#
# Environment: A64_CYCLES (the tool; default ../shared/tools/a64-cycles/a64-cycles beside this
# checkout), XRVLM (a prebuilt aarch64 `xrvlm`: skips the build), PRECISIONS ("fp32 f16 int8"),
# FRAMES_1 / FRAMES_2 (1 / 3), IMAGE (default: the bundle's first golden image), LOG_DIR (every
# run's a64-cycles report; default out/arm-cycles/<bundle path, / as ->), PRODUCT_SYMS (below).
#
# Figures are exact counts of one process, but repeat runs of one build differ by up to ~1 %
# (hashing and allocation differ per process): read a change smaller than that as none.
#
# Time on a 2-core x86 box (runs one at a time): the demo bundle ~35 s; the 4-block ViT-B/16
# bundle ~6 min (fp32's two runs are 4 of them); plus the build, ~20 min from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."

# The int8 products: functions whose symbol (demangled, `a::b`) contains one of these words.
# tract's arm64 int8 matrix kernels (`arm64simd_mmm_i32_8x8`, ...) and our own aarch64 kernel.
PRODUCT_SYMS="${PRODUCT_SYMS:-mmm_i32 i32_8x8 aarch64::int8_gemm}"

bundle="${1:-models/demo}"
a64="${A64_CYCLES:-$(pwd)/../shared/tools/a64-cycles/a64-cycles}"
f1="${FRAMES_1:-1}"
f2="${FRAMES_2:-3}"
precisions="${PRECISIONS:-fp32 f16 int8}"
target=aarch64-unknown-linux-musl

if [ ! -x "$a64" ]; then
  echo "arm-cycles: a64-cycles not found at $a64" >&2
  echo "  It is the team's qemu plugin (shared/tools/a64-cycles, beside the main checkout); a clone" >&2
  echo "  of the repository alone does not have it. Point A64_CYCLES at its a64-cycles script." >&2
  exit 2
fi
[ -f "$bundle/manifest.toml" ] || { echo "arm-cycles: $bundle is not a bundle (no manifest.toml)" >&2; exit 2; }
[[ "$f1" =~ ^[1-9][0-9]*$ && "$f2" =~ ^[1-9][0-9]*$ && "$f2" -gt "$f1" ]] ||
  { echo "arm-cycles: need 0 < FRAMES_1 < FRAMES_2 (got $f1, $f2)" >&2; exit 2; }
image="${IMAGE:-$(find "$bundle/golden" -maxdepth 1 -type f \( -name '*.png' -o -name '*.jpg' -o -name '*.jpeg' \) | sort | head -n 1)}"
[ -f "$image" ] || { echo "arm-cycles: no image to run (set IMAGE=...)" >&2; exit 2; }
logs="${LOG_DIR:-out/arm-cycles/$(echo "$bundle" | sed 's#^\./##; s#/*$##; s#[^A-Za-z0-9._-]#-#g')}"
mkdir -p "$logs"

# What the build and a64-cycles need: Debian's aarch64 gcc (the linker), qemu-user, gcc (the
# plugin), the aarch64 musl target (as tools/test-all.sh does).
need_apt=()
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need_apt+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null 2>&1 || need_apt+=(qemu-user)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
if [ -n "${XRVLM:-}" ]; then
  xrvlm="$XRVLM"
else
  rustup target list --installed | grep -qx "$target" || rustup target add "$target"
  cargo build --release --locked --target "$target" -p xrvlm-runtime --bin xrvlm
  xrvlm="${CARGO_TARGET_DIR:-target}/$target/release/xrvlm"
fi
# The runs use a copy whose assembly kernels are named functions (tools/arm_cycles.py symtab:
# same code; qemu only names typed functions, so a64-cycles would count tract's kernels as `?`).
python3 tools/arm_cycles.py symtab "$xrvlm" "$logs/xrvlm"

started=$SECONDS
echo "arm-cycles: bundle $bundle, image $image, frames $f1 and $f2 (warm-up 0), 1 thread"
if [ -n "${XRVLM:-}" ]; then
  echo "xrvlm: $xrvlm (prebuilt)"
else
  echo "xrvlm: $xrvlm, built from $(git describe --always --dirty 2>/dev/null || echo '?')" \
    "(runtime last changed in $(git log -1 --format=%h -- runtime Cargo.toml Cargo.lock .cargo 2>/dev/null || echo '?'))"
fi
echo "a64-cycles: $a64; $(qemu-aarch64 --version | head -n 1); reports in $logs/"

# One run under a64-cycles: TAG PRECISION FRAMES [VAR=VALUE...] [--sym SUBSTR]. Writes
# TAG.cycles (its report), TAG.out, TAG.err and TAG.status (exit code); never fails itself.
run() {
  local tag=$1 precision=$2 frames=$3 t0=$SECONDS
  shift 3
  local envs=() sym=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --sym) sym=(--sym "$2"); shift 2 ;;
      *) envs+=("$1"); shift ;;
    esac
  done
  local status=0
  env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "${envs[@]}" \
    "$a64" --top 100000 "${sym[@]}" --out "$logs/$tag.cycles" -- \
    "$logs/xrvlm" bench "$bundle" --precision "$precision" --threads 1 --frames "$frames" --warmup 0 \
    --image "$image" >"$logs/$tag.out" 2>"$logs/$tag.err" || status=$?
  echo "$status" >"$logs/$tag.status"
  local verdict=ok
  [ "$status" -eq 0 ] || verdict="exit $status: $(grep -v '^a64mix' "$logs/$tag.err" | tail -n 1)"
  echo "run $tag:${envs[*]:+ ${envs[*]}}${sym[*]:+ ${sym[*]}} $((SECONDS - t0)) s, $verdict"
}

for p in $precisions; do
  run "$p-$f1" "$p" "$f1"
  if [ "$(cat "$logs/$p-$f1.status")" -eq 0 ]; then run "$p-$f2" "$p" "$f2"; fi
done
run "int8-bt-$f1" int8 "$f1" RUST_BACKTRACE=1
run "int8-bt-$f2" int8 "$f2" RUST_BACKTRACE=1

if [ "$(cat "$logs/int8-$f1.status" 2>/dev/null)" = 0 ]; then
  rm -f "$logs"/int8-sym*
  while read -r k sub; do
    echo "$sub" >"$logs/int8-sym$k-$f1.sym"
    run "int8-sym$k-$f1" int8 "$f1" --sym "$sub"
  done < <(python3 tools/arm_cycles.py sym-runs "$logs" "$f1" "$f2" "$PRODUCT_SYMS")
fi
echo "runs: $((SECONDS - started)) s in all"
python3 tools/arm_cycles.py table "$logs" "$f1" "$f2" "$PRODUCT_SYMS" "$precisions"
