#!/usr/bin/env bash
# tools/build-cuda.sh: build `xrvlm-train --features cuda` on a machine that
# has no GPU, no NVIDIA driver and no CUDA toolkit.
#
# What it does (every step is idempotent, re-running is cheap):
#   1. creates/reuses a Python venv and pip-installs NVIDIA's CUDA 13.0 wheels
#      (nvcc + crt + nvvm + cccl headers + cudart + cublas + curand + nvrtc),
#      pinned to exact versions;
#   2. assembles a classic CUDA root (bin/ include/ nvvm/ lib/ lib64/) out of
#      symlinks into the wheels, adds the unversioned `libfoo.so` link names
#      that the linker needs, and a link-time stub `lib/stubs/libcuda.so`
#      (SONAME libcuda.so.1) because the driver library is not installed here;
#   3. runs `cargo build --release -p xrvlm-train --features cuda "$@"`, then
#      gathers the CUDA runtime libraries the binary needs into
#      `<bin dir>/cuda-libs/` (hard links when possible), so the binary plus
#      that one folder can be carried to the GPU machine;
#   4. verifies the result (readelf NEEDED, ldd, embedded PTX version) and
#      prints how to run it on the GPU machine.
#
# Usage: tools/build-cuda.sh [extra cargo build args...]
#
# Environment knobs (all optional):
#   XRVLM_CUDA_VENV     venv location      (default ~/.cache/xrvlm-cuda/venv)
#   XRVLM_CUDA_ROOT     assembled CUDA root (default ~/.cache/xrvlm-cuda/cuda-13.0)
#   CARGO_TARGET_DIR    cargo target dir   (default <repo>/target/cuda)
#   CUDA_COMPUTE_CAP    GPU arch for candle-kernels (default 90 = H100/H200)
#   CUDAFORGE_THREADS   parallel nvcc jobs used by candle-kernels' build
#   XRVLM_CUDA_NICE     nice level for pip/cargo (default 19)
#   XRVLM_CUDA_SKIP_BUILD=1   only prepare the toolchain (steps 1-2), print env
#   XRVLM_CUDA_NO_RPATH=1     do not embed RUNPATH $ORIGIN/cuda-libs
#   PYTHON              python used to create the venv (default python3)
#
# Pitfall: the CUDA version must not be newer than what the GPU machine's
# driver supports. Driver 580 = CUDA 13.0; PTX from a 13.1+ nvcc fails to load
# there (CUDA_ERROR_UNSUPPORTED_PTX_VERSION). Hence everything pinned to 13.0.
set -euo pipefail

log() { printf '\033[1;34m[build-cuda]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[build-cuda] error:\033[0m %s\n' "$*" >&2; exit 1; }

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_DIR=${XRVLM_CUDA_CACHE:-$HOME/.cache/xrvlm-cuda}
VENV=${XRVLM_CUDA_VENV:-$CACHE_DIR/venv}
CUDA_ROOT_DIR=${XRVLM_CUDA_ROOT:-$CACHE_DIR/cuda-13.0}
NICE=${XRVLM_CUDA_NICE:-19}
PYTHON=${PYTHON:-python3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target/cuda}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}

# Exact pins, all from the CUDA 13.0 (Update 2) release. cuBLAS/cuRAND have
# their own version numbers; 13.0.2.14 / 10.4.0.35 are the 13.0-series ones.
WHEELS=(
  nvidia-cuda-nvcc==13.0.88     # nvcc, ptxas, fatbinary, nvlink
  nvidia-cuda-crt==13.0.88      # include/crt (host_config.h, ...) needed by nvcc
  nvidia-nvvm==13.0.88          # nvvm/bin/cicc + libdevice
  nvidia-cuda-runtime==13.0.96  # cudart headers + libcudart.so.13
  nvidia-cuda-cccl==13.0.85     # include/cccl (cub, thrust, libcu++)
  nvidia-cuda-nvrtc==13.0.88    # libnvrtc.so.13 (+ builtins)
  nvidia-cublas==13.0.2.14      # libcublas.so.13, libcublasLt.so.13
  nvidia-curand==10.4.0.35      # libcurand.so.10
)

# ---------------------------------------------------------------------------
# 1. venv + pinned wheels
# ---------------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating venv $VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
fi

