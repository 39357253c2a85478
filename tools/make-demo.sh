#!/usr/bin/env bash
# Reproduces models/mini-clip (the pre-trained synthetic CLIP) and models/demo-xrvlm (the demo
# XR-VLM trained on it), and measures the demo on a synthetic seed it never saw.
# Everything runs on a 2-core CPU; see models/README.md for the times and figures.
#
#   bash tools/make-demo.sh [WORK_DIR]      (default: out/demo-build; models/ is written in place)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-out/demo-build}"
mkdir -p "$work"
cargo build --release --locked -p xrvlm-train
xt=target/release/xrvlm-train

# 1. Pre-training data: 24 species of world 1; four are held out of pre-training to measure
#    zero-shot transfer to species the backbone never saw.
[ -d "$work/pretrain-data" ] || $xt synth --out "$work/pretrain-data" --world 1 --seed 11 --classes 24 --per-class 160
$xt pretrain --data "$work/pretrain-data" --out models/mini-clip --overwrite \
  --holdout-species bartail_honeyeater,bluebill_stubbill,redeye_stubbill,whitebill_sparrow \
  --epochs 8 --batch-size 32 --lr 0.001 --min-crop-scale 0.8 \
  --image-size 64 --patch-size 8 --vision-width 64 --vision-layers 4 --text-layers 2

# 2. The demo's species: 12 of the same world plus `blank`; training images from seed 2,
#    held-out test images from seed 3 (never seen by pre-training or the head).
[ -d "$work/demo-train" ] || $xt synth --out "$work/demo-train" --world 1 --seed 2 --classes 12 --per-class 48
[ -d "$work/demo-test" ] || $xt synth --out "$work/demo-test" --world 1 --seed 3 --classes 12 --per-class 40

# 3. The demo XR-VLM (M = P = 4) on the frozen mini-CLIP.
rm -rf models/demo-xrvlm
$xt train --clip models/mini-clip --data "$work/demo-train" --eval-folder "$work/demo-test" \
  --head xrvlm --parts 4 --prompts 4 --context-len 8 --hidden 256 \
  --epochs 30 --warmup 3 --lr 0.01 --quiet --out models/demo-xrvlm

# 4. Held-out top-1, and the colour-histogram baseline on the same split.
$xt eval models/demo-xrvlm/checkpoint.safetensors --data "$work/demo-test"
$xt histogram-baseline --train "$work/demo-train" --test "$work/demo-test"
