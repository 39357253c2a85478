#!/usr/bin/env bash
# Unknown-species rejection of a bundle (issue 18, part 1), on frames none of its training,
# calibration or choices saw:
#   1. fresh frames (SEED) of every species of the demo's world 1, no blank frames: the demo's
#      12 species (known), the 8 species held out of everything (tools/make-demo.sh's
#      `holdout`, the backbone's pre-training included), and the 76 others (the backbone saw
#      them in pre-training, the head never did);
#   2. every candidate score of every frame (`xrvlm-train open-world-scores`), at fp32 and int8;
#   3. the bundle's own rule end to end (`xrvlm classify`, int8, as a device runs it) on the
#      same frames and on the real Reconyx photos of the Camtrap DP example;
# and tools/eval_open_world.py prints AUROC per score, the shares answered unknown at the
# manifest's threshold with the known-species recall there, the roll-up table (frames of
# unknown species of a known genus answered with that genus; known species rolled up), and
# each real photo's answer (it exits 1 if a real photo is answered as a species or a taxon).
#
#   bash tools/eval-open-world.sh            # SEED=31 PER_CLASS=40
#
# Environment: SEED, PER_CLASS (frames per species), BUNDLE (default models/demo), PRECISION of
# the classify runs (int8), OUT (default out/open-world-SEED), REAL (the real photos, default
# ../shared/data/camtrap-dp-1.0.2/example/media).
set -euo pipefail
cd "$(dirname "$0")/.."
seed="${SEED:-31}"
per_class="${PER_CLASS:-40}"
bundle="$(realpath "${BUNDLE:-models/demo}")"
precision="${PRECISION:-int8}"
out="${OUT:-out/open-world-$seed}"
real="${REAL:-../shared/data/camtrap-dp-1.0.2/example/media}"
# The species tools/make-demo.sh holds out of pre-training (none of them a demo species).
holdout=bartail_honeyeater,bluebill_stubbill,redeye_stubbill,whitebill_sparrow,blackleg_finch,crested_finch,greyeye_bushtit,orangeeye_creeper
cargo build --release --locked -p xrvlm-runtime --bin xrvlm -p xrvlm-train --bin xrvlm-train
x="$(pwd)/target/release/xrvlm"
xt="$(pwd)/target/release/xrvlm-train"
mkdir -p "$out"
out="$(realpath "$out")"
data="$out/world1"
if [ ! -d "$data" ]; then
  "$xt" synth --out "$data" --world 1 --size 110 --framing crop --seed "$seed" --classes 96 \
    --per-class "$per_class" --empty-fraction 0
fi
for p in fp32 int8; do
  [ -f "$out/scores-$p.jsonl" ] || "$xt" open-world-scores --bundle "$bundle" --data "$data" \
    --precision "$p" --out "$out/scores-$p.jsonl"
done
run() { # a classify run that may exit 2 (recorded failures) but not otherwise
  local status=0
  "$@" || status=$?
  [ "$status" -eq 0 ] || [ "$status" -eq 2 ] || { echo "eval-open-world: $* exited $status" >&2; exit "$status"; }
}
common=(--bundle "$bundle" --precision "$precision" --top-k 3 -q --format jsonl)
run "$x" classify "$data" "${common[@]}" -o "$out/classify.jsonl"
run "$x" classify "$real" "${common[@]}" -o "$out/real.jsonl"
python3 tools/eval_open_world.py --manifest "$bundle/manifest.toml" --holdout "$holdout" \
  --scores "fp32=$out/scores-fp32.jsonl" --scores "int8=$out/scores-int8.jsonl" \
  --classify "$out/classify.jsonl" --real "$out/real.jsonl" --species "$data/species.json"