# Only call pip (network) when something pinned is missing or differs.
installed=$("$VENV/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null | tr 'A-Z_' 'a-z-')
missing=()
for w in "${WHEELS[@]}"; do
  grep -qxF "$w" <<<"$installed" || missing+=("$w")
done
if ((${#missing[@]})); then
  log "pip install: ${missing[*]}"
  nice -n "$NICE" "$VENV/bin/python" -m pip install --disable-pip-version-check -q "${WHEELS[@]}"
else
  log "CUDA wheels already installed in $VENV"
fi

SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
WHEEL_CUDA="$SITE/nvidia/cu13"   # CUDA 13 wheels share one classic-layout tree
[[ -x "$WHEEL_CUDA/bin/nvcc" ]] || die "nvcc not found at $WHEEL_CUDA/bin/nvcc"
[[ -x "$WHEEL_CUDA/nvvm/bin/cicc" ]] || die "cicc not found under $WHEEL_CUDA/nvvm"
[[ -d "$WHEEL_CUDA/include/cccl" ]] || die "cccl headers not found under $WHEEL_CUDA/include"

# ---------------------------------------------------------------------------
# 2. assemble the CUDA root: symlinks into the wheel + .so names + libcuda stub
# ---------------------------------------------------------------------------
MARKER=.xrvlm-cuda-root
if [[ -e "$CUDA_ROOT_DIR" && ! -e "$CUDA_ROOT_DIR/$MARKER" ]]; then
  die "$CUDA_ROOT_DIR exists and was not made by this script; refusing to touch it"
fi
mkdir -p "$CUDA_ROOT_DIR/lib/stubs"
touch "$CUDA_ROOT_DIR/$MARKER"
# nvcc finds cicc/headers relative to itself (nvcc.profile: TOP=$(_HERE_)/..),
# so bin/ include/ nvvm/ all point into the same wheel tree.
for d in bin include nvvm; do ln -sfn "$WHEEL_CUDA/$d" "$CUDA_ROOT_DIR/$d"; done
# lib/ is a real dir: the wheels ship only versioned sonames (libcublas.so.13);
# `-lcublas` needs libcublas.so, and the stub must live in lib/stubs.
for f in "$WHEEL_CUDA"/lib/*; do ln -sfn "$f" "$CUDA_ROOT_DIR/lib/$(basename "$f")"; done
for f in "$WHEEL_CUDA"/lib/lib*.so.*; do
  b=$(basename "$f")
  [[ $b == *.alt.* || $b == *builtins* ]] && continue
  ln -sfn "$b" "$CUDA_ROOT_DIR/lib/${b%%.so.*}.so"
done
ln -sfn lib "$CUDA_ROOT_DIR/lib64"

STUB_DIR="$CUDA_ROOT_DIR/lib/stubs"
STUB_ORIGIN=""
wheel_stub=$(find "$SITE/nvidia" -path '*/stubs/libcuda.so' -print -quit 2>/dev/null || true)
if [[ -n "$wheel_stub" ]]; then
  # Prefer NVIDIA's own stub if some wheel ships one.
  cp -f "$wheel_stub" "$STUB_DIR/libcuda.so"
  STUB_ORIGIN="wheel: $wheel_stub"
else
  # No wheel ships a driver stub, so generate one: a shared object with
  # SONAME libcuda.so.1 exporting every driver-API symbol cudarc may reference.
  # Each function just returns CUDA_ERROR_STUB_LIBRARY (34); it is never loaded
  # at run time (the real driver's libcuda.so.1 is), it only satisfies ld.
  # Symbol list = union of
  #   a) the names cudarc's driver bindings link against (exact), and
  #   b) every cu* function declared in the wheel's cuda.h after preprocessing
  #      (the exported, versioned names such as cuCtxCreate_v4).
  syms=$(mktemp)
  trap 'rm -f "$syms"' EXIT
  cudarc_dir=$(cd "$REPO_ROOT" && cargo metadata --format-version 1 --features xrvlm-train/cuda 2>/dev/null |
    "$VENV/bin/python" -c 'import json,sys,os
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "cudarc": print(os.path.dirname(p["manifest_path"])); break' || true)
  if [[ -n "$cudarc_dir" && -f "$cudarc_dir/src/driver/sys/mod.rs" ]]; then
    grep -oE '\bfn cu[A-Z][A-Za-z0-9_]*\(' "$cudarc_dir/src/driver/sys/mod.rs" |
      sed -E 's/^fn //; s/\($//' >>"$syms"
  else
    log "warning: cudarc sources not found; stub symbols come from cuda.h only"
  fi
  gcc -E -P -x c -I"$WHEEL_CUDA/include" "$WHEEL_CUDA/include/cuda.h" |
    grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | sed -E 's/[[:space:]]*\($//' >>"$syms"
  src=$(mktemp --suffix=.c)
  {
    echo '/* generated by tools/build-cuda.sh: link-time stub of libcuda.so.1 */'
    sort -u "$syms" | while read -r s; do echo "int $s(void) { return 34; }"; done
  } >"$src"
  # Rebuild only when the symbol list changed (keeps the file stable).
  if ! cmp -s "$src" "$STUB_DIR/libcuda-stub.c" 2>/dev/null || [[ ! -f "$STUB_DIR/libcuda.so.1" ]]; then
    mv -f "$src" "$STUB_DIR/libcuda-stub.c"
    gcc -shared -fPIC -O0 -Wl,-soname,libcuda.so.1 \
      -o "$STUB_DIR/libcuda.so.1" "$STUB_DIR/libcuda-stub.c"
  else
    rm -f "$src"
  fi
  ln -sfn libcuda.so.1 "$STUB_DIR/libcuda.so"
  STUB_ORIGIN="generated: $STUB_DIR/libcuda.so.1 ($(sort -u "$syms" | wc -l) symbols)"
fi
log "libcuda stub: $STUB_ORIGIN"

# Toolchain environment. cudarc's build script reads CUDA_HOME/CUDA_PATH/
# CUDA_ROOT (link search: lib, lib/stubs, lib64, ...) and `nvcc --version`
# (-> CUDA 13.0 bindings); cudaforge (candle-kernels) finds nvcc via PATH.
export CUDA_HOME="$CUDA_ROOT_DIR" CUDA_PATH="$CUDA_ROOT_DIR" CUDA_ROOT="$CUDA_ROOT_DIR"
export PATH="$CUDA_ROOT_DIR/bin:$PATH"
export LIBRARY_PATH="$CUDA_ROOT_DIR/lib:$STUB_DIR${LIBRARY_PATH:+:$LIBRARY_PATH}"
# Build-time only (nvcc helpers such as nvlink use nvvm/cudart); never put
# the stub dir on LD_LIBRARY_PATH.
export LD_LIBRARY_PATH="$CUDA_ROOT_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvcc_ver=$(nvcc --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')
[[ $nvcc_ver == 13.0 ]] || die "expected nvcc 13.0, got '$nvcc_ver'"
log "nvcc $nvcc_ver at $(command -v nvcc); CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP"

if [[ ${XRVLM_CUDA_SKIP_BUILD:-0} == 1 ]]; then
  cat <<EOF
export CUDA_HOME=$CUDA_HOME CUDA_PATH=$CUDA_PATH CUDA_ROOT=$CUDA_ROOT
export PATH=$CUDA_ROOT_DIR/bin:\$PATH
export LIBRARY_PATH=$LIBRARY_PATH
export CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP CARGO_TARGET_DIR=$CARGO_TARGET_DIR
EOF
  exit 0
fi

# ---------------------------------------------------------------------------
# 3. cargo build
# ---------------------------------------------------------------------------
# RUNPATH $ORIGIN/cuda-libs lets the binary find the bundled CUDA libs without
# LD_LIBRARY_PATH. libcuda.so.1 is never in cuda-libs, so the driver's is used.
if [[ ${XRVLM_CUDA_NO_RPATH:-0} != 1 ]]; then
  export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-Clink-arg=-Wl,-rpath,\$ORIGIN/cuda-libs"
fi
log "cargo build --release -p xrvlm-train --features cuda $* (target dir $CARGO_TARGET_DIR)"
start=$(date +%s)
json=$(mktemp)
cd "$REPO_ROOT"
# JSON messages on stdout tell us exactly where the executable went (works with
# --target-dir/--profile in "$@"); diagnostics still render on stderr.
nice -n "$NICE" cargo build --release -p xrvlm-train --features cuda \
  --message-format=json-render-diagnostics "$@" >"$json"
BIN=$("$VENV/bin/python" - "$json" <<'EOF'
import json, sys
exe = ""
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") \
            and m["target"]["name"] == "xrvlm-train":
        exe = m["executable"]
print(exe)
EOF
)
rm -f "$json"
[[ -n "$BIN" && -x "$BIN" ]] || die "could not find the built xrvlm-train executable"
log "build finished in $(( $(date +%s) - start ))s"

# ---------------------------------------------------------------------------
# 4. bundle the CUDA runtime libs next to the binary and verify
# ---------------------------------------------------------------------------
LIBS_DIR="$(dirname "$BIN")/cuda-libs"
mkdir -p "$LIBS_DIR"
mapfile -t needed < <(readelf -d "$BIN" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
bundle=()
for n in "${needed[@]}"; do
  [[ -e "$WHEEL_CUDA/lib/$n" ]] && bundle+=("$n")
done
# libcublas needs libcublasLt (same dir, via its own $ORIGIN RUNPATH);
# libnvrtc dlopens its builtins at run time.
for n in "${bundle[@]}"; do
  case $n in
    libcublas.so.*) bundle+=("libcublasLt.so.${n##*.so.}") ;;
    libnvrtc.so.*) for b in "$WHEEL_CUDA"/lib/libnvrtc-builtins.so.*; do bundle+=("$(basename "$b")"); done ;;
  esac
done
for n in "${bundle[@]}"; do
  src="$WHEEL_CUDA/lib/$n"; dst="$LIBS_DIR/$n"
  # Hard link when on the same filesystem (cuBLASLt alone is ~540 MB).
  if [[ ! -e "$dst" ]] || ! cmp -s "$src" "$dst"; then
    rm -f "$dst"; ln "$src" "$dst" 2>/dev/null || cp "$src" "$dst"
  fi
done

echo
echo "== binary: $BIN ($(du -h "$BIN" | cut -f1))"
echo "== readelf -d NEEDED / RUNPATH:"
readelf -d "$BIN" | grep -E '\((NEEDED|RUNPATH|RPATH)\)' | sed 's/^ */   /'
echo "== where each NEEDED library comes from on the GPU machine:"
for n in "${needed[@]}"; do
  if [[ -e "$LIBS_DIR/$n" ]]; then where="cuda-libs/ (CUDA 13.0 wheels)"
  elif [[ $n == libcuda.so.1 ]]; then where="NVIDIA driver (stub used for linking only; not bundled)"
  else where="system ($(ldconfig -p | awk -v n="$n" '$1==n {print $NF; exit}'))"
  fi
  printf '   %-24s %s\n' "$n" "$where"
done
echo "== cuda-libs: $LIBS_DIR ($(du -shL "$LIBS_DIR" | cut -f1))"
ls -1 "$LIBS_DIR" | sed 's/^/   /'
echo "== ldd (here; libcuda.so.1 'not found' is expected without a driver):"
LD_LIBRARY_PATH="$LIBS_DIR" ldd "$BIN" | grep -E 'cuda|cublas|curand|nvrtc|not found' | sed 's/^\s*/   /' || true
ptx=$(grep -aoE '\.version [0-9]+\.[0-9]+|\.target sm_[0-9a-z]+' "$BIN" | sort | uniq -c | sed 's/^ */   /')
echo "== embedded PTX headers (driver 580 = CUDA 13.0 loads PTX ISA <= 9.0):"
echo "$ptx"
# With BIND_NOW every imported cu* symbol must exist in the GPU machine's
# libcuda.so.1; check they are all declared by the CUDA 13.0 cuda.h (which a
# driver >= 580 exports), i.e. nothing newer leaked in through the stub.
imported=$(nm -D --undefined-only "$BIN" | awk '{print $NF}' | grep -E '^cu[A-Z]' | sort -u || true)
declared=$(gcc -E -P -x c -I"$WHEEL_CUDA/include" "$WHEEL_CUDA/include/cuda.h" |
  grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | sed -E 's/[[:space:]]*\($//' | sort -u)
newer=$(comm -23 <(echo "$imported") <(echo "$declared") | grep . || true)
echo "== driver API symbols imported from libcuda.so.1: $(grep -c . <<<"$imported")"
status=0
if [[ -n "$newer" ]]; then
  echo "!! not declared in CUDA 13.0 cuda.h (may be missing from driver 580):" $newer >&2
  status=1
fi
for n in "${needed[@]}"; do
  [[ -e "$LIBS_DIR/$n" || $n == libcuda.so.1 ]] && continue
  ldconfig -p | awk -v n="$n" '$1==n {f=1} END {exit !f}' ||
    { echo "!! $n is neither bundled nor on this system" >&2; status=1; }
done
cat <<EOF

== on the GPU machine (driver >= 580, e.g. H200): copy the binary and cuda-libs/
   together, keeping them side by side, then run:
     LD_LIBRARY_PATH=\$PWD/cuda-libs ./$(basename "$BIN") <args>
   (RUNPATH \$ORIGIN/cuda-libs usually makes LD_LIBRARY_PATH unnecessary.)
   Alternatively point LD_LIBRARY_PATH at an installed CUDA 13.0 toolkit's lib64 or
   at <venv>/lib/python3*/site-packages/nvidia/cu13/lib from the same wheels.
   Never ship lib/stubs/libcuda.so*: the driver provides libcuda.so.1.
EOF
exit "$status"
