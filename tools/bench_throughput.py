#!/usr/bin/env python3
"""Images per second of a whole `classify` over a folder of real-size JPEGs: `xrvlm classify`
against the same pipeline written with PIL and onnxruntime, side by side in one run (dev
script, not part of CI; `tools/bench-throughput.sh` prepares the folder and runs it).

    PYTHON tools/bench_throughput.py --xrvlm target/release/xrvlm --bundle B --images DIR \
        --precision int8 --repeats 3 [--threads 2] [--batch 4] [--decode-threads 2]

The onnxruntime pipeline (`--ort-pipeline`, run by this script in a child process) does what
`xrvlm classify` does, the way a Python user would write it: PIL opens each file and converts it
to RGB, resizes it (bilinear, shorter side to the bundle's size) and crops the centre, numpy
normalises it (the manifest's mean and std); a thread pool of `--decode-threads` threads
prepares the next images while onnxruntime runs a batch of `--batch` images (intra-op threads
`--threads`); one JSON line per image (file and the image model's output's largest entry) goes
to the output. The model: BUNDLE/visual.onnx at fp32, onnxruntime's own `quantize_dynamic` of it
at int8 (as tools/bench_onnxruntime.py makes it). Ours also scores the parts against the cached
prompts (the CRM head, well under 1 % of a frame) and writes top-5 records.

Each run is a child process; wall time from its start to its exit (model load included, as a
user waits for it), CPU time (user + system) from the kernel's accounting of the child. Idle
share = 1 - CPU time / (wall time x cores the run may use). The two pipelines alternate, each
repeated, and the medians are printed as a Markdown table.
"""

import argparse
import concurrent.futures
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
import tomllib

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


def images_in(folder):
    exts = {".jpg", ".jpeg", ".png"}
    return sorted(p for p in pathlib.Path(folder).rglob("*") if p.suffix.lower() in exts)


def run_child(cmd):
    """Wall seconds and CPU seconds (user + system) of `cmd` run to its end."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu


def ort_pipeline(args):
    import numpy as np
    import onnxruntime as ort
    from PIL import Image

    from bench_onnxruntime import model_for, session_options

    manifest = tomllib.loads((args.bundle / "manifest.toml").read_text())
    pre = manifest["preprocess"]
    shorter, size = int(pre["resize_shorter"]), int(pre["crop"])
    mean = np.array(pre["mean"], dtype=np.float32).reshape(3, 1, 1)
    std = np.array(pre["std"], dtype=np.float32).reshape(3, 1, 1)
    model = model_for(args.bundle, args.precision)
    session = ort.InferenceSession(str(model), session_options(ort, args.threads), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def prepare(path):
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                # torchvision's Resize(shorter) and CenterCrop(size), as the manifest says.
                w, h = im.size
                if w <= h:
                    im = im.resize((shorter, int(shorter * h / w)), Image.BILINEAR)
                else:
                    im = im.resize((int(shorter * w / h), shorter), Image.BILINEAR)
                w, h = im.size
                left, top = int(round((w - size) / 2.0)), int(round((h - size) / 2.0))
                im = im.crop((left, top, left + size, top + size))
            x = np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 255.0
            return (x - mean) / std
        except Exception as e:  # one bad file is a recorded failure, as in xrvlm
            return e

    files = images_in(args.images)
    with open(args.output, "w") as out, concurrent.futures.ThreadPoolExecutor(args.decode_threads) as pool:
        prepared = pool.map(prepare, files)  # map runs ahead of the loop, in order
        batch = []

        def flush():
            xs = np.stack([x for _, x in batch if not isinstance(x, Exception)])
            ys = iter(session.run(None, {input_name: xs})[0].reshape(len(xs), -1))
            for f, x in batch:
                if isinstance(x, Exception):
                    out.write(json.dumps({"file": str(f), "error": str(x)}) + "\n")
                else:
                    out.write(json.dumps({"file": str(f), "max": float(next(ys).max())}) + "\n")
            batch.clear()

        for f, x in zip(files, prepared):
            batch.append((f, x))
            if len(batch) == args.batch:
                flush()
        if batch:
            flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=pathlib.Path, required=True)
    parser.add_argument("--images", type=pathlib.Path, required=True)
    parser.add_argument("--xrvlm", type=pathlib.Path, default=pathlib.Path("target/release/xrvlm"))
    parser.add_argument("--precision", choices=["fp32", "int8"], default="int8")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--decode-threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=pathlib.Path, default=pathlib.Path("out/throughput/out.jsonl"))
    parser.add_argument("--ort-pipeline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ort_pipeline:
        return ort_pipeline(args)

    n = len(images_in(args.images))
    cores = len(os.sched_getaffinity(0))
    common = ["--threads", str(args.threads), "--batch", str(args.batch), "--decode-threads", str(args.decode_threads)]
    ours = [
        str(args.xrvlm), "classify", str(args.images), "--bundle", str(args.bundle), "--precision", args.precision,
        "--threads", str(args.threads), "--batch-size", str(args.batch), "--decode-threads", str(args.decode_threads),
        "--quiet", "--output", str(args.output.with_suffix(".xrvlm.jsonl")),
    ]
    theirs = [
        sys.executable, __file__, "--ort-pipeline", "--bundle", str(args.bundle), "--images", str(args.images),
        "--precision", args.precision, *common, "--output", str(args.output.with_suffix(".ort.jsonl")),
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    # The quantized copy is made once, before any timed run.
    from bench_onnxruntime import model_for

    model_for(args.bundle, args.precision)
    runs = {"xrvlm classify": [], "PIL + onnxruntime": []}
    for _ in range(args.repeats):
        runs["xrvlm classify"].append(run_child(ours))
        runs["PIL + onnxruntime"].append(run_child(theirs))
    import onnxruntime

    cpu_name = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {cpu_name}, {cores} cores; onnxruntime {onnxruntime.__version__}; {n} images in {args.images}")
    print(f"precision {args.precision}, {args.threads} model threads, batch {args.batch}, {args.decode_threads} decode threads, {args.repeats} runs each, alternating")
    print("| pipeline | images/s (median) | runs (s) | CPU s | cores idle |")
    print("|---|---:|---|---:|---:|")
    for name, measured in runs.items():
        wall = statistics.median(w for w, _ in measured)
        cpu = statistics.median(c for _, c in measured)
        walls = ", ".join(f"{w:.1f}" for w, _ in measured)
        idle = 1 - cpu / (wall * cores)
        print(f"| {name} | {n / wall:.1f} | {walls} | {cpu:.1f} | {100 * idle:.0f} % |")
    ratio = statistics.median(w for w, _ in runs["PIL + onnxruntime"]) / statistics.median(w for w, _ in runs["xrvlm classify"])
    print(f"xrvlm / onnxruntime images per second: {ratio:.2f}x")


if __name__ == "__main__":
    main()
