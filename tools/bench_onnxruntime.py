#!/usr/bin/env python3
"""Times a bundle's image model in onnxruntime, the engine a user would pick instead of ours
(dev script, not part of CI; `tools/bench-vitb16.sh` runs it beside `xrvlm bench`).

    /opt/fixvenv/bin/python tools/bench_onnxruntime.py BUNDLE --precision fp32 --threads 2

--precision fp32 runs BUNDLE/visual.onnx as stored. --precision int8 runs onnxruntime's own
dynamic quantization of that file (`quantize_dynamic`, per-channel int8 weights; written once to
BUNDLE/../ort-cache/visual.ort-int8.onnx), which is what a user of onnxruntime would do with our
fp32 export. Batch 1, intra-op threads as given, one inter-op thread, full graph optimization.

Prints one line of JSON: load time (session creation), median / p10 / p90 of the image model per
frame, and the peak RSS of this process (`ru_maxrss`; Python and numpy included, their share
printed as `baseline_rss_mib`, the RSS before onnxruntime is imported; quantization runs in a
child process).
"""

import argparse
import json
import math
import pathlib
import resource
import subprocess
import sys
import time
import tomllib


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def nearest_rank(sorted_values, q):
    rank = max(1, min(len(sorted_values), math.ceil(q * len(sorted_values))))
    return sorted_values[rank - 1]


def quantized_copy(bundle, fp32_path):
    """onnxruntime's dynamic quantization of `fp32_path`, made once in a child process so that
    quantizing does not count in this process's peak RSS."""
    cache = bundle.resolve().parent / "ort-cache" / bundle.resolve().name
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / "visual.ort-int8.onnx"
    if not out.exists() or out.stat().st_mtime < fp32_path.stat().st_mtime:
        script = (
            "import sys; from onnxruntime.quantization import QuantType, quantize_dynamic; "
            "quantize_dynamic(sys.argv[1], sys.argv[2], per_channel=True, weight_type=QuantType.QInt8)"
        )
        subprocess.run([sys.executable, "-c", script, str(fp32_path), str(out)], check=True)
    return out


def model_for(bundle, precision):
    """The ONNX file onnxruntime runs at `precision`: the bundle's fp32 export, or its own
    dynamic quantization of it."""
    model = bundle / "visual.onnx"
    return quantized_copy(bundle, model) if precision == "int8" else model


def session_options(ort, threads):
    """`threads` intra-op threads, one inter-op thread, sequential, full graph optimization."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=pathlib.Path)
    parser.add_argument("--precision", choices=["fp32", "int8"], default="fp32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--markdown", action="store_true", help="print a row of bench-vitb16.sh's table instead of JSON")
    args = parser.parse_args()

    import numpy as np

    baseline = rss_mib()
    import onnxruntime as ort

    manifest = tomllib.loads((args.bundle / "manifest.toml").read_text())
    size = int(manifest["preprocess"]["crop"])
    model = model_for(args.bundle, args.precision)
    options = session_options(ort, args.threads)
    start = time.perf_counter()
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - start) * 1e3

    name = session.get_inputs()[0].name
    image = np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32)
    times = []
    for i in range(args.warmup + args.frames):
        start = time.perf_counter()
        session.run(None, {name: image})
        if i >= args.warmup:
            times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    result = {
        "engine": f"onnxruntime {ort.__version__}",
        "precision": args.precision,
        "threads": args.threads,
        "frames": args.frames,
        "load_ms": round(load_ms, 1),
        "median_ms": round(nearest_rank(times, 0.5), 2),
        "p10_ms": round(nearest_rank(times, 0.1), 2),
        "p90_ms": round(nearest_rank(times, 0.9), 2),
        "peak_rss_mib": round(rss_mib(), 1),
        "baseline_rss_mib": round(baseline, 1),
    }
    if args.markdown:
        r = result
        print(
            f"| {r['engine']} | {r['precision']} | {r['threads']} | {r['median_ms']:.1f} "
            f"({r['p10_ms']:.1f}–{r['p90_ms']:.1f}) | {r['load_ms']:.0f} | "
            f"{r['peak_rss_mib']:.0f} (before onnxruntime: {r['baseline_rss_mib']:.0f}) |"
        )
    else:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
