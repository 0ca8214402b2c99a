#!/usr/bin/env python3
"""summary.py OUTDIR BASE BUILD...: per attention case and variant, the better round's median
of each build, and each build's time over the first (base) build's."""
import csv
import glob
import sys

out, builds = sys.argv[1], sys.argv[2:]
t = {}
for build in builds:
    for path in sorted(glob.glob(f"{out}/{build}.r*.csv")):
        for r in csv.DictReader(open(path)):
            if r["kind"] != "attention":
                continue
            key = (r["case"], r["dtype"], int(r["n_q"]), int(r["head_dim"]), r["variant"])
            us = float(r["median_us"])
            t[(build, key)] = min(us, t.get((build, key), us))
base = builds[0]
print("| case | dtype | n | d | variant | " + " | ".join(f"{b} us" for b in builds) + " | "
      + " | ".join(f"{b} / {base}" for b in builds[1:]) + " |")
print("|---|---|---:|---:|---|" + "---:|" * (2 * len(builds) - 1))
for key in sorted({k for (_, k) in t}):
    us = [t.get((b, key)) for b in builds]
    if all(us):
        cells = [f"{x:.1f}" for x in us] + [f"{x / us[0]:.3f}" for x in us[1:]]
        print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {key[4]} | " + " | ".join(cells) + " |")
