#!/usr/bin/env bash
# The runtime's image model against onnxruntime on the same ONNX, side by side in one run:
# tract fp32 (visual.onnx), our tract int8 (visual.int8.onnx), onnxruntime fp32 (visual.onnx) and
# onnxruntime int8 (its own quantize_dynamic of visual.onnx), batch 1, at 1 and 2 threads.
# Engines run one at a time, each in its own process (so each peak RSS is its own).
#
#   bash tools/bench-vitb16.sh [BUNDLE] [FRAMES]   (default: out/vitb16/bundle, 30 frames)
#
# Needs the bundle of tools/make-vitb16-bundle.sh and a Python with onnxruntime (PYTHON, default
# /opt/fixvenv/bin/python). RUSTFLAGS="-C target-cpu=native" builds xrvlm for this CPU; with
# CARGO_TARGET_DIR=target/native beside it, the default build in target/ is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle="${1:-out/vitb16/bundle}"
frames="${2:-30}"
python="${PYTHON:-/opt/fixvenv/bin/python}"
cargo build --release --locked -p xrvlm-runtime --bin xrvlm
xrvlm="${CARGO_TARGET_DIR:-target}/release/xrvlm"

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
echo "xrvlm: RUSTFLAGS='${RUSTFLAGS:-}'; $("$python" -c 'import onnxruntime as o; print("onnxruntime", o.__version__)')"
printf '| engine | precision | threads | image model median (p10–p90) ms | load ms | peak RSS MiB |\n'
printf '|---|---|---:|---:|---:|---:|\n'
for threads in 1 2; do
  for precision in fp32 int8; do
    out="$("$xrvlm" bench "$bundle" --precision "$precision" --threads "$threads" --frames "$frames")"
    echo "$out" | awk -v p="$precision" -v t="$threads" '
      /^load:/ { load = $3 + $6 }
      /^image model/ { med = $3; p10 = $4; p90 = $5 }
      /^peak memory/ { rss = $NF == "MiB" ? $(NF-1) : "?" }
      END { printf "| tract (xrvlm) | %s | %s | %.1f (%.1f–%.1f) | %.0f | %s |\n", p, t, med, p10, p90, load, rss }'
    "$python" tools/bench_onnxruntime.py "$bundle" --precision "$precision" --threads "$threads" --frames "$frames" --markdown 2> >(grep -v "pre-processing before quantization" >&2)
  done
done
