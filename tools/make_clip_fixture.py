#!/usr/bin/env python3
"""Generate the tiny CLIP reference fixtures used by the `xrvlm-train` Rust tests.

Dev tool, NOT run in CI. The outputs are committed under
``tools/train/tests/fixtures/``; re-run this only to regenerate them.

How to run (from the repository root)::

    python -m venv /opt/fixvenv
    /opt/fixvenv/bin/pip install -r tools/requirements-dev.txt
    /opt/fixvenv/bin/python tools/make_clip_fixture.py            # writes the fixtures
    /opt/fixvenv/bin/python tools/make_clip_fixture.py --check    # regenerate in a temp dir and
                                                                  # compare with the committed files

Optional: ``--out DIR`` (default ``tools/train/tests/fixtures``).

What it writes (two fixture directories, each with exactly these four files)::

    <out>/clip-tiny-quick-gelu/   hidden_act="quick_gelu", text eos_token_id=2
                                  (transformers' legacy pooling: EOT feature at argmax(input_ids))
    <out>/clip-tiny-gelu/         hidden_act="gelu" (exact erf GELU), text eos_token_id=<|endoftext|> id
                                  (new pooling: first position where input_ids == eos_token_id)
        config.json               CLIPConfig as written by CLIPModel.save_pretrained
        model.safetensors         fp32 weights with Hugging Face tensor names
        tokenizer.json            CLIP BPE tokenizer as written by transformers' CLIP fast tokenizer
        expected.safetensors      reference inputs/outputs (see TENSOR_DOC below)
        expected.json             test strings, their ids, special ids, versions, tensor meanings

Steps:
  1. Learn a small CLIP-format BPE (vocab.json + merges.txt laid out exactly like OpenAI CLIP's:
     256 byte-level unicode chars in bytes_to_unicode() order, the same 256 with "</w>", one
     token per merge, then <|startoftext|>, <|endoftext|>) on a tiny bird-caption corpus, load it
     with transformers' CLIP fast tokenizer and save its tokenizer.json. The ids of the test
     strings are checked against (a) an independent re-implementation of OpenAI's
     simple_tokenizer BPE below (the "slow" reference; transformers >= 5 no longer ships the
     python slow CLIPTokenizer; with transformers 4.x the slow CLIPTokenizer is compared as well,
     which needs `ftfy` installed: without it 4.x's slow tokenizer falls back to BERT's
     BasicTokenizer, which splits CJK characters apart and disagrees with fast/OpenAI on them)
     and (b) the raw `tokenizers.Tokenizer.from_file("tokenizer.json")` (what the Rust crate sees).
  2. Build two tiny random CLIPModels (vision: hidden 32, 4 layers, 4 heads, mlp 64, patch 8,
     image 32 -> 16 patches + CLS = 17 tokens; text: hidden 32, 3 layers, 4 heads, mlp 64,
     77 positions; projection 24; layer_norm_eps 1e-5) with transformers' own init, then add
     noise to EVERY parameter (LayerNorm weights/biases, all biases, class_embedding, position
     embeddings, logit_scale) so that no tensor is trivially 0/1.
  3. save_pretrained -> config.json + model.safetensors; reload from disk with eager attention.
  4. Compute the reference tensors in eval mode, torch.no_grad, float32, deterministic algorithms,
     TF32 off, 1 CPU thread; cross-check them against an independent float64 re-implementation
     of the CLIP forward pass in this file (`manual_*` functions).

Facts about transformers' CLIP verified against the installed source (transformers 5.x,
models/clip/modeling_clip.py, utils/output_capturing.py) and numerically by this script:
  * Vision: embeddings = cat(class_embedding, conv(patch, stride=patch, no bias) flattened
    row-major over the grid) + position_embedding; then `pre_layrnorm` (sic) BEFORE the
    encoder; `post_layernorm` is applied only to the CLS token for the pooled output
    (`last_hidden_state` itself is NOT post-layernormed).
  * `hidden_states` (output_hidden_states=True) has num_layers+1 entries: hidden_states[0] is
    the INPUT of encoder layer 0, i.e. the pre_layrnorm'ed embeddings; hidden_states[i] is the
    output of encoder layer i-1 (after i blocks); hidden_states[-1] == last_hidden_state
    (CLIPVisionModel uses tie_last_hidden_states=False, but nothing follows the last block).
    So LLaVA's "hidden_states[-2]" is hidden_states[L-1]; this fixture's `vision_hidden_l2` is
    hidden_states[L-2] (after L-2 blocks) and all of them are in `vision_hidden_states`.
  * Encoder layer: pre-LN: x = x + out_proj(attn(ln1(x))); x = x + fc2(act(fc1(ln2(x)))).
    Attention scale head_dim**-0.5 applied to q.k, softmax in fp32.
  * "quick_gelu" = x * sigmoid(1.702 x); "gelu" = torch.nn.functional.gelu (exact erf form,
    0.5 x (1 + erf(x / sqrt 2)), NOT the tanh approximation).
  * Text: token_embedding + position_embedding (positions 0..T-1), causal mask (+ padding mask
    when attention_mask is given), final_layer_norm over all tokens, pooled = final-normed state
    at the EOT position, text_embeds = text_projection(pooled). EOT position:
      - config eos_token_id == 2 (legacy): argmax(input_ids) along the sequence (first max;
        <|endoftext|> is the largest id, so this is the first <|endoftext|>);
      - otherwise: first index where input_ids == eos_token_id.
    Because attention is causal and the tokenizer pads AFTER the EOT, the padding mask does not
    change the pooled output (text_embeds == text_embeds_nomask, checked).
  * get_image_features / get_text_features in transformers 5 return a BaseModelOutputWithPooling
    whose pooler_output holds the PROJECTED (not normalized) features; 4.x returns the tensor.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import regex
import safetensors
import tokenizers
import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import CLIPConfig, CLIPModel

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "tools" / "train" / "tests" / "fixtures"

CONTEXT_LENGTH = 77
SOT = "<|startoftext|>"
EOT = "<|endoftext|>"
MAX_MERGES = 300

# Same pattern as OpenAI CLIP's simple_tokenizer / transformers' CLIP pre-tokenizer.
CLIP_PAT = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)

# BPE training corpus: (text, weight). The first group must end up as whole-word tokens.
TARGET_TEXTS = [
    "a photo of the",
    "bird",
    "red",
    "beak",
    "wing",
    "x",
    "Black Footed Albatross",
    "Northern Cardinal",
]
EXTRA_TEXTS = [
    "a photo of a bird with a red beak and black wings",
    "this bird has a long yellow bill and white feathers on its head",
    "a small brown bird with a spotted breast and a short tail",
    "blue jay, american crow, painted bunting, laysan albatross",
    "crested auklet, rusty blackbird, gray catbird, indigo bunting",
    "pied billed grebe, ruby throated hummingbird, cedar waxwing, scarlet tanager",
    "the wings are grey with orange stripes and the crown is dark",
    "a picture of a bird perched on a branch near the water",
]

# Test strings. The first four go through the model (input_ids (4,77)); the rest are
# tokenizer-only cases.
MODEL_TEXTS = [
    "X X X X Northern Cardinal.",
    "A photo of the Black Footed Albatross, with a RED beak & wings!",
    "  a   photo\tof the  bird #42 ... wing-span: 7x  \n ",
    # Longer than the context: truncated to 75 tokens + <|startoftext|> + <|endoftext|>.
    "a photo of the red bird with a red beak and a black wing, " * 8,
]
TOKENIZER_ONLY_TEXTS = [
    "",
    "it's a bird's wing, isn't it? They'll say we'd've seen 3 birds!!!",
    "Café Naïve Ünïcode: 你好 — ok?",
    "1234567890 x1 2x",
    "<|startoftext|>a photo of the bird<|endoftext|>",
]

TENSOR_DOC = {
    "pixel_values": "(3,3,32,32) f32 model input: uniform[0,1) pixels normalized with the CLIP "
    "mean/std (OPENAI_CLIP_MEAN/STD), NCHW",
    "image_embeds": "(3,24) f32 model.get_image_features(pixel_values): "
    "visual_projection(post_layernorm(last_hidden_state[:,0])); NOT L2-normalized",
    "image_pooled": "(3,32) f32 vision_model pooler_output = post_layernorm(last_hidden_state[:,0]) "
    "(before visual_projection)",
    "vision_hidden_l2": "(3,17,32) f32 vision_model(output_hidden_states=True).hidden_states[L-2] "
    "with L=4: the residual stream after 2 of the 4 encoder blocks (no post_layernorm)",
    "vision_hidden_states": "(5,3,17,32) f32 all vision hidden_states stacked: [0] = pre_layrnorm(embeddings) "
    "(input of block 0), [i] = output of block i-1, [4] = last_hidden_state",
    "vision_tokens_proj": "(3,17,24) f32 visual_projection(post_layernorm(last_hidden_state)) over ALL 17 "
    "tokens (token 0 = CLS, equals image_embeds)",
    "input_ids": "(4,77) i64 tokenizer(MODEL_TEXTS, padding='max_length', max_length=77, "
    "truncation=True); padding uses the pad token <|endoftext|>",
    "attention_mask": "(4,77) i64 1 for real tokens (incl. <|startoftext|> and the first <|endoftext|>), 0 for padding",
    "text_embeds": "(4,24) f32 model.get_text_features(input_ids, attention_mask): "
    "text_projection(final_layer_norm(last_hidden_state)[b, eot_positions[b]]); NOT normalized",
    "text_embeds_nomask": "(4,24) f32 same as text_embeds but called without attention_mask (causal mask only)",
    "text_pooled": "(4,32) f32 text_model pooler_output (final-layernormed state at the EOT position, "
    "before text_projection)",
    "eot_positions": "(4,) i64 sequence index the reference pools at (see eot_rule in expected.json)",
}


# --------------------------------------------------------------------------------------------
# Tokenizer: CLIP-format vocab/merges + an independent reference BPE (OpenAI simple_tokenizer)
# --------------------------------------------------------------------------------------------


def bytes_to_unicode() -> dict[int, str]:
    """OpenAI CLIP / GPT-2 reversible byte -> printable unicode map (insertion order matters)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


