#!/usr/bin/env python3
"""Writes runtime/tests/fixtures/reconyx/: three real Reconyx camera-trap photos of the Camtrap DP
example package (MICA project, deployment 62c200a9, CC-BY 4.0 INBO), downscaled from 2048x1440 to
512x360 with their EXIF block kept byte for byte, so tests read the camera's own capture time.

Run from the repository root with Pillow: python3 tools/make_reconyx_fixtures.py [SHARED_MEDIA_DIR]
(default ../shared/data/camtrap-dp-1.0.2/example/media)."""
import sys
from pathlib import Path

from PIL import Image

SOURCE = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/camtrap-dp-1.0.2/example/media")
OUT = Path("runtime/tests/fixtures/reconyx")
NAMES = ["20210531082538-RCNX0031.JPG", "20210531082538-RCNX0032.JPG", "20210531082539-RCNX0033.JPG"]

OUT.mkdir(parents=True, exist_ok=True)
for name in NAMES:
    img = Image.open(SOURCE / name)
    exif = img.info["exif"]
    small = img.resize((512, 360), Image.Resampling.LANCZOS)
    small.save(OUT / name, "JPEG", quality=85, exif=exif)
    check = Image.open(OUT / name).getexif().get_ifd(0x8769)
    print(name, small.size, "DateTimeOriginal", check.get(0x9003))
