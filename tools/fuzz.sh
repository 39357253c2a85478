#!/usr/bin/env bash
# Fuzzes every parser of outside input (runtime/fuzz, cargo fuzz + libFuzzer, AddressSanitizer)
# and prints, per target, the executions, the time, the crashes and the corpus kept.
#
#   tools/fuzz.sh SECONDS          each target for SECONDS
#   tools/fuzz.sh --runs N         each target for N executions
#   tools/fuzz.sh ... TARGET...    only these targets
#
# New inputs that add coverage go to runtime/fuzz/corpus/<target>/, which is then minimised
# (cargo fuzz cmin) and is what CI replays (runtime/tests/fuzz_corpus.rs): commit it. A crash
# leaves its input in runtime/fuzz/artifacts/<target>/ and makes the script exit 1: fix it, copy
# the input into the corpus as its regression test, run again.
# Needs a nightly toolchain and cargo-fuzz; installs cargo-fuzz when missing.
set -euo pipefail
cd "$(dirname "$0")/../runtime/fuzz"

limit=(-max_total_time=60)
case "${1:-}" in
    --runs) limit=(-runs="$2"); shift 2 ;;
    [0-9]*) limit=(-max_total_time="$1"); shift ;;
esac
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --version =0.13.2

targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
cargo +nightly fuzz build
# The allocator's stack traces only matter for a report; leaks are checked at exit only.
export ASAN_OPTIONS="${ASAN_OPTIONS:-malloc_context_size=0:detect_leaks=0}"
# The detection log target writes and syncs files: keep them in memory where there is a tmpfs.
[ -d /dev/shm ] && export TMPDIR="${TMPDIR:-/dev/shm}"
mkdir -p logs
status=0
# Rows are appended, so that two runs over different targets (one per core) share the table.
[ -s logs/summary.md ] ||
    printf '| target | executions | seconds | executions/s | crashes | slow units | corpus files |\n|---|---:|---:|---:|---:|---:|---:|\n' > logs/summary.md
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    # Crashes, panics, leaks, timeouts and out-of-memory; slow units (over 10 s, libFuzzer's
    # `slow-unit-*`) are counted apart.
    findings() { find "artifacts/$t" -type f -name "$1" | wc -l; }
    before=$(findings '[clot]*-*')
    slow_before=$(findings 'slow-unit-*')
    start=$(date +%s)
    if ! cargo +nightly fuzz run "$t" "corpus/$t" -- "${limit[@]}" -rss_limit_mb=2048 \
        -print_final_stats=1 > "logs/$t.log" 2>&1; then
        status=1
    fi
    seconds=$(( $(date +%s) - start ))
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo 0)
    crashes=$(( $(findings '[clot]*-*') - before ))
    slow=$(( $(findings 'slow-unit-*') - slow_before ))
    cargo +nightly fuzz cmin "$t" "corpus/$t" > "logs/$t.cmin.log" 2>&1 || status=1
    files=$(find "corpus/$t" -type f | wc -l)
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$t" "$runs" "$seconds" \
        "$(( runs / (seconds > 0 ? seconds : 1) ))" "$crashes" "$slow" "$files" | tee -a logs/summary.md
done
echo "summary: runtime/fuzz/logs/summary.md"
exit $status