BYTE_ENCODER = bytes_to_unicode()


def whitespace_clean(text: str) -> str:
    return regex.sub(r"\s+", " ", text).strip()


def basic_clean(text: str) -> str:
    # OpenAI also runs ftfy.fix_text here; none of our test strings needs fixing.
    return html.unescape(html.unescape(text)).strip()


def pretokenize(text: str) -> list[str]:
    text = whitespace_clean(basic_clean(text)).lower()
    return [
        "".join(BYTE_ENCODER[b] for b in tok.encode("utf-8")) for tok in CLIP_PAT.findall(text)
    ]


def word_symbols(tok: str) -> tuple[str, ...]:
    return tuple(tok[:-1]) + (tok[-1] + "</w>",)


def learn_merges(base_vocab: list[str], max_merges: int) -> list[tuple[str, str]]:
    """Plain BPE training (most frequent pair, ties broken lexicographically)."""
    words: Counter = Counter()
    for weight, texts in ((20, TARGET_TEXTS), (3, EXTRA_TEXTS)):
        for text in texts:
            for tok in pretokenize(text):
                words[word_symbols(tok)] += weight
    known = set(base_vocab)
    merges: list[tuple[str, str]] = []
    while len(merges) < max_merges:
        pairs: Counter = Counter()
        for word, freq in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += freq
        # Never create a token string twice (keeps vocab.json a bijection).
        cands = [(-c, p) for p, c in pairs.items() if p[0] + p[1] not in known]
        if not cands:
            break
        best = min(cands)[1]
        merges.append(best)
        known.add(best[0] + best[1])
        new_words: Counter = Counter()
        for word, freq in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new_words[tuple(out)] += freq
        words = new_words
    return merges


