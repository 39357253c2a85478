"""The arithmetic of tools/arm-cycles.sh (python3, standard library only).

    python3 tools/arm_cycles.py symtab XRVLM OUT
        OUT: a copy of the aarch64 binary whose assembly kernels are functions in its symbol
        table (same code, byte for byte), so that a64-cycles can name them (see `symtab`).
    python3 tools/arm_cycles.py sym-runs LOGS F1 F2 "WORDS"
        the `--sym` substrings that cover every int8 product function the int8 run executed.
    python3 tools/arm_cycles.py table LOGS F1 F2 "WORDS" "PRECISIONS"
        the report, from the a64-cycles reports in LOGS (TAG.cycles, TAG.status, TAG.err).
"""
import os
import re
import struct
import subprocess
import sys


def symtab(src, dst):
    """Copy the ELF binary `src` to `dst` with its global, untyped, size-0 symbols in executable
    sections (tract's hand-written arm64 kernels: `arm64simd_mmm_i32_8x8_dot_0_23_9`, ...) made
    functions that run up to the next function. qemu 7.2's symbol lookup keeps only STT_FUNC
    symbols with their sizes, so without this a64-cycles counts those kernels as `?`."""
    data = bytearray(open(src, "rb").read())
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "a 64-bit little-endian ELF"
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + k * shentsize) for k in range(shnum)]
    executable = {k for k, s in enumerate(sections) if s[2] & 0x4}
    sym = next(s for s in sections if s[1] == 2)  # SHT_SYMTAB
    strtab = sections[sym[6]]
    count, base = sym[5] // 24, sym[4]

    def name(off):
        start = strtab[4] + off
        return bytes(data[start:data.index(0, start)]).decode(errors="replace")

    starts, kernels = set(), []
    for k in range(count):
        st_name, info, _other, shndx, value, size = struct.unpack_from("<IBBHQQ", data, base + 24 * k)
        kind, bind = info & 0xF, info >> 4
        if shndx not in executable:
            continue
        if kind == 2:  # STT_FUNC
            starts.add(value)
        elif kind == 0 and bind in (1, 2) and size == 0 and not name(st_name).startswith(("$", ".")):
            starts.add(value)
            kernels.append((k, value, info, shndx))
    starts = sorted(starts)
    for k, value, info, shndx in kernels:
        sec = sections[shndx]
        end = sec[3] + sec[5]
        later = [a for a in starts[bisect(starts, value):] if a > value]
        size = min(later[0], end) if later else end
        struct.pack_into("<B", data, base + 24 * k + 4, (info & 0xF0) | 2)
        struct.pack_into("<Q", data, base + 24 * k + 16, size - value)
    open(dst, "wb").write(data)
    os.chmod(dst, 0o755)
    print(f"{len(kernels)} assembly kernels named as functions")


