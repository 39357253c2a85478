#!/usr/bin/env python3
"""Generate the camera-frame fixtures for the field sources (runtime/src/field/source/).

Dev tool, not run in CI. Needs python3 with pillow and numpy:

    python3 -m venv /tmp/fixvenv && /tmp/fixvenv/bin/pip install pillow numpy
    /tmp/fixvenv/bin/python tools/make_frame_fixtures.py

Writes into runtime/tests/fixtures/frames/:

    scene.png          the 64x48 RGB test scene (gradients, colour patches, a dark "animal")
    scene.yuyv         the scene as a V4L2 YUYV (4:2:2) buffer: BT.601 limited range, the UVC
                       default; each pixel pair shares the mean of its two chroma values
    scene.yuyv.png     the RGB the YUYV buffer stands for: the exact float BT.601 inverse of its
                       quantized Y/Cb/Cr values, rounded (what a converter should produce, to
                       the rounding of its fixed-point arithmetic)
    mjpeg_dht.jpg      the scene as a baseline JPEG, 4:2:2, quality 90, with the standard
                       (Annex K) Huffman tables in DHT segments, as libjpeg writes them
    mjpeg_no_dht.jpg   the same bytes with every DHT segment removed, as many UVC cameras send
                       MJPEG frames (no AVI1 marker either, so decoders must be given the tables)
    mjpeg.png          libjpeg-turbo's (PIL's) decoding of mjpeg_dht.jpg, the reference for both
    exif_dated.jpg     a small JPEG with EXIF DateTimeOriginal 2021:05:31 08:25:38 and
                       OffsetTimeOriginal +02:00
"""

from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "runtime" / "tests" / "fixtures" / "frames"
W, H = 64, 48


def scene():
    """A deterministic scene with smooth gradients and sharp colour edges."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    rgb = np.zeros((H, W, 3))
    rgb[..., 0] = 40 + 180 * x / (W - 1)
    rgb[..., 1] = 60 + 150 * y / (H - 1)
    rgb[..., 2] = 200 - 120 * (x + y) / (W + H - 2)
    rgb[8:20, 6:22] = [230, 30, 40]     # red patch
    rgb[26:40, 40:58] = [20, 160, 60]   # green patch
    rgb[30:44, 10:30] = [25, 20, 15]    # dark animal-like blob
    rgb[4:10, 44:60] = [250, 250, 245]  # near-white sky patch
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


# BT.601 luma weights; limited range: Y in 16..235, Cb/Cr in 16..240.
KR, KB = 0.299, 0.114
KG = 1 - KR - KB


def rgb_to_ycbcr_limited(rgb):
    r, g, b = [rgb[..., i].astype(np.float64) / 255 for i in range(3)]
    ey = KR * r + KG * g + KB * b
    cb = (b - ey) / (2 * (1 - KB))
    cr = (r - ey) / (2 * (1 - KR))
    return 16 + 219 * ey, 128 + 224 * cb, 128 + 224 * cr


def ycbcr_limited_to_rgb(y, cb, cr):
    ey = (y - 16) / 219
    pb = (cb - 128) / 224
    pr = (cr - 128) / 224
    r = ey + 2 * (1 - KR) * pr
    b = ey + 2 * (1 - KB) * pb
    g = (ey - KR * r - KB * b) / KG
    rgb = np.stack([r, g, b], axis=-1) * 255
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def yuyv(rgb):
    """Packs to YUYV (Y0 U Y1 V per pixel pair) and returns (bytes, the RGB it stands for)."""
    y, cb, cr = rgb_to_ycbcr_limited(rgb)
    q = lambda a: np.clip(np.rint(a), 0, 255).astype(np.uint8)
    yq = q(y)
    cbq = q((cb[:, 0::2] + cb[:, 1::2]) / 2)
    crq = q((cr[:, 0::2] + cr[:, 1::2]) / 2)
    packed = np.zeros((H, W * 2), dtype=np.uint8)
    packed[:, 0::4] = yq[:, 0::2]
    packed[:, 1::4] = cbq
    packed[:, 2::4] = yq[:, 1::2]
    packed[:, 3::4] = crq
    full_cb = np.repeat(cbq, 2, axis=1).astype(np.float64)
    full_cr = np.repeat(crq, 2, axis=1).astype(np.float64)
    return packed.tobytes(), ycbcr_limited_to_rgb(yq.astype(np.float64), full_cb, full_cr)


def strip_dht(jpeg):
    """Removes every DHT (FF C4) segment before the first scan."""
    out = bytearray(jpeg[:2])
    i = 2
    while i < len(jpeg):
        assert jpeg[i] == 0xFF, f"expected a marker at {i}"
        marker = jpeg[i + 1]
        if marker == 0xDA:  # start of scan: copy the rest verbatim
            out += jpeg[i:]
            break
        length = int.from_bytes(jpeg[i + 2:i + 4], "big")
        if marker != 0xC4:
            out += jpeg[i:i + 2 + length]
        i += 2 + length
    return bytes(out)


def exif_jpeg(path):
    img = Image.fromarray(scene()[:16, :16])
    exif = Image.Exif()
    ifd = exif.get_ifd(0x8769)  # Exif sub-IFD
    ifd[0x9003] = "2021:05:31 08:25:38"  # DateTimeOriginal
    ifd[0x9011] = "+02:00"  # OffsetTimeOriginal
    img.save(path, "JPEG", quality=90, exif=exif.tobytes())
    check = Image.open(path).getexif().get_ifd(0x8769)
    assert check[0x9003] == "2021:05:31 08:25:38" and check[0x9011] == "+02:00", check


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rgb = scene()
    Image.fromarray(rgb).save(OUT / "scene.png")

    packed, expected = yuyv(rgb)
    (OUT / "scene.yuyv").write_bytes(packed)
    Image.fromarray(expected).save(OUT / "scene.yuyv.png")

    jpg_path = OUT / "mjpeg_dht.jpg"
    # subsampling=1 is 4:2:2, what UVC cameras send; optimize=False keeps the standard tables.
    Image.fromarray(rgb).save(jpg_path, "JPEG", quality=90, subsampling=1, optimize=False)
    with_dht = jpg_path.read_bytes()
    assert b"\xff\xc4" in with_dht
    no_dht = strip_dht(with_dht)
    assert b"\xff\xc4" not in no_dht.split(b"\xff\xda")[0]
    (OUT / "mjpeg_no_dht.jpg").write_bytes(no_dht)
    Image.open(jpg_path).convert("RGB").save(OUT / "mjpeg.png")

    exif_jpeg(OUT / "exif_dated.jpg")
    for p in sorted(OUT.iterdir()):
        print(f"{p.name}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
