#!/usr/bin/env python3
"""Scores the unknown-species rejection of a bundle (tools/eval-open-world.sh runs it).

Inputs, all written by the shell script:
  --manifest    the bundle's manifest.toml (its classes and its [open_world] section)
  --scores      `xrvlm-train open-world-scores` lines (every candidate score of every frame),
                one file per precision, as PRECISION=FILE
  --classify    `xrvlm classify --format jsonl` of the same frames (the bundle's own rule)
  --real        `xrvlm classify --format jsonl` of real photos that are nothing like the world
  --holdout     comma-separated species held out of everything (pre-training too)
  --species     the frames' species.json (each species' genus and family): the roll-up table

Roll-up (issue 18, taxonomy): `answer` is the runtime's decision on a frame (`xrvlm classify
--threshold --roll-up-to`, the field's rule): a species, blank, unknown, or a taxon (genus,
family) when no species was sure. On frames of species the bundle does not know but whose genus
it does, the share answered with the right genus (or family); on known species, how often the
answer rolls up, and how often it does so although the top species was right.

A frame's true species is the name of the folder it is in. Known = the bundle's classes but the
blank class; held out = the --holdout species; "seen" = every other species of the world (the
backbone saw them in pre-training, the head never did). Every score is larger for a frame that
looks more like a known species, so AUROC is P(score of a known frame > score of an unknown
one), ties counting half.

Prints the Markdown tables BENCHMARKS.md records; exits 1 when a real photo is answered as a
species or a taxon (neither unknown nor blank).
"""

import argparse
import json
import sys
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

SCORES = ["max_softmax", "max_logit", "energy", "part_prompt", "part_prototype", "nearest_prototype"]


def auroc(known, unknown):
    """P(known > unknown) + P(tie) / 2, by average ranks (Mann-Whitney U)."""
    values = sorted([(v, 1) for v in known] + [(v, 0) for v in unknown])
    rank_sum, i = 0.0, 0
    while i < len(values):
        j = i
        while j < len(values) and values[j][0] == values[i][0]:
            j += 1
        average = (i + 1 + j) / 2  # ranks i+1 .. j
        rank_sum += average * sum(flag for _, flag in values[i:j])
        i = j
    n1, n0 = len(known), len(unknown)
    return (rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0)


def rejected_at_recall(known, unknown, recall=0.95):
    """Share of `unknown` below the threshold that keeps `recall` of `known` (the runtime's
    calibration rule, here on the test frames themselves: an oracle threshold)."""
    ordered = sorted(known)
    below = int((1 - recall) * len(ordered) + 1e-9)
    threshold = ordered[min(below, len(ordered) - 1)]
    return sum(v < threshold for v in unknown) / len(unknown)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def folder_of(record):
    return Path(record["file"]).parent.name


def groups(manifest, holdout):
    labels = [c["label"] for c in manifest["classes"]]
    blank = (manifest.get("open_world") or {}).get("blank_label", "blank")
    known = set(labels) - {blank}

    def group(species):
        if species in known:
            return "known"
        if species == blank:
            return "blank"
        return "held out" if species in holdout else "seen"

    return group


def score_table(records, group):
    by_group = defaultdict(lambda: defaultdict(list))
    for r in records:
        g = group(r["folder"])
        for s in SCORES:
            # None: a prototype score of a bundle without prototypes.
            if r["scores"][s] is not None:
                by_group[g][s].append(r["scores"][s])
    n = {g: len(v[SCORES[0]]) for g, v in by_group.items()}
    rows = []
    for s in SCORES:
        known = by_group["known"][s]
        row = [s]
        for g in ["held out", "seen"]:
            if known and by_group[g][s]:
                unknown = by_group[g][s]
                row += [f"{auroc(known, unknown):.4f}", f"{100 * rejected_at_recall(known, unknown):.1f} %"]
            else:
                row += ["–", "–"]
        rows.append(row)
    return n, rows