def build_clip_vocab() -> tuple[list[str], list[tuple[str, str]]]:
    base = list(BYTE_ENCODER.values())
    base = base + [v + "</w>" for v in base]
    merges = learn_merges(base, MAX_MERGES)
    vocab = base + ["".join(m) for m in merges] + [SOT, EOT]
    assert len(set(vocab)) == len(vocab), "duplicate vocab entries"
    return vocab, merges


class ReferenceClipBPE:
    """Independent re-implementation of OpenAI CLIP's simple_tokenizer (minus ftfy)."""

    def __init__(self, vocab: list[str], merges: list[tuple[str, str]]):
        self.encoder = {t: i for i, t in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.sot = self.encoder[SOT]
        self.eot = self.encoder[EOT]

    def bpe(self, token: str) -> list[str]:
        if token in (SOT, EOT):
            return [token]
        word = list(word_symbols(token))
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        return word

    def encode(self, text: str) -> list[int]:
        ids = [self.sot]
        for tok in pretokenize(text):
            ids.extend(self.encoder[t] for t in self.bpe(tok))
        return ids + [self.eot]

    def encode_padded(self, text: str, n: int) -> tuple[list[int], list[int]]:
        ids = self.encode(text)
        if len(ids) > n:
            ids = ids[: n - 1] + [self.eot]
        mask = [1] * len(ids) + [0] * (n - len(ids))
        return ids + [self.eot] * (n - len(ids)), mask


def make_tokenizer(workdir: Path):
    """Returns (hf_fast_tokenizer, vocab, merges, path_of_saved_tokenizer_json)."""
    vocab, merges = build_clip_vocab()
    src = workdir / "tok_src"
    src.mkdir()
    (src / "vocab.json").write_text(
        json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False), encoding="utf-8"
    )
    # CLIP's merges.txt starts with a version header line that loaders skip.
    (src / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8"
    )
    fast = transformers.CLIPTokenizerFast.from_pretrained(str(src))
    saved = workdir / "tok_saved"
    fast.save_pretrained(str(saved))
    # Reload from the saved tokenizer.json alone, as a user of the fixture would.
    only = workdir / "tok_json_only"
    only.mkdir()
    shutil.copy(saved / "tokenizer.json", only / "tokenizer.json")
    fast = transformers.CLIPTokenizerFast.from_pretrained(str(only))
    slow = None
    slow_cls = getattr(transformers, "CLIPTokenizer", None)
    if slow_cls is not None and slow_cls is not transformers.CLIPTokenizerFast:
        slow = slow_cls(vocab_file=str(src / "vocab.json"), merges_file=str(src / "merges.txt"))
    return fast, slow, vocab, merges, only / "tokenizer.json"


