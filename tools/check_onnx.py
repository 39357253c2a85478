#!/usr/bin/env python3
"""Checks exported image graphs in the ONNX toolchain (dev script, not part of CI).

For a directory holding `visual.onnx`, `visual.int8.onnx` and the reference data the training
crate writes (`xrvlm_train::export::reference::write_reference`):

    input.npy       preprocessed images (N, 3, S, S), f32
    parts.fp32.npy  the training crate's parts (candle, Model::parts in eval mode)
    parts.int8.npy  tract's parts from visual.int8.onnx (optional)

it runs `onnx.checker.check_model(full_check=True)` on both graphs, runs them in onnxruntime
(CPU) on `input.npy` and compares:

    fp32: onnxruntime vs the training crate, max |diff|   (must be < --fp32-tol)
    int8: onnxruntime vs the training crate's fp32, smallest per-image cosine (must be >= --int8-cos)
    int8: onnxruntime vs tract on the same int8 graph, max |diff| and cosine (reported)

Exit status 0 when every check passes, 1 otherwise.

    /opt/fixvenv/bin/pip install onnx onnxruntime
    python3 tools/check_onnx.py out/export-check
"""

import argparse
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime as ort


def check_model(path):
    """The full ONNX checker (shape inference included); returns the op types used."""
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path))
    opset = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    ops = sorted({n.op_type for n in model.graph.node})
    return opset, ops


def run(path, images, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    return session.run(["parts"], {name: images})[0]


def per_image_cosine(a, b):
    a = a.reshape(a.shape[0], -1).astype(np.float64)
    b = b.reshape(b.shape[0], -1).astype(np.float64)
    dot = (a * b).sum(axis=1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(norms > 0, dot / np.where(norms > 0, norms, 1), 1.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=pathlib.Path)
    parser.add_argument("--fp32-tol", type=float, default=1e-4)
    parser.add_argument("--int8-cos", type=float, default=0.99)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    d = args.dir
    images = np.load(d / "input.npy")
    want = np.load(d / "parts.fp32.npy")
    print(f"input {images.shape}, parts {want.shape}; onnx {onnx.__version__}, "
          f"onnxruntime {ort.__version__}")
    ok = True

    for name in ("visual.onnx", "visual.int8.onnx"):
        opset, ops = check_model(d / name)
        size = (d / name).stat().st_size / 2**20
        print(f"{name}: onnx.checker full_check OK, opset {opset}, {size:.1f} MiB, ops {ops}")

    got = run(d / "visual.onnx", images, args.threads)
    diff = float(np.abs(got - want).max())
    passed = got.shape == want.shape and diff < args.fp32_tol
    ok &= passed
    print(f"fp32: onnxruntime vs training crate: max |diff| {diff:.3e} "
          f"(tol {args.fp32_tol:g}) {'OK' if passed else 'FAIL'}")

    got8 = run(d / "visual.int8.onnx", images, args.threads)
    cos = per_image_cosine(got8, want)
    passed = got8.shape == want.shape and float(cos.min()) >= args.int8_cos
    ok &= passed
    print(f"int8: onnxruntime vs training crate fp32: cosine min {cos.min():.6f} "
          f"mean {cos.mean():.6f}, max |diff| {float(np.abs(got8 - want).max()):.3e} "
          f"(min cos {args.int8_cos}) {'OK' if passed else 'FAIL'}")
    tract_path = d / "parts.int8.npy"
    if tract_path.exists():
        tract8 = np.load(tract_path)
        c = per_image_cosine(got8, tract8)
        print(f"int8: onnxruntime vs tract, same graph: max |diff| "
              f"{float(np.abs(got8 - tract8).max()):.3e}, cosine min {c.min():.6f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
