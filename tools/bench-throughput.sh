#!/usr/bin/env bash
# Images per second of `xrvlm classify` over a folder of real-size camera-trap JPEGs, against
# the same pipeline written with PIL and onnxruntime, side by side in one run (dev script, not
# part of CI). The folder: the ten 2048x1440 Reconyx photos of ../shared/data, each linked
# COPIES times (default 50: 500 images) under out/throughput/images.
#
#   bash tools/bench-throughput.sh [BUNDLE] [PRECISION]     (default: models/demo int8)
#
# Environment: PYTHON (a Python with onnxruntime, pillow and numpy; default python3),
# THREADS (model threads, default: every core), BATCH (default 4), DECODE_THREADS (default:
# every core), REPEATS (default 3), COPIES (default 50).
set -euo pipefail
cd "$(dirname "$0")/.."
bundle="${1:-models/demo}"
precision="${2:-int8}"
python="${PYTHON:-python3}"
cores=$(nproc)
photos=../shared/data/camtrap-dp-1.0.2/example/media
images=out/throughput/images
cargo build --release --locked -p xrvlm-runtime --bin xrvlm
if [ ! -d "$images" ]; then
    mkdir -p "$images"
    for i in $(seq -w 1 "${COPIES:-50}"); do
        for f in "$photos"/*.JPG; do ln -s "$(realpath "$f")" "$images/${i}_$(basename "$f")"; done
    done
fi
"$python" tools/bench_throughput.py --xrvlm "${CARGO_TARGET_DIR:-target}/release/xrvlm" \
    --bundle "$bundle" --images "$images" --precision "$precision" \
    --threads "${THREADS:-$cores}" --batch "${BATCH:-4}" --decode-threads "${DECODE_THREADS:-$cores}" \
    --repeats "${REPEATS:-3}"
