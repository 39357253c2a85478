#!/usr/bin/env python3
"""Scores tools/eval-scenes.sh's runs against the scenes' ground truth (issue 17).

    python3 tools/eval_scenes.py OUT        (OUT as tools/eval-scenes.sh left it)

Reads OUT/data/scenes.jsonl (one line per bird: image, species, night, box, width fraction),
OUT/whole.jsonl (`xrvlm classify` of every frame), OUT/crops.jsonl (`xrvlm classify
--detections`: one row per ground-truth box) and OUT/motion/s*/out/detections.jsonl (the field
loop's log on each frame sequence). Prints Markdown tables:

1. scene frames: per bird, top-1 of the whole frame (right when it names the bird's species)
   against top-1 of the crop of its ground-truth box, by box width and by day/night;
2. frame sequences: per frame with a bird, whether the motion gate let it through, the top-1 of
   what the field loop classified (the crop of the changed region, or the whole frame) against
   the whole frame's, and how well the changed region covers the bird's box.
Only the standard library: it runs wherever the rest of the tools do.
"""

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

BINS = [(0.0, 0.10, "< 10 %"), (0.10, 0.20, "10–20 %"), (0.20, 0.40, "20–40 %"), (0.40, 1.01, "≥ 40 %")]


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def relative(file, data):
    """A file as written by a run (absolute, or relative to md.json's folder) relative to data/."""
    p = Path(file)
    if p.is_absolute():
        try:
            return p.resolve().relative_to(data.resolve()).as_posix()
        except ValueError:
            return p.as_posix()
    return p.as_posix()


def top1(row):
    top = row.get("top") or []
    return top[0]["label"] if top else None


def width_bin(fraction):
    for lo, hi, name in BINS:
        if lo <= fraction < hi:
            return name
    return BINS[-1][2]


def pct(right, total):
    return f"{100.0 * right / total:.1f} % ({right}/{total})" if total else "–"


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def covered(truth, region):
    """The fraction of the bird's box inside the region."""
    tx, ty, tw, th = truth
    rx, ry, rw, rh = region
    ix = max(0.0, min(tx + tw, rx + rw) - max(tx, rx))
    iy = max(0.0, min(ty + th, ry + rh) - max(ty, ry))
    return ix * iy / (tw * th) if tw * th > 0 else 0.0


def scene_table(birds, whole, crops):
    """Per-bird top-1, whole frame vs ground-truth crop, for the scene frames."""
    rows = defaultdict(lambda: [0, 0, 0])  # key -> [birds, whole right, crop right]
    failures = []
    for bird in birds:
        if not bird["image"].startswith("images/"):
            continue
        w = whole.get(bird["image"])
        c = crops.get((bird["image"], tuple(round(v, 4) for v in bird["bbox_normalised"])))
        keys = [
            ("width", width_bin(bird["width_fraction"])),
            ("light", "night" if bird["night"] else "day"),
            ("birds in frame", bird["birds_in_frame"]),
            ("all", "all"),
        ]
        if bird["width_fraction"] >= 0.10:
            keys.append(("width", "≥ 10 %"))
        for key in keys:
            r = rows[key]
            r[0] += 1
            r[1] += w == bird["species"]
            r[2] += c == bird["species"]
        if c is None:
            failures.append(bird["image"])
    return rows, failures


def print_scene_table(rows):
    print("| birds | n | whole frame top-1 | ground-truth crop top-1 |")
    print("|---|---:|---:|---:|")
    order = [("width", b[2]) for b in BINS] + [("width", "≥ 10 %")]
    order += [("light", "day"), ("light", "night")]
    order += [("birds in frame", "1"), ("birds in frame", "2–3"), ("all", "all")]
    for key in order:
        if key not in rows:
            continue
        n, w, c = rows[key]
        label = {"width": f"box width {key[1]} of the frame", "light": key[1],
                 "birds in frame": f"{key[1]} bird(s) in the frame", "all": "**all birds**"}[key[0]]
        print(f"| {label} | {n} | {pct(w, n)} | {pct(c, n)} |")


