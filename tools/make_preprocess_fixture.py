#!/usr/bin/env python3
"""Generate the PIL reference fixture for runtime/tests/preprocess_reference.rs.

Dev tool, not run in CI. Needs python3 with pillow and numpy:

    python3 -m venv /tmp/fixvenv && /tmp/fixvenv/bin/pip install pillow numpy
    /tmp/fixvenv/bin/python tools/make_preprocess_fixture.py

It writes small deterministic images of various sizes and layouts into
runtime/tests/fixtures/preprocess/, and for each one what the reference pipeline
(design doc section 7) computes with PIL:

    Image.open(p).convert("RGB")                      -> <name>.rgb.u8 (HWC bytes)
    torchvision Resize(s): img.resize(size, BILINEAR) -> <name>.s<s>.resized.u8
    CenterCrop(c), ToTensor, Normalize (f32)          -> <name>.s<s>c<c>.f32 (CHW, little endian)

torchvision itself is not needed: its size and crop arithmetic is re-stated below
(`resized_size`, `center_crop_box`) and ToTensor/Normalize are done in numpy float32,
which is the same IEEE arithmetic torch does on CPU. index.json lists every file.
"""

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "runtime" / "tests" / "fixtures" / "preprocess"

# CLIP mean/std as torch sees them: Python floats converted to float32.
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def resized_size(w, h, size):
    """torchvision _compute_resized_output_size for an int size, max_size=None."""
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def center_crop_box(w, h, crop):
    """torchvision F.center_crop offsets (left, top)."""
    return int(round((w - crop) / 2.0)), int(round((h - crop) / 2.0))


def to_tensor_normalize(img):
    """ToTensor + Normalize in float32: CHW array."""
    arr = np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)
    t = arr.astype(np.float32) / np.float32(255)
    return (t - MEAN[:, None, None]) / STD[:, None, None]


# ---- deterministic inputs ------------------------------------------------------------


def smooth_rgb(w, h, seed, noise=24):
    """Gradients plus bounded noise: varied content that still compresses."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack(
        [
            128 + 100 * np.sin(x / (w / 5 + 1) + y / (h / 3 + 1)),
            255 * x / max(w - 1, 1),
            255 * ((x + 2 * y) % 17) / 16,
        ],
        axis=-1,
    )
    base += rng.integers(-noise, noise + 1, size=base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)


def checker(w, h, seed):
    """Hard edges and extreme values: stresses clipping and the taps."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    on = ((x // 3 + y // 2) % 2).astype(bool)
    arr = np.where(on[..., None], 255, 0).astype(np.uint8).repeat(3, axis=-1)
    arr[..., 1] = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
    return arr


