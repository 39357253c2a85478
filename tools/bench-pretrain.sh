#!/usr/bin/env bash
# One pre-training step (supervised stage: ModifiedResNet tower + species and attribute heads,
# forward, backward, AdamW) timed in xrvlm-train and in PyTorch on the same sizes, batch and
# thread count, alternately, ROUNDS times; prints one markdown row per measurement.
#
#   bash tools/bench-pretrain.sh DATA_DIR [BATCH] [ROUNDS]     (DATA_DIR: a synth directory)
#
# PyTorch comes from the dev venv (tools/requirements-dev.txt); PYTHON overrides the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
data="$1"; batch="${2:-128}"; rounds="${3:-3}"
py="${PYTHON:-python3}"
sizes=(--image-size 96 --width 16 --layers 1,1,1,1 --heads 8 --embed-dim 128)
cargo build --release --locked -p xrvlm-train >/dev/null 2>&1 || cargo build --release --locked -p xrvlm-train
xt=target/release/xrvlm-train
echo "| round | implementation | batch | threads | median step (s) | frames/s |"
echo "|---|---|---:|---:|---:|---:|"
for r in $(seq 1 "$rounds"); do
  for which in ours torch; do
    if [ "$which" = ours ]; then
      line=$(RAYON_NUM_THREADS=2 $xt pretrain-vision --data "$data" --out /tmp/bench-pretrain-unused \
        "${sizes[@]}" --batch-size "$batch" --bench-steps 10)
    else
      line=$($py tools/bench_pretrain_torch.py --data "$data" "${sizes[@]}" \
        --batch "$batch" --threads 2 --steps 10)
    fi
    "$py" -c 'import json, sys; d = json.loads(sys.argv[1]); print("| %s | %s | %d | %d | %.3f | %.1f |" % (sys.argv[2], d["impl"], d["batch"], d["threads"], d["step_seconds_median"], d["frames_per_second"]))' "$line" "$r"
  done
done