def motion_table(birds, whole, out):
    """Per sequence frame with a bird: gated, what the loop classified, against the whole frame."""
    truth = defaultdict(list)
    for bird in birds:
        if bird["image"].startswith("sequences/"):
            truth[bird["image"]].append(bird)
    rows = defaultdict(lambda: [0, 0, 0, 0, 0])  # key -> [frames, gated, loop right, whole right, cropped]
    coverage, ious = [], []
    empties = [0, 0]  # frames without a bird: gated, total
    for log in sorted((out / "motion").glob("s*/out/detections.jsonl")):
        seq = log.parent.parent.name
        frames = {}
        for entry in read_jsonl(log):
            if entry.get("type") == "frame":
                frames[f"sequences/{seq}/{entry['file_name']}"] = entry
        for image in sorted(p.relative_to(out / "data").as_posix()
                            for p in (out / "data" / "sequences" / seq).glob("*.jpg")):
            record = frames.get(image)
            present = truth.get(image, [])
            if not present:
                empties[1] += 1
                empties[0] += record is not None
                continue
            bird = present[0]
            keys = [("width", width_bin(bird["width_fraction"])), ("all", "all")]
            if bird["width_fraction"] >= 0.10:
                keys.append(("width", "≥ 10 %"))
            loop = top1(record) if record else None
            region = record.get("bbox") if record else None
            for key in keys:
                r = rows[key]
                r[0] += 1
                r[1] += record is not None
                r[2] += loop == bird["species"]
                r[3] += whole.get(image) == bird["species"]
                r[4] += region is not None
            if region is not None:
                coverage.append(covered(bird["bbox_normalised"], region))
                ious.append(iou(bird["bbox_normalised"], region))
    return rows, coverage, ious, empties


def print_motion_table(rows):
    print("| frames with a bird | n | passed the motion gate | classified on the region's crop "
          "| field loop top-1 (crop or whole) | whole frame top-1 |")
    print("|---|---:|---:|---:|---:|---:|")
    order = [("width", b[2]) for b in BINS] + [("width", "≥ 10 %"), ("all", "all")]
    for key in order:
        if key not in rows:
            continue
        n, gated, right, whole_right, cropped = rows[key]
        label = f"box width {key[1]} of the frame" if key[0] == "width" else "**all**"
        print(f"| {label} | {n} | {pct(gated, n)} | {pct(cropped, n)} | {pct(right, n)} "
              f"| {pct(whole_right, n)} |")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    data = out / "data"
    birds = read_jsonl(data / "scenes.jsonl")
    per_image = defaultdict(int)
    for bird in birds:
        per_image[bird["image"]] += 1
    for bird in birds:
        bird["birds_in_frame"] = "1" if per_image[bird["image"]] == 1 else "2–3"
    whole = {}
    for row in read_jsonl(out / "whole.jsonl"):
        whole[relative(row["file"], data)] = top1(row)
    crops = {}
    for row in read_jsonl(out / "crops.jsonl"):
        if "bbox" in row:
            crops[(relative(row["file"], data), tuple(round(v, 4) for v in row["bbox"]))] = top1(row)
    settings = json.loads((data / "synth-scenes.json").read_text(encoding="utf-8"))
    frames = sum(1 for row in read_jsonl(out / "whole.jsonl")
                 if relative(row["file"], data).startswith("images/"))
    in_scenes = sum(1 for b in birds if b["image"].startswith("images/"))
    print(f"scenes: {data} ({frames} scene frames with {in_scenes} birds; "
          f"{len(birds) - in_scenes} sequence frames with a bird); "
          f"generator settings: {json.dumps(settings.get('config', settings.get('parameters', '')))}")
    print()
    rows, missing = scene_table(birds, whole, crops)
    print_scene_table(rows)
    if missing:
        print(f"\n{len(missing)} ground-truth boxes had no crop row (first: {missing[0]})")
    print()
    rows, coverage, ious, empties = motion_table(birds, whole, out)
    if rows:
        print_motion_table(rows)
        print()
        if coverage:
            print(f"changed region vs the bird's box, on frames classified on a region: "
                  f"median share of the box inside the region {statistics.median(coverage):.2f}, "
                  f"median IoU {statistics.median(ious):.2f} (n = {len(coverage)})")
        print(f"frames without a bird that passed the motion gate: {empties[0]} of {empties[1]}")


if __name__ == "__main__":
    main()