def tokenize_cases(fast, slow, vocab, merges, tokenizer_json: Path) -> dict:
    ref = ReferenceClipBPE(vocab, merges)
    raw = tokenizers.Tokenizer.from_file(str(tokenizer_json))
    cases = []
    for i, text in enumerate(MODEL_TEXTS + TOKENIZER_ONLY_TEXTS):
        ids = fast(text)["input_ids"]
        enc = fast(text, padding="max_length", max_length=CONTEXT_LENGTH, truncation=True)
        padded, mask = enc["input_ids"], enc["attention_mask"]
        ref_ids = ref.encode(text)
        ref_padded, ref_mask = ref.encode_padded(text, CONTEXT_LENGTH)
        raw_ids = raw.encode(text).ids
        assert ids == ref_ids, f"fast vs reference BPE mismatch for {text!r}:\n{ids}\n{ref_ids}"
        assert padded == ref_padded and mask == ref_mask, f"padded mismatch for {text!r}"
        assert raw_ids == ids, f"raw tokenizer.json vs transformers mismatch for {text!r}"
        if slow is not None:
            s = slow(text, padding="max_length", max_length=CONTEXT_LENGTH, truncation=True)
            assert slow(text)["input_ids"] == ids, f"slow vs fast mismatch for {text!r}"
            assert s["input_ids"] == padded and s["attention_mask"] == mask
        cases.append(
            {
                "text": text,
                "used_by_model": i < len(MODEL_TEXTS),
                "tokens": fast.convert_ids_to_tokens(ids),
                "ids": ids,
                "ids_padded_77": padded,
                "attention_mask_77": mask,
            }
        )
    return {
        "cases": cases,
        "checked_against": [
            "independent OpenAI simple_tokenizer re-implementation (ReferenceClipBPE, no ftfy)",
            "raw tokenizers.Tokenizer.from_file('tokenizer.json').encode(text).ids (no padding/truncation)",
        ]
        + (["transformers slow CLIPTokenizer"] if slow is not None else []),
    }


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


