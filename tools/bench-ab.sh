#!/usr/bin/env bash
# Two builds of `xrvlm` on one bundle, side by side in one run: whether their int8 logits are
# byte-identical on a folder of images, then the image model's time (`xrvlm bench`), the two
# binaries alternating, ROUNDS rounds at 1 and 2 threads. For a change that must not change
# what the engine computes nor slow it (BENCHMARKS.md, issue 15).
#
#   bash tools/bench-ab.sh BEFORE_XRVLM AFTER_XRVLM BUNDLE IMAGES [FRAMES] [ROUNDS]
set -euo pipefail
before="$1" after="$2" bundle="$3" images="$4" frames="${5:-20}" rounds="${6:-3}"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
logits() { "$1" classify "$images" --bundle "$bundle" --precision int8 2>/dev/null; }
if cmp -s <(logits "$before") <(logits "$after"); then
  echo "int8 logits on $images: byte-identical"
else
  echo "int8 logits on $images: DIFFER"
fi
echo "| round | threads | before: median (p10–p90) ms | after |"
echo "|---:|---:|---:|---:|"
for round in $(seq "$rounds"); do
  for threads in 1 2; do
    row="| $round | $threads |"
    for exe in "$before" "$after"; do
      row="$row $("$exe" bench "$bundle" --precision int8 --threads "$threads" --frames "$frames" --warmup 3 |
        awk '/^image model/ { printf "%s (%s–%s)", $3, $4, $5 }') |"
    done
    echo "$row"
  done
done