def png_bytes(w, h, bit_depth, color_type, rows):
    """Minimal PNG encoder for layouts PIL cannot write (16-bit RGB, 16-bit grey + alpha)."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def write_png16(path, arr16, color_type):
    """Write a big-endian 16-bit PNG from an (h, w, channels) uint16 array."""
    h, w = arr16.shape[:2]
    be = arr16.astype(">u2")
    path.write_bytes(png_bytes(w, h, 16, color_type, [be[r].tobytes() for r in range(h)]))


def make_inputs():
    """Write every input file; returns [(file name, settings)]."""
    cases = []

    def add(name, settings):
        cases.append((name, settings))

    # Odd, non-square RGB; 23/17 keeps the size (no resize pass at all).
    Image.fromarray(smooth_rgb(37, 23, 1), "RGB").save(OUT / "rgb_odd_37x23.png")
    add("rgb_odd_37x23.png", [(36, 32), (37, 32), (23, 17), (24, 24)])

    # Smaller than every target: upsampling in both directions.
    Image.fromarray(checker(9, 31, 2), "RGB").save(OUT / "rgb_tall_9x31.png")
    add("rgb_tall_9x31.png", [(36, 32), (64, 48)])

    # One pixel wide.
    Image.fromarray(smooth_rgb(1, 5, 3, noise=80), "RGB").save(OUT / "rgb_line_1x5.png")
    add("rgb_line_1x5.png", [(36, 32)])

    # Larger: the reference 256/224 (mild downsampling) and strong downsampling (x8).
    Image.fromarray(smooth_rgb(331, 263, 4, noise=6), "RGB").save(OUT / "rgb_large_331x263.png")
    add("rgb_large_331x263.png", [(256, 224), (36, 32), (37, 32)])

    # Greyscale (PIL mode L): replicated into R, G, B.
    grey = smooth_rgb(50, 40, 5)[..., 0]
    Image.fromarray(grey, "L").save(OUT / "grey_50x40.png")
    add("grey_50x40.png", [(36, 32), (24, 20)])

    # RGBA with varying alpha: convert("RGB") drops alpha without compositing.
    rgba = np.concatenate([checker(33, 47, 6), smooth_rgb(33, 47, 7)[..., :1]], axis=-1)
    Image.fromarray(rgba, "RGBA").save(OUT / "rgba_33x47.png")
    add("rgba_33x47.png", [(36, 32)])

    # Palette image.
    Image.fromarray(smooth_rgb(21, 18, 8), "RGB").quantize(colors=16, dither=Image.Dither.NONE).save(
        OUT / "palette_21x18.png"
    )
    add("palette_21x18.png", [(36, 32)])

    # 16-bit PNGs: PIL keeps the high byte of colour samples and clips plain grey to 255.
    rng = np.random.default_rng(9)
    write_png16(OUT / "rgb16_19x14.png", rng.integers(0, 65536, size=(14, 19, 3), dtype=np.uint16), 2)
    add("rgb16_19x14.png", [(36, 32)])
    grey16 = rng.integers(0, 400, size=(12, 15, 1), dtype=np.uint16)
    write_png16(OUT / "grey16_15x12.png", grey16, 0)
    add("grey16_15x12.png", [(36, 32)])

    # JPEG: PIL decodes with libjpeg-turbo; the Rust test only measures the decoder gap
    # and runs the pipeline from PIL's decoded pixels.
    photo = Image.fromarray(smooth_rgb(64, 48, 10), "RGB")
    photo.save(OUT / "photo_64x48.jpg", quality=90)  # 4:2:0 chroma, PIL's default
    add("photo_64x48.jpg", [(36, 32)])
    photo.save(OUT / "photo444_64x48.jpg", quality=90, subsampling=0)  # full-resolution chroma
    add("photo444_64x48.jpg", [(36, 32)])
    Image.fromarray(smooth_rgb(40, 30, 11)[..., 1], "L").save(OUT / "grey_40x30.jpg", quality=90)
    add("grey_40x30.jpg", [(36, 32)])
    return cases


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    entries = []
    for name, settings in make_inputs():
        stem = name.rsplit(".", 1)[0]
        src = Image.open(OUT / name)
        mode = src.mode
        rgb = src.convert("RGB")
        w, h = rgb.size
        (OUT / f"{stem}.rgb.u8").write_bytes(np.asarray(rgb, dtype=np.uint8).tobytes())
        runs = []
        for resize_shorter, crop in settings:
            rw, rh = resized_size(w, h, resize_shorter)
            resized = rgb.resize((rw, rh), Image.BILINEAR)
            left, top = center_crop_box(rw, rh, crop)
            tensor = to_tensor_normalize(resized.crop((left, top, left + crop, top + crop)))
            resized_file = f"{stem}.s{resize_shorter}.resized.u8"
            tensor_file = f"{stem}.s{resize_shorter}c{crop}.f32"
            (OUT / resized_file).write_bytes(np.asarray(resized, dtype=np.uint8).tobytes())
            (OUT / tensor_file).write_bytes(tensor.astype("<f4").tobytes())
            runs.append(
                {
                    "resize_shorter": resize_shorter,
                    "crop": crop,
                    "resized_width": rw,
                    "resized_height": rh,
                    "crop_left": left,
                    "crop_top": top,
                    "resized": resized_file,
                    "tensor": tensor_file,
                }
            )
        entries.append({"input": name, "pil_mode": mode, "width": w, "height": h, "rgb": f"{stem}.rgb.u8", "runs": runs})
    index = {
        "generator": "tools/make_preprocess_fixture.py",
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "mean": [float(m) for m in MEAN],
        "std": [float(s) for s in STD],
        "cases": entries,
    }
    (OUT / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(entries)} inputs to {OUT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