def build_model(vocab_size: int, act: str, bos: int, eos: int, pad: int, seed: int) -> CLIPModel:
    torch.manual_seed(seed)
    text_cfg = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=CONTEXT_LENGTH,
        hidden_act=act,
        layer_norm_eps=1e-5,
        projection_dim=24,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
    )
    vision_cfg = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_channels=3,
        image_size=32,
        patch_size=8,
        hidden_act=act,
        layer_norm_eps=1e-5,
        projection_dim=24,
    )
    cfg = CLIPConfig(text_config=text_cfg, vision_config=vision_cfg, projection_dim=24)
    model = CLIPModel(cfg).float()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if name == "logit_scale":
                p.add_(0.1 * noise)
            elif "norm" in name and name.endswith(".weight"):  # every LayerNorm weight (init 1)
                p.add_(0.1 * noise)
            elif name.endswith(".bias"):  # every bias (init 0)
                p.add_(0.05 * noise)
            elif "position_embedding" in name or "class_embedding" in name:
                p.add_(0.05 * noise)
            else:  # linear / conv / token-embedding weights
                p.add_(0.02 * noise)
    for name, p in model.named_parameters():
        assert p.dtype == torch.float32, name
        assert not torch.all(p == 0) and not torch.all(p == 1), name
    return model


