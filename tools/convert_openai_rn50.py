#!/usr/bin/env python3
"""Converts an OpenAI ModifiedResNet CLIP (`RN50.pt`, `RN101.pt`, `RN50x4.pt`, ...) into the
open_clip checkpoint layout that `xrvlm-train` reads (`tools/train/src/clip/open_clip.rs`):

    OUT/open_clip_config.json        open_clip's model_cfg (RN50.json's keys) + preprocess_cfg
    OUT/open_clip_model.safetensors  the state dict under OpenAI's names, f32
    OUT/tokenizer.json               OpenAI's BPE as a Hugging Face tokenizer

Usage (a dev tool; needs torch and safetensors, no network):

    python tools/convert_openai_rn50.py RN50.pt OUT --bpe bpe_simple_vocab_16e6.txt.gz

`RN50.pt` is the TorchScript archive OpenAI's `clip.load` downloads; a plain `torch.save`d state
dict works as well. The BPE file ships inside OpenAI's `clip` package. The sizes are read from the
tensors' shapes, as OpenAI's `build_model` does, so every ResNet size converts.

Then, for instance: `xrvlm-train embed OUT --image bird.jpg --text "a photo of a bird."`.
"""

import argparse
import gzip
import json
import math
import re
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

# Scalars OpenAI's state dict carries that are not weights.
NOT_WEIGHTS = ("input_resolution", "context_length", "vocab_size")
# OpenAI's BPE keeps this many merges (49152 - 256 - 2).
MERGES = 48894
SOT, EOT = "<|startoftext|>", "<|endoftext|>"
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def load_state_dict(path):
    try:
        model = torch.jit.load(str(path), map_location="cpu")
        state = model.state_dict()
    except RuntimeError:
        state = torch.load(str(path), map_location="cpu")
        state = state.get("state_dict", state)
    return {k: v for k, v in state.items() if k not in NOT_WEIGHTS}


def count_indices(state, pattern):
    found = {int(m.group(1)) for k in state for m in [re.match(pattern, k)] if m}
    return max(found) + 1 if found else 0


def model_cfg(state):
    """The sizes, read from the shapes as OpenAI's build_model does."""
    if "visual.layer1.0.conv1.weight" not in state:
        sys.exit("not a ModifiedResNet CLIP: visual.layer1.0.conv1.weight is missing")
    layers = [count_indices(state, rf"visual\.layer{s}\.(\d+)\.") for s in (1, 2, 3, 4)]
    width = state["visual.layer1.0.conv1.weight"].shape[0]
    tokens = state["visual.attnpool.positional_embedding"].shape[0] - 1
    grid = math.isqrt(tokens)
    if grid * grid != tokens:
        sys.exit(f"attnpool.positional_embedding has {tokens} spatial rows, not a square grid")
    text_width = state["ln_final.weight"].shape[0]
    return {
        "embed_dim": state["text_projection"].shape[1],
        "quick_gelu": True,
        "vision_cfg": {"image_size": grid * 32, "layers": layers, "width": width, "head_width": 64},
        "text_cfg": {
            "context_length": state["positional_embedding"].shape[0],
            "vocab_size": state["token_embedding.weight"].shape[0],
            "width": text_width,
            "heads": text_width // 64,
            "layers": count_indices(state, r"transformer\.resblocks\.(\d+)\."),
            "mlp_ratio": 4,
        },
    }


def byte_symbols():
    """GPT-2's printable stand-in for each byte, in OpenAI's vocabulary order."""
    kept = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    symbols = {b: chr(b) for b in kept}
    extra = 0
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(256 + extra)
            extra += 1
    order = kept + [b for b in range(256) if b not in kept]
    return [symbols[b] for b in order]


def tokenizer_json(bpe_path, vocab_size):
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : MERGES + 1]]
    symbols = byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [SOT, EOT]
    if len(tokens) != vocab_size:
        sys.exit(f"the BPE gives {len(tokens)} tokens but the model has {vocab_size}")
    vocab = {t: i for i, t in enumerate(tokens)}
    sot, eot = vocab[SOT], vocab[EOT]
    special = lambda content, i: {
        "id": i, "content": content, "single_word": False, "lstrip": False,
        "rstrip": False, "normalized": False, "special": True,
    }
    split = (
        r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]"
        r"|[^\s\p{L}\p{N}]+"
    )
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [special(SOT, sot), special(EOT, eot)],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"},
            {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "},
            {"type": "Lowercase"},
        ]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": split}, "behavior": "Removed", "invert": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": True},
        ]},
        "post_processor": {"type": "RobertaProcessing", "sep": [EOT, eot], "cls": [SOT, sot],
                           "trim_offsets": False, "add_prefix_space": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": EOT,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "</w>",
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [" ".join(m) for m in merges]},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path, help="OpenAI RN*.pt (TorchScript or state dict)")
    ap.add_argument("out", type=Path, help="output directory")
    ap.add_argument("--bpe", type=Path, help="bpe_simple_vocab_16e6.txt.gz (OpenAI's clip package)")
    args = ap.parse_args()
    state = load_state_dict(args.checkpoint)
    cfg = model_cfg(state)
    args.out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().float().contiguous() for k, v in state.items()}
    save_file(tensors, str(args.out / "open_clip_model.safetensors"), metadata={"format": "pt"})
    config = {
        "model_cfg": cfg,
        "preprocess_cfg": {"mean": CLIP_MEAN, "std": CLIP_STD, "interpolation": "bicubic"},
    }
    (args.out / "open_clip_config.json").write_text(json.dumps(config, indent=2) + "\n")
    if args.bpe:
        tok = tokenizer_json(args.bpe, cfg["text_cfg"]["vocab_size"])
        (args.out / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False))
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    print(
        f"{args.out}: ModifiedResNet layers {v['layers']} width {v['width']} at {v['image_size']} px, "
        f"text {t['layers']}x{t['width']}, embed {cfg['embed_dim']}, {len(tensors)} tensors"
        + ("" if args.bpe else "; no --bpe: no tokenizer.json written")
    )


if __name__ == "__main__":
    main()
