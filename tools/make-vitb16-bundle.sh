#!/usr/bin/env bash
# Makes a ViT-B/16-shaped bundle (random weights: one pre-training step, one epoch of the XR-VLM
# head) to measure the runtime at the size of real deployments. Nothing here is committed; the
# bundle is for `tools/bench-vitb16.sh` and the checks in BENCHMARKS.md.
#
# Image tower: CLIP ViT-B/16 (224 px, patch 16, width 768, 12 layers, 12 heads, MLP 3072,
# projection 512); VISION_LAYERS=N (at least 4: XR-VLM reads block N-2 and the blocks after it)
# keeps every width and changes only the number of transformer blocks; a 4-block one is what
# `tools/arm-cycles.sh` emulates (every block does the same work).
# The text tower is kept small (width 64, 2 layers): the bundle caches the prompt features and
# never runs it, and its size does not change the image model.
#
#   bash tools/make-vitb16-bundle.sh [WORK_DIR]     (default: out/vitb16; the bundle: WORK_DIR/bundle)
#   VISION_LAYERS=4 bash tools/make-vitb16-bundle.sh   (default WORK_DIR: out/vitb16-4)
#
# About 15 min on a 2-core CPU (release build) at 12 layers, about 1 min at 4 (once xrvlm-train is built).
set -euo pipefail
cd "$(dirname "$0")/.."
layers="${VISION_LAYERS:-12}"
[[ "$layers" =~ ^[0-9]+$ && "$layers" -ge 4 ]] ||
  { echo "VISION_LAYERS must be a whole number of at least 4 (XR-VLM reads block N-2), not '$layers'" >&2; exit 2; }
if [ "$layers" = 12 ]; then default_work=out/vitb16 blocks=; else default_work="out/vitb16-$layers" blocks=" ($layers vision blocks)"; fi
work="${1:-$default_work}"
mkdir -p "$work"
cargo build --release --locked -p xrvlm-train
xt="${CARGO_TARGET_DIR:-target}/release/xrvlm-train"

# 4 species at 224 px: 6 images each to pre-train and train on, 4 each to calibrate and evaluate.
[ -d "$work/data" ] || $xt synth --out "$work/data" --world 1 --seed 21 --classes 4 --per-class 6 --size 224
[ -d "$work/eval" ] || $xt synth --out "$work/eval" --world 1 --seed 22 --classes 4 --per-class 4 --size 224

[ -f "$work/clip/model.safetensors" ] || $xt pretrain --data "$work/data" --out "$work/clip" --overwrite \
  --epochs 1 --batch-size 24 --eval-per-species 0 \
  --image-size 224 --patch-size 16 --vision-width 768 --vision-layers "$layers" --vision-heads 12 \
  --text-width 64 --text-layers 2 --text-heads 4 --projection-dim 512

rm -rf "$work/head"
$xt train --clip "$work/clip" --data "$work/data" --eval-folder "$work/eval" \
  --head xrvlm --parts 4 --prompts 4 --context-len 8 --hidden 256 \
  --epochs 1 --warmup 0 --batch-size 8 --quiet --out "$work/head"

$xt export "$work/head/checkpoint.safetensors" --out "$work/bundle" --overwrite \
  --eval "$work/eval" --calibration-images 16 --golden 2 --min-agreement 0 \
  --description "ViT-B/16-shaped XR-VLM$blocks with random weights (benchmark only)"