def pixel_inputs(seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    img = torch.rand((3, 3, 32, 32), generator=gen, dtype=torch.float32)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    return ((img - mean) / std).contiguous()


def pooled(out) -> torch.Tensor:
    """transformers 5: BaseModelOutputWithPooling(pooler_output=projected); 4.x: the tensor."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


# ---- independent float64 reference forward (documents the exact math) ----------------------


def _ln(x, sd, prefix, eps):
    w, b = sd[prefix + ".weight"], sd[prefix + ".bias"]
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def _lin(x, sd, prefix, bias=True):
    y = x @ sd[prefix + ".weight"].T
    return y + sd[prefix + ".bias"] if bias else y


def _act(x, act):
    if act == "quick_gelu":
        return x * torch.sigmoid(1.702 * x)
    if act == "gelu":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    raise ValueError(act)


def _block(x, sd, prefix, heads, act, eps, mask):
    b, t, d = x.shape
    hd = d // heads
    h = _ln(x, sd, prefix + ".layer_norm1", eps)
    q, k, v = (
        _lin(h, sd, f"{prefix}.self_attn.{n}_proj").view(b, t, heads, hd).transpose(1, 2)
        for n in ("q", "k", "v")
    )
    s = (q @ k.transpose(-1, -2)) * hd**-0.5
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    o = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(b, t, d)
    x = x + _lin(o, sd, prefix + ".self_attn.out_proj")
    h = _ln(x, sd, prefix + ".layer_norm2", eps)
    return x + _lin(_act(_lin(h, sd, prefix + ".mlp.fc1"), act), sd, prefix + ".mlp.fc2")


def manual_vision(sd, cfg, pixel_values):
    vc = cfg["vision_config"]
    p, d = vc["patch_size"], vc["hidden_size"]
    x = pixel_values.double()
    b, c, hh, ww = x.shape
    g = hh // p
    # (B, C, g, p, g, p) -> (B, g, g, C, p, p): patch order row-major, features in (c, kh, kw) order
    patches = x.view(b, c, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(b, g * g, c * p * p)
    w = sd["vision_model.embeddings.patch_embedding.weight"].reshape(d, c * p * p)
    emb = patches @ w.T
    cls = sd["vision_model.embeddings.class_embedding"].expand(b, 1, d)
    h = torch.cat([cls, emb], 1) + sd["vision_model.embeddings.position_embedding.weight"]
    eps = vc["layer_norm_eps"]
    h = _ln(h, sd, "vision_model.pre_layrnorm", eps)
    hs = [h]
    for i in range(vc["num_hidden_layers"]):
        h = _block(h, sd, f"vision_model.encoder.layers.{i}", vc["num_attention_heads"], vc["hidden_act"], eps, None)
        hs.append(h)
    post = _ln(h, sd, "vision_model.post_layernorm", eps)
    proj = post @ sd["visual_projection.weight"].T
    return {"hidden_states": torch.stack(hs), "image_pooled": post[:, 0], "image_embeds": proj[:, 0], "tokens_proj": proj}


def manual_text(sd, cfg, input_ids, attention_mask=None):
    tc = cfg["text_config"]
    b, t = input_ids.shape
    h = sd["text_model.embeddings.token_embedding.weight"][input_ids] + sd[
        "text_model.embeddings.position_embedding.weight"
    ][:t]
    mask = torch.tril(torch.ones(t, t, dtype=torch.bool)).expand(b, 1, t, t)
    if attention_mask is not None:
        mask = mask & attention_mask.bool()[:, None, None, :]
    eps = tc["layer_norm_eps"]
    for i in range(tc["num_hidden_layers"]):
        h = _block(h, sd, f"text_model.encoder.layers.{i}", tc["num_attention_heads"], tc["hidden_act"], eps, mask)
    h = _ln(h, sd, "text_model.final_layer_norm", eps)
    if tc["eos_token_id"] == 2:
        eot = input_ids.argmax(-1)
    else:
        eot = (input_ids == tc["eos_token_id"]).int().argmax(-1)
    pooled_ = h[torch.arange(b), eot]
    return {"text_pooled": pooled_, "text_embeds": pooled_ @ sd["text_projection.weight"].T, "eot": eot}


# --------------------------------------------------------------------------------------------


def write_fixture(out_dir: Path, name: str, act: str, legacy_eos: bool, seed: int, tok, tok_json: Path, tok_info: dict):
    fast = tok
    sot_id = fast.convert_tokens_to_ids(SOT)
    eot_id = fast.convert_tokens_to_ids(EOT)
    pad_id = fast.pad_token_id
    vocab_size = len(fast.get_vocab())
    if legacy_eos:
        # Values of openai/clip-vit-*-patch* text configs (pre transformers PR #24773).
        bos_cfg, eos_cfg, pad_cfg = 0, 2, 1
    else:
        bos_cfg, eos_cfg, pad_cfg = sot_id, eot_id, pad_id

    d = out_dir / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)

    model = build_model(vocab_size, act, bos_cfg, eos_cfg, pad_cfg, seed)
    model.save_pretrained(str(d))
    for f in d.iterdir():
        if f.name not in ("config.json", "model.safetensors"):
            f.unlink() if f.is_file() else shutil.rmtree(f)
    shutil.copy(tok_json, d / "tokenizer.json")

    # Reference outputs come from the checkpoint as written on disk.
    model = CLIPModel.from_pretrained(str(d), attn_implementation="eager").float().eval()
    cfg = json.loads((d / "config.json").read_text())
    sd = load_file(str(d / "model.safetensors"))
    assert set(sd) == {k for k, _ in model.named_parameters()}, "unexpected tensor names"

    pixel_values = pixel_inputs(seed + 2)
    enc = fast(MODEL_TEXTS, padding="max_length", max_length=CONTEXT_LENGTH, truncation=True, return_tensors="pt")
    input_ids = enc["input_ids"].to(torch.int64)
    attention_mask = enc["attention_mask"].to(torch.int64)

    with torch.no_grad():
        image_embeds = pooled(model.get_image_features(pixel_values=pixel_values))
        vout = model.vision_model(pixel_values=pixel_values, output_hidden_states=True)
        hidden = torch.stack(list(vout.hidden_states))
        L = model.config.vision_config.num_hidden_layers
        assert hidden.shape[0] == L + 1
        torch.testing.assert_close(hidden[-1], vout.last_hidden_state, rtol=0, atol=0)
        tokens_proj = model.visual_projection(model.vision_model.post_layernorm(vout.last_hidden_state))
        text_embeds = pooled(model.get_text_features(input_ids=input_ids, attention_mask=attention_mask))
        text_embeds_nomask = pooled(model.get_text_features(input_ids=input_ids))
        tout = model.text_model(input_ids=input_ids, attention_mask=attention_mask)
        # SDPA (transformers' default attention) for comparison only.
        sdpa = CLIPModel.from_pretrained(str(d), attn_implementation="sdpa").float().eval()
        text_sdpa = pooled(sdpa.get_text_features(input_ids=input_ids, attention_mask=attention_mask))
        image_sdpa = pooled(sdpa.get_image_features(pixel_values=pixel_values))

    if legacy_eos:
        eot_positions = input_ids.to(torch.int).argmax(-1).to(torch.int64)
        eot_rule = "config text eos_token_id == 2 (legacy): eot = argmax(input_ids, dim=-1) (first maximum)"
    else:
        eot_positions = (input_ids == eos_cfg).int().argmax(-1).to(torch.int64)
        eot_rule = f"config text eos_token_id == {eos_cfg}: eot = first index with input_ids == {eos_cfg}"

    expected = {
        "pixel_values": pixel_values,
        "image_embeds": image_embeds,
        "image_pooled": vout.pooler_output,
        "vision_hidden_l2": hidden[L - 2],
        "vision_hidden_states": hidden,
        "vision_tokens_proj": tokens_proj,
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "text_embeds": text_embeds,
        "text_embeds_nomask": text_embeds_nomask,
        "text_pooled": tout.pooler_output,
        "eot_positions": eot_positions,
    }
    expected = {k: v.detach().contiguous().clone() for k, v in expected.items()}
    assert set(expected) == set(TENSOR_DOC)
    for k, v in expected.items():
        want = torch.int64 if k in ("input_ids", "attention_mask", "eot_positions") else torch.float32
        assert v.dtype == want, (k, v.dtype)

    # ---- self-checks ----
    checks = {}
    sd64 = {k: v.double() for k, v in sd.items()}
    mv = manual_vision(sd64, cfg, pixel_values)
    mt = manual_text(sd64, cfg, input_ids, attention_mask)
    mt_nomask = manual_text(sd64, cfg, input_ids, None)
    assert torch.equal(mt["eot"], eot_positions)

    def diff(a, b):
        return float((a.double() - b.double()).abs().max())

    checks["hf_fp32_vs_manual_fp64"] = {
        "image_embeds": diff(image_embeds, mv["image_embeds"]),
        "image_pooled": diff(vout.pooler_output, mv["image_pooled"]),
        "vision_hidden_states": diff(hidden, mv["hidden_states"]),
        "vision_tokens_proj": diff(tokens_proj, mv["tokens_proj"]),
        "text_embeds": diff(text_embeds, mt["text_embeds"]),
        "text_embeds_nomask": diff(text_embeds_nomask, mt_nomask["text_embeds"]),
        "text_pooled": diff(tout.pooler_output, mt["text_pooled"]),
    }
    checks["text_embeds_vs_nomask"] = diff(text_embeds, text_embeds_nomask)
    checks["eager_vs_sdpa"] = {"text_embeds": diff(text_embeds, text_sdpa), "image_embeds": diff(image_embeds, image_sdpa)}
    checks["tokens_proj_cls_vs_image_embeds"] = diff(tokens_proj[:, 0], image_embeds)
    for k, v in checks["hf_fp32_vs_manual_fp64"].items():
        assert v < 1e-5, f"{name}: HF vs manual mismatch on {k}: {v}"
    assert checks["text_embeds_vs_nomask"] < 1e-6, checks
    assert checks["tokens_proj_cls_vs_image_embeds"] < 1e-6, checks

    save_file(expected, str(d / "expected.safetensors"), metadata={"generator": "tools/make_clip_fixture.py"})

    info = {
        "fixture": name,
        "description": (
            f"tiny random CLIPModel, hidden_act={act!r} in both towers, text eos_token_id={eos_cfg} "
            + ("(legacy argmax pooling)" if legacy_eos else "(first-eos pooling)")
        ),
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__,
            "numpy": np.__version__,
        },
        "seed": seed,
        "model": {
            "vision": "hidden 32, 4 layers, 4 heads, intermediate 64, patch 8, image 32 (16 patches + CLS = 17 tokens)",
            "text": "hidden 32, 3 layers, 4 heads, intermediate 64, max_position_embeddings 77",
            "projection_dim": 24,
            "layer_norm_eps": 1e-5,
            "hidden_act": act,
            "activation_formula": "x * sigmoid(1.702 * x)" if act == "quick_gelu" else "0.5 * x * (1 + erf(x / sqrt(2)))  (exact, not tanh)",
            "weights_dtype": "float32",
            "attn_implementation_for_reference": "eager (sdpa differences recorded in checks)",
        },
        "tokenizer": {
            "vocab_size": vocab_size,
            "num_merges": vocab_size - 512 - 2,
            "bos_id (<|startoftext|>)": sot_id,
            "eos_id (<|endoftext|>)": eot_id,
            "pad_id (pad_token = <|endoftext|>)": pad_id,
            "unk_token": fast.unk_token,
            "context_length": CONTEXT_LENGTH,
            "padding": "right, to max_length=77, with pad id; attention_mask 0 on padding",
            "truncation": "to 77 incl. specials: first 75 content tokens + <|startoftext|> ... <|endoftext|>",
            "tokenizer_json_note": (
                "tokenizer.json has padding=null and truncation=null (transformers applies them per call): "
                "a raw tokenizers::Tokenizer must enable truncation(max_length=77) and fixed padding to 77 "
                "with pad_id=<|endoftext|> id itself to reproduce ids_padded_77/attention_mask_77"
            ),
            **tok_info,
        },
        "config_special_ids": {"text_config.bos_token_id": bos_cfg, "text_config.eos_token_id": eos_cfg, "text_config.pad_token_id": pad_cfg},
        "eot_rule": eot_rule,
        "eot_positions": eot_positions.tolist(),
        "model_texts": MODEL_TEXTS,
        "vision_hidden_l2_index": f"hidden_states[{L - 2}] of {L + 1} (L={L})",
        "tensors": TENSOR_DOC,
        "checks_max_abs_diff": checks,
        "tolerance_for_rust": 1e-4,
    }
    text = json.dumps(info, indent=1, ensure_ascii=False)
    # Keep integer lists (ids, masks) on one line.
    text = regex.sub(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]", lambda m: "[" + regex.sub(r"\s+", "", m.group(1)) + "]", text)
    assert json.loads(text) == json.loads(json.dumps(info))
    (d / "expected.json").write_text(text + "\n", encoding="utf-8")

    print(f"== {name}: act={act} eos_token_id={eos_cfg} vocab={vocab_size}")
    for k, v in expected.items():
        vv = v.double()
        print(f"   {k:22s} {str(tuple(v.shape)):16s} {str(v.dtype):14s} max|v|={float(vv.abs().max()):9.4f} std={float(vv.std()):8.4f}")
    big = max(((n, float(p.abs().max())) for n, p in sd.items()), key=lambda x: x[1])
    print(f"   largest weight: {big[0]} max|w|={big[1]:.4f}")
    print(f"   checks: {json.dumps(checks)}")
    for f in sorted(d.iterdir()):
        print(f"   {f.name:22s} {f.stat().st_size:8d} bytes")


def generate(out_dir: Path) -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    with tempfile.TemporaryDirectory() as tmp:
        fast, slow, vocab, merges, tok_json = make_tokenizer(Path(tmp))
        tok_info = tokenize_cases(fast, slow, vocab, merges, tok_json)
        for t in TARGET_TEXTS:
            toks = fast.tokenize(t)
            assert len(toks) == len(t.split()), f"target {t!r} not merged into whole words: {toks}"
        write_fixture(out_dir, "clip-tiny-quick-gelu", "quick_gelu", True, 1234, fast, tok_json, tok_info)
        write_fixture(out_dir, "clip-tiny-gelu", "gelu", False, 5678, fast, tok_json, tok_info)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and diff against --out")
    args = ap.parse_args()
    if not args.check:
        generate(args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        bad = []
        for name in ("clip-tiny-quick-gelu", "clip-tiny-gelu"):
            for f in ("config.json", "model.safetensors", "tokenizer.json", "expected.safetensors"):
                a, b = Path(tmp) / name / f, args.out / name / f
                if not b.exists() or a.read_bytes() != b.read_bytes():
                    bad.append(f"{name}/{f}")
        print("identical" if not bad else f"DIFFERENT: {bad}")
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
