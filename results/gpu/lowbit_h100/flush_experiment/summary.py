#!/usr/bin/env python3
"""Table of the flush experiment (run.sh): per format and shape, our selected tiling's median and
cuBLAS fp16's under each flush, the speedups, and the Nsight Compute cold-cache times."""
import csv
import re
import statistics
import sys

out = sys.argv[1]
modes = ["write", "read", "none"]
ours, peers = {}, {}
for m in modes:
    for r in csv.DictReader(open(f"{out}/{m}.ours.csv")):
        if r["selected"] == "true":
            ours[(m, r["format"], r["k"], r["n"])] = (float(r["median_us"]), r["variant"])
    for r in csv.DictReader(open(f"{out}/{m}.peers.csv")):
        if r["peer"] == "cublas_fp16" and r["batch"] == "1":
            peers[(m, r["k"], r["n"])] = float(r["median_us"])
print("Batch 1, median us (speedup over cuBLAS fp16 under the same flush).\n")
print("| format | k x n | " + " | ".join(f"flush {m}" for m in modes) + " |")
print("|---|---|" + "---:|" * len(modes))
shapes = sorted({(k, n) for (_, k, n) in peers}, key=lambda s: int(s[0]) * int(s[1]))
for k, n in shapes:
    print(f"| cuBLAS fp16 | {k}x{n} | " + " | ".join(f"{peers[(m, k, n)]:.2f}" for m in modes) + " |")
for f in ["lut2", "lut3", "int4", "int8"]:
    for k, n in shapes:
        cells = []
        for m in modes:
            us, _ = ours[(m, f, k, n)]
            cells.append(f"{us:.2f} ({peers[(m, k, n)] / us:.2f}x)")
        print(f"| {f} | {k}x{n} | " + " | ".join(cells) + " |")
text = open(f"{out}/ncu.txt").read()
found = re.findall(r"gpu__time_duration\.sum\s+(\S+)\s+([\d.,]+)", text)
ts = [float(v.replace(",", "")) for _, v in found]
units = {u for u, _ in found}
if ts:
    print(f"\nNsight Compute, lut2 8192x28672 r4/kc8192/s8, caches invalidated before each launch: "
          f"median {statistics.median(ts):.2f} {'/'.join(sorted(units))} over {len(ts)} launches "
          f"({', '.join(f'{t:.2f}' for t in ts)}).")
else:
    print("\nNsight Compute: no gpu__time_duration in ncu.txt")
