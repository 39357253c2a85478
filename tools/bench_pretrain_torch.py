#!/usr/bin/env python3
"""PyTorch anchor for the supervised pre-training step (dev only; PyTorch is never the product's).

Builds the same ModifiedResNet image tower as `xrvlm-train pretrain-vision` from the same sizes
(`--image-size --width --layers --heads --embed-dim`, or an `open_clip_config.json`), the same
species and attribute heads (class counts from a synth directory's species.json), the same loss
and AdamW, and times one optimiser step on one random batch, after two untimed steps.

Prints one JSON line with the same keys as `xrvlm-train pretrain-vision --bench-steps`.
    python3 tools/bench_pretrain_torch.py --data out/ceil/train110 --batch 128 --threads 2 --steps 10
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBn(nn.Module):
    def __init__(self, cin, cout, k, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> avg-pool(stride) -> 1x1, plus a pooled 1x1 projection of the input."""

    def __init__(self, inplanes, planes, stride):
        super().__init__()
        out = planes * 4
        self.a, self.b, self.c = ConvBn(inplanes, planes, 1), ConvBn(planes, planes, 3), ConvBn(planes, out, 1)
        self.stride = stride
        self.down = ConvBn(inplanes, out, 1) if stride > 1 or inplanes != out else None

    def pool(self, x):
        return F.avg_pool2d(x, self.stride) if self.stride > 1 else x

    def forward(self, x):
        h = F.relu(self.a(x))
        h = self.pool(F.relu(self.b(h)))
        h = self.c(h)
        idn = self.down(self.pool(x)) if self.down is not None else x
        return F.relu(h + idn)


class Tower(nn.Module):
    def __init__(self, image_size, layers, width, heads, embed_dim):
        super().__init__()
        half = width // 2
        self.stem = nn.ModuleList([ConvBn(3, half, 3, 2), ConvBn(half, half, 3), ConvBn(half, width, 3)])
        blocks, inplanes = [], width
        for stage, n in enumerate(layers):
            planes = width << stage
            for i in range(n):
                blocks.append(Bottleneck(inplanes, planes, 2 if stage > 0 and i == 0 else 1))
                inplanes = planes * 4
        self.blocks = nn.Sequential(*blocks)
        c, grid = width * 32, image_size // 32
        self.pos = nn.Parameter(torch.randn(grid * grid + 1, c) / c ** 0.5)
        self.q, self.k, self.v = nn.Linear(c, c), nn.Linear(c, c), nn.Linear(c, c)
        self.c = nn.Linear(c, embed_dim)
        self.heads = heads

    def forward(self, x):
        for s in self.stem:
            x = F.relu(s(x))
        x = self.blocks(F.avg_pool2d(x, 2))
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        t = torch.cat([t.mean(1, keepdim=True), t], 1) + self.pos
        hd = c // self.heads
        q = self.q(t[:, :1]).view(b, 1, self.heads, hd).transpose(1, 2) * hd ** -0.5
        k = self.k(t).view(b, -1, self.heads, hd).transpose(1, 2)
        v = self.v(t).view(b, -1, self.heads, hd).transpose(1, 2)
        a = (q @ k.transpose(-1, -2)).softmax(-1)
        return self.c((a @ v).transpose(1, 2).reshape(b, c))


def class_counts(data):
    with open(f"{data}/species.json") as f:
        species = json.load(f)["species"]
    attrs = {}
    for s in species:
        for k, v in s.get("attributes", {}).items():
            attrs.setdefault(k, set()).add(json.dumps(v))
    return len(species) + 1, [len(v) for _, v in sorted(attrs.items())]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--layers", default="1,1,1,1")
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--embed-dim", type=int, default=128)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    layers = [int(x) for x in a.layers.split(",")]
    tower = Tower(a.image_size, layers, a.width, a.heads, a.embed_dim)
    n_species, n_attrs = class_counts(a.data)
    species_head = nn.Linear(a.embed_dim, n_species)
    attr_heads = nn.ModuleList([nn.Linear(a.embed_dim, n) for n in n_attrs])
    params = list(tower.parameters()) + list(species_head.parameters()) + list(attr_heads.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05)
    x = torch.randn(a.batch, 3, a.image_size, a.image_size)
    y = torch.randint(0, n_species, (a.batch,))
    ya = [torch.randint(0, n, (a.batch,)) for n in n_attrs]
    times = []
    for i in range(a.steps + 2):
        t0 = time.perf_counter()
        feat = tower(x)
        loss = F.cross_entropy(species_head(feat), y)
        attr = sum(F.cross_entropy(h(feat), t) for h, t in zip(attr_heads, ya)) / max(len(n_attrs), 1)
        loss = loss + attr
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    print(json.dumps({
        "impl": f"pytorch {torch.__version__}",
        "batch": a.batch,
        "threads": torch.get_num_threads(),
        "step_seconds_min": times[0],
        "step_seconds_median": median,
        "frames_per_second": a.batch / median,
    }))


if __name__ == "__main__":
    main()