def print_scores(precision, records, group):
    n, rows = score_table(records, group)
    print(
        f"\n### Candidate scores, {precision} ({n.get('known', 0)} known frames, "
        f"{n.get('held out', 0)} held-out, {n.get('seen', 0)} seen-in-pre-training)\n"
    )
    print("| score | AUROC, held out | unknown at 95 % recall, held out | AUROC, seen | unknown at 95 % recall, seen |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def print_rule(manifest, records, group):
    section = manifest.get("open_world")
    if section is None:
        print("\nThe bundle has no [open_world] section: nothing is rejected.")
        return
    counts = defaultdict(Counter)
    per_species = defaultdict(Counter)
    for r in records:
        if "error" in r:
            continue
        species = folder_of(r)
        g = group(species)
        answer = "unknown" if r.get("unknown") else r["top"][0]["label"]
        counts[g]["frames"] += 1
        counts[g]["unknown"] += answer == "unknown"
        counts[g]["right"] += answer == species
        if g == "held out":
            per_species[species]["frames"] += 1
            per_species[species]["unknown"] += answer == "unknown"
            if answer != "unknown":
                per_species[species][answer] += 1
    print(
        f"\n### The bundle's rule: {section['score']} below {section['threshold']:.4f} is unknown "
        f"(calibrated on {section['calibration_images']} known-species frames of "
        f"{section['calibration_set']} for {100 * section['target_recall']:.0f} % recall, "
        f"{100 * section['recall']:.2f} % there)\n"
    )
    print("| frames | count | answered unknown | kept (known recall) | right species |")
    print("|---|---:|---:|---:|---:|")
    for g in ["known", "held out", "seen", "blank"]:
        c = counts[g]
        if c["frames"]:
            share = lambda k: f"{100 * c[k] / c['frames']:.2f} %"
            kept = f"{100 * (c['frames'] - c['unknown']) / c['frames']:.2f} %"
            right = share("right") if g in ("known", "blank") else "–"
            print(f"| {g} | {c['frames']} | {share('unknown')} | {kept} | {right} |")
    print("\n| held-out species | frames | answered unknown | most common other answer |")
    print("|---|---:|---:|---|")
    for species in sorted(per_species):
        c = per_species[species]
        others = [(k, v) for k, v in c.items() if k not in ("frames", "unknown")]
        other = max(others, key=lambda kv: kv[1]) if others else None
        other = f"{other[0]} ({other[1]})" if other else "–"
        print(f"| {species} | {c['frames']} | {100 * c['unknown'] / c['frames']:.1f} % | {other} |")


def answer_of(record):
    """The decision's answer as (kind, name): a species' label, a taxon's name."""
    a = record["answer"]
    if a["kind"] == "species":
        return "species", a["label"]
    if a["kind"] == "taxon":
        return a["rank"], a["name"]
    return a["kind"], None


def print_taxonomy(manifest, records, species_file):
    with open(species_file) as f:
        world = {s["name"]: s["taxonomy"] for s in json.load(f)["species"]}
    labels = [c["label"] for c in manifest["classes"]]
    known = {l for l in labels if l in world}
    known_genera = {world[l]["genus"] for l in known}
    counts = defaultdict(Counter)
    for r in records:
        if "error" in r:
            continue
        species = folder_of(r)
        if species not in world:
            continue
        truth = world[species]
        kind, name = answer_of(r)
        if species in known:
            g = "known species"
        elif truth["genus"] in known_genera:
            g = "unknown species of a known genus"
        else:
            g = "unknown species of an unknown genus"
        c = counts[g]
        c["frames"] += 1
        c[kind] += 1
        c["right species"] += kind == "species" and name == species
        c["right genus"] += kind == "genus" and name == truth["genus"]
        c["right family"] += kind == "family" and name == truth["family"]
        c["wrong species"] += kind == "species" and name != species
        rolled = kind in ("genus", "family", "order", "class")
        c["rolled up"] += rolled
        c["rolled up, top right"] += rolled and r["top"][0]["label"] == species
    print("\n### Roll-up: the answer at the rank the frame supports\n")
    print(
        "| frames | count | right species | right genus | right family | unknown "
        "| a wrong species | rolled up | rolled up with the top species right |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for g in ["known species", "unknown species of a known genus", "unknown species of an unknown genus"]:
        c = counts[g]
        if not c["frames"]:
            continue
        share = lambda k: f"{100 * c[k] / c['frames']:.1f} %"
        print(
            f"| {g} | {c['frames']} | {share('right species')} | {share('right genus')} "
            f"| {share('right family')} | {share('unknown')} | {share('wrong species')} "
            f"| {share('rolled up')} | {share('rolled up, top right')} |"
        )


def print_real(manifest, records):
    blank = (manifest.get("open_world") or {}).get("blank_label", "blank")
    print("\n### Real photos\n")
    print("| photo | answer | top class (probability) | score |")
    print("|---|---|---|---:|")
    birds = 0
    for r in records:
        if "error" in r:
            print(f"| {Path(r['file']).name} | failed: {r['error']} | – | – |")
            birds += 1
            continue
        top = r["top"][0]
        kind, name = answer_of(r)
        if kind in ("unknown", "blank"):
            answer = kind
        else:
            answer = f"**{name} ({kind})**"
            birds += 1
        score = r.get("open_world_score")
        score = f"{score:.3f}" if score is not None else "–"
        print(f"| {Path(r['file']).name} | {answer} | {top['label']} ({top['probability']:.3f}) | {score} |")
    print(f"\n{len(records) - birds} of {len(records)} real photos answered unknown or blank.")
    return birds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--scores", action="append", default=[], metavar="PRECISION=FILE")
    parser.add_argument("--classify")
    parser.add_argument("--real")
    parser.add_argument("--holdout", required=True)
    parser.add_argument("--species")
    args = parser.parse_args()
    with open(args.manifest, "rb") as f:
        manifest = tomllib.load(f)
    group = groups(manifest, set(args.holdout.split(",")))
    for spec in args.scores:
        precision, path = spec.split("=", 1)
        print_scores(precision, read_jsonl(path), group)
    if args.classify:
        print_rule(manifest, read_jsonl(args.classify), group)
        if args.species:
            print_taxonomy(manifest, read_jsonl(args.classify), args.species)
    birds = print_real(manifest, read_jsonl(args.real)) if args.real else 0
    sys.exit(1 if birds else 0)


if __name__ == "__main__":
    main()
