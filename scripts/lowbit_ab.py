#!/usr/bin/env python3
"""A/B table of scripts/lowbit_ab.sh: per (format, shape, batch) the fastest tiling's median of each build,
the better of the rounds, and new / base."""
import csv
import glob
import sys

out = sys.argv[1]
best = {}
for build in ["base", "new"]:
    for path in sorted(glob.glob(f"{out}/{build}.r*.csv")):
        for r in csv.DictReader(open(path)):
            if r["selected"] != "true":
                continue
            key = (r["format"], int(r["k"]), int(r["n"]), int(r["batch"]))
            us = float(r["median_us"])
            if (build, key) not in best or us < best[(build, key)][0]:
                best[(build, key)] = (us, r["variant"])
print("| format | k x n | batch | base us (tiling) | new us (tiling) | new / base |")
print("|---|---|---:|---:|---:|---:|")
keys = sorted({k for (_, k) in best}, key=lambda k: (k[3], k[1] * k[2], k[0]))
ratios = []
for key in keys:
    b, n = best.get(("base", key)), best.get(("new", key))
    if b and n:
        ratios.append(n[0] / b[0])
        print(f"| {key[0]} | {key[1]}x{key[2]} | {key[3]} | {b[0]:.2f} ({b[1]}) | {n[0]:.2f} ({n[1]}) | {n[0] / b[0]:.3f} |")
if ratios:
    print(f"\nnew / base over {len(ratios)} cases: {min(ratios):.3f} to {max(ratios):.3f}")