def bisect(xs, x):
    lo, hi = 0, len(xs)
    while lo < hi:
        mid = (lo + hi) // 2
        if xs[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


ESCAPES = (("$LT$", "<"), ("$GT$", ">"), ("$RF$", "&"), ("$BP$", "*"), ("$C$", ","),
           ("$SP$", "@"), ("$u20$", " "), ("$u27$", "'"), ("$u3b$", ";"), ("$u5b$", "["),
           ("$u5d$", "]"), ("$u7b$", "{"), ("$u7d$", "}"), ("$u7e$", "~"), ("$LP$", "("),
           ("$RP$", ")"))


def demangle(raw):
    """Rust's legacy mangling (`_ZN...17h<hash>E`), enough to read and match a path; a name cut
    short by a64-cycles ends in `…`. Other names are returned as they are."""
    if not raw.startswith("_ZN"):
        return raw
    s, i, parts = raw[3:], 0, []
    while i < len(s) and s[i].isdigit():
        j = i
        while j < len(s) and s[j].isdigit():
            j += 1
        n = int(s[i:j])
        part = s[j:j + n]
        i = j + n
        if re.fullmatch(r"h[0-9a-f]{16}", part):
            break
        cut = len(part) < n
        if part.startswith("_$"):
            part = part[1:]
        for code, ch in ESCAPES:
            part = part.replace(code, ch)
        parts.append(part.replace("..", "::") + ("…" if cut else ""))
        if cut:
            break
    if i < len(s) and s[i] != "E":  # not Rust's: a C++ name (libunwind's), for c++filt
        return cxx_demangle(raw)
    return "::".join(parts)


def cxx_demangle(raw):
    try:
        out = subprocess.run(["c++filt", raw], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return raw
    return out if len(out) <= 120 else out[:119] + "…"


def mangled(word):
    """The substring a path `a::b` is in a legacy-mangled symbol (`1a1b`); other words as is."""
    return "".join(f"{len(p)}{p}" for p in word.split("::")) if "::" in word else word


def is_product(name, words):
    d = demangle(name)
    return any(w in d or w in name for w in words)


def read_report(path):
    """One a64-cycles report: instructions, classes, pipes, per-function rows, mnemonics."""
    r = {"classes": {}, "syms": {}, "ops": {}}
    for line in open(path, errors="replace"):
        if line.startswith("a64mix "):  # the report's prefix in the file a64-cycles --out writes
            line = line[len("a64mix "):]
        f = line.split()
        if not f:
            continue
        if f[0] == "total_insns":
            r["insns"] = int(f[1])
        elif f[0] == "class":  # class NAME... COUNT PCT%
            r["classes"][" ".join(f[1:-2])] = int(f[-2])
        elif f[0] == "a76_bound_cycles":
            r["bound"] = float(f[1])
        elif f[0] == "additive_cycles":
            r["additive"] = float(f[1])
        elif f[0] == "sym":  # sym CYCLES cycles PCT% INSNS insns NAME (cut at 120 characters)
            name = line.split(" insns ", 1)[1].strip()
            c, n = r["syms"].get(name, (0.0, 0))
            r["syms"][name] = (c + float(f[1]), n + int(f[4]))
        elif f[0] == "op":
            r["ops"][f[1]] = int(f[2])
    r["pipes"] = pipes(r["classes"], r["insns"])
    # The report prints 4 digits; the pipes are recomputed from the exact counts.
    assert abs(max(r["pipes"].values()) - r["bound"]) <= 1e-3 * r["bound"] + 1, path
    return r


def pipes(classes, insns):
    """Cycles each Cortex-A76 resource needs for these instruction counts, as a64mix.c prices
    them: two ASIMD pipes (integer MLA/SMLAL on one only), two load pipes, one store pipe,
    4-wide decode. Its a76_bound_cycles is the largest."""
    asimd = 0.0
    for name, n in classes.items():
        if name in ("load", "store", "scalar/other"):
            continue
        asimd += n * (1.0 if name == "mla/smlal (int)" else 0.5)
    return {"asimd": asimd, "load": 0.5 * classes["load"], "store": 1.0 * classes["store"],
            "decode": insns / 4.0}


class Logs:
    def __init__(self, d):
        self.d = d

    def ok(self, tag):
        p = os.path.join(self.d, tag + ".status")
        return os.path.exists(p) and open(p).read().strip() == "0"

    def report(self, tag):
        return read_report(os.path.join(self.d, tag + ".cycles"))

    def why(self, tag):
        """The program's last line on stderr (its error), for a run that failed."""
        p = os.path.join(self.d, tag + ".err")
        lines = [l.strip() for l in open(p, errors="replace") if l.strip()] if os.path.exists(p) else []
        return lines[-1] if lines else "failed (no message)"


def split(a, b, frames, f1):
    """Per pipe: one frame = (b - a) / frames, and the set-up = a less its f1 frames."""
    frame = {k: (b["pipes"][k] - a["pipes"][k]) / frames for k in a["pipes"]}
    setup = {k: a["pipes"][k] - f1 * frame[k] for k in a["pipes"]}
    return frame, setup


def busiest(pipes):
    k = max(pipes, key=pipes.get)
    return pipes[k], k


def e(x):
    return f"{x:.3e}"


def sym_runs(logs, f1, words):
    r = logs.report(f"int8-{f1}")
    seen = set()
    for k, w in enumerate(words):
        hits = {n for n, (c, _) in r["syms"].items() if c > 0 and is_product(n, [w])} - seen
        if hits:
            print(f"{k} {mangled(w)}")
            seen |= hits


def table(logs, f1, f2, words, precisions):
    frames = f2 - f1
    runs, refused = {}, {}
    for p in precisions:
        if logs.ok(f"{p}-{f1}") and logs.ok(f"{p}-{f2}"):
            runs[p] = (logs.report(f"{p}-{f1}"), logs.report(f"{p}-{f2}"))
        else:
            refused[p] = logs.why(f"{p}-{f1}" if not logs.ok(f"{p}-{f1}") else f"{p}-{f2}")

    print()
    print(f"## One frame: (cycles of {f2} frames - cycles of {f1}) / {frames}, per A76 pipe; the busiest pipe is the figure")
    print()
    print(f"| precision | A76 cycles / frame | busiest pipe | instructions / frame | fp32 / this | set-up cycles ({f1}-frame run less its frame) |")
    print("|---|---:|---|---:|---:|---:|")
    cycles = {}
    for p in precisions:
        if p in refused:
            print(f"| {p} | refused | | | | {refused[p].replace('|', '/')} |")
            continue
        a, b = runs[p]
        frame, setup = split(a, b, frames, f1)
        cycles[p], pipe = busiest(frame)
        insns = (b["insns"] - a["insns"]) / frames
        vs = f"{cycles['fp32'] / cycles[p]:.2f}" if "fp32" in cycles else ""
        print(f"| {p} | {e(cycles[p])} | {pipe} | {e(insns)} | {vs} | {e(busiest(setup)[0])} |")
    print()
    if "int8" in cycles and "fp32" in cycles:
        x = cycles["fp32"] / cycles["int8"]
        how = f"**{x:.2f}x fewer**" if x >= 1 else f"**{1 / x:.2f}x more**"
        print(f"int8 vs fp32: fp32 / int8 = {x:.2f}; an int8 frame takes {how} modelled A76 cycles than an "
              f"fp32 frame ({e(cycles['int8'])} vs {e(cycles['fp32'])})" + ("." if x >= 1 else ": int8 is the slower."))
    else:
        print("int8 vs fp32: not available (a run failed).")

    if runs:
        print()
        print("One frame by instruction class (a64-cycles' classes, counts per frame):")
        print()
        print("| class | " + " | ".join(runs) + " |")
        print("|---|" + "---:|" * len(runs))
        for c in next(iter(runs.values()))[0]["classes"]:
            print(f"| {c} | " + " | ".join(e((b["classes"][c] - a["classes"][c]) / frames) for a, b in runs.values()) + " |")

    if "int8" not in runs:
        return 1
    a, b = runs["int8"]
    rows = {}
    for n in set(a["syms"]) | set(b["syms"]):
        rows[n] = (b["syms"].get(n, (0.0, 0))[0] - a["syms"].get(n, (0.0, 0))[0]) / frames
    total = (b["additive"] - a["additive"]) / frames
    prod = sum(c for n, c in rows.items() if is_product(n, words))
    ran = sorted({demangle(n) for n, c in rows.items() if is_product(n, words) and c > 0})
    print()
    print(f"## The int8 frame outside the int8 products (functions whose name contains: {', '.join(words)})")
    print()
    print(f"Additive cycles of one int8 frame (a64-cycles' per-function table, summed): {e(total)}; "
          f"in the products {e(prod)} ({100 * prod / total:.1f} %), outside them {e(total - prod)}: "
          f"**{100 * (total - prod) / total:.1f} %** of the frame.")
    print("Product functions that ran: " + (", ".join(f"`{n}`" for n in ran) if ran else "none"))
    print()
    print("The 15 costliest functions of one int8 frame (share of its additive cycles; P: an int8 product):")
    print()
    print("| # | cycles / frame | share | | function |")
    print("|---:|---:|---:|---|---|")
    top = sorted(rows.items(), key=lambda kv: -kv[1])[:15]
    shown = [demangle(n) for n, _ in top]
    for k, ((n, c), d) in enumerate(zip(top, shown), 1):
        h = re.search(r"17h([0-9a-f]{16})E", n)
        if shown.count(d) > 1 and h:  # two instances of one generic function: their hashes apart
            d += f" (h{h.group(1)[:8]})"
        print(f"| {k} | {e(c)} | {100 * c / total:.1f} % | {'P' if is_product(n, words) else ''} | `{d}` |")

    print()
    print(f"## Integer MLA/SMLAL inside the int8 products (a64-cycles --sym, the int8 run of {f1} frame(s))")
    print()
    tags = sorted(f[:-len(".cycles")] for f in os.listdir(logs.d) if re.fullmatch(rf"int8-sym\d+-{f1}\.cycles", f))
    if not tags:
        print("No product function ran: nothing to look inside.")
    mla = 0
    for tag in tags:
        if not logs.ok(tag):
            print(f"- {tag}: failed: {logs.why(tag)}")
            mla = None
            continue
        r = logs.report(tag)
        sub = open(os.path.join(logs.d, tag + ".sym")).read().strip()
        n = r["classes"].get("mla/smlal (int)", 0)
        mla = None if mla is None else mla + n
        top = ", ".join(f"{o} {c}" for o, c in sorted(r["ops"].items(), key=lambda kv: -kv[1])[:6])
        print(f"- `--sym {sub}`: {r['insns']} instructions, sdot/udot {r['classes'].get('sdot/udot', 0)}, "
              f"mla/smlal (int) **{n}**; most executed: {top}")
    if tags:
        print()
        verdict = ("unknown (a run failed)" if mla is None else
                   "**yes**: the SDOT kernel was not (always) chosen" if mla else "none")
        print(f"SMLAL/MLA executed inside the int8 products: {verdict}")

    print()
    print(f"## Load time (int8): the set-up of the {f1}-frame run (bundle verification, plan, the first frame's extra)")
    print()
    if not (logs.ok(f"int8-bt-{f1}") and logs.ok(f"int8-bt-{f2}")):
        print("The RUST_BACKTRACE=1 runs failed: " + logs.why(f"int8-bt-{f1}"))
        return 0 if "fp32" in cycles else 1
    print("| environment | set-up A76 cycles | busiest pipe | set-up instructions | cycles / frame |")
    print("|---|---:|---|---:|---:|")
    setups, costliest = [], []
    for label, (ra, rb) in (("RUST_BACKTRACE unset", (a, b)),
                            ("RUST_BACKTRACE=1", (logs.report(f"int8-bt-{f1}"), logs.report(f"int8-bt-{f2}")))):
        frame, setup = split(ra, rb, frames, f1)
        s, pipe = busiest(setup)
        setups.append(s)
        insns = ra["insns"] - f1 * (rb["insns"] - ra["insns"]) / frames
        print(f"| {label} | {e(s)} | {pipe} | {e(insns)} | {e(busiest(frame)[0])} |")
        # Per function, the same split: its cycles in the short run less its share of f1 frames.
        per = {}
        for n in set(ra["syms"]) | set(rb["syms"]):
            ca, cb = ra["syms"].get(n, (0.0, 0))[0], rb["syms"].get(n, (0.0, 0))[0]
            per[n] = ca - f1 * (cb - ca) / frames
        add = ra["additive"] - f1 * (rb["additive"] - ra["additive"]) / frames
        costliest.append((label, add, sorted(per.items(), key=lambda kv: -kv[1])[:5]))
    print()
    print(f"Set-up with RUST_BACKTRACE=1 / without: **{setups[1] / setups[0]:.2f}x**")
    for label, add, top in costliest:
        print()
        print(f"The set-up's 5 costliest functions, {label} (share of its {e(add)} additive cycles):")
        print()
        for n, c in top:
            print(f"- {e(c)} ({100 * c / add:.1f} %) `{demangle(n)}`")
    return 0 if "fp32" in cycles else 1


def main(argv):
    cmd = argv[1]
    if cmd == "symtab":
        symtab(argv[2], argv[3])
        return 0
    logs, f1, f2, words = Logs(argv[2]), int(argv[3]), int(argv[4]), argv[5].split()
    if cmd == "sym-runs":
        sym_runs(logs, f1, words)
        return 0
    if cmd == "table":
        return table(logs, f1, f2, words, argv[6].split())
    raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
