#!/usr/bin/env python3
"""A/B table of scripts/lowbit_ab.sh: per (format, shape, batch) the fastest tiling's median of each build,
the better of the rounds, and new / base. Where the new build measures tilings the base build does not
have, a second column restricts it to the base's tilings (the change to the kernel alone)."""
import csv
import glob
import sys

out = sys.argv[1]
# (build, case) -> {tiling: best median over the rounds}
times = {}
for build in ["base", "new"]:
    for path in sorted(glob.glob(f"{out}/{build}.r*.csv")):
        for r in csv.DictReader(open(path)):
            if r["variant"] == "read":
                continue
            key = (r["format"], int(r["k"]), int(r["n"]), int(r["batch"]))
            t = times.setdefault((build, key), {})
            us = float(r["median_us"])
            t[r["variant"]] = min(us, t.get(r["variant"], us))


def fastest(t, only=None):
    return min((us, v) for v, us in t.items() if only is None or v in only)


keys = sorted({k for (_, k) in times}, key=lambda k: (k[3], k[1] * k[2], k[0]))
extra = any(set(times.get(("new", k), {})) - set(times.get(("base", k), {})) for k in keys)
head = "| format | k x n | batch | base us (tiling) | new us (tiling) | new / base |"
rule = "|---|---|---:|---:|---:|---:|"
if extra:
    head += " new, base's tilings only / base |"
    rule += "---:|"
print(head)
print(rule)
ratios, same = [], []
for key in keys:
    b, n = times.get(("base", key)), times.get(("new", key))
    if not (b and n):
        continue
    fb, fn = fastest(b), fastest(n)
    ratios.append(fn[0] / fb[0])
    line = f"| {key[0]} | {key[1]}x{key[2]} | {key[3]} | {fb[0]:.2f} ({fb[1]}) | {fn[0]:.2f} ({fn[1]}) | {fn[0] / fb[0]:.3f} |"
    if extra:
        common = set(b) & set(n)
        if common:
            s = fastest(n, common)[0] / fb[0]
            same.append(s)
            line += f" {s:.3f} |"
        else:
            line += " - |"
    print(line)
if ratios:
    print(f"\nnew / base over {len(ratios)} cases: {min(ratios):.3f} to {max(ratios):.3f}")
if same:
    print(f"new on the base's tilings only / base: {min(same):.3f} to {max(same):.3f}")
