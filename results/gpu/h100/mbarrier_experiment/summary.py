#!/usr/bin/env python3
"""Per attention case and variant: the better round's median of each build, and new / base."""
import csv
import glob
import sys

out = sys.argv[1]
t = {}
for build in ["base", "new"]:
    for path in sorted(glob.glob(f"{out}/{build}.r*.csv")):
        for r in csv.DictReader(open(path)):
            if r["kind"] != "attention":
                continue
            key = (r["case"], r["dtype"], int(r["n_q"]), int(r["head_dim"]), r["variant"])
            us = float(r["median_us"])
            t[(build, key)] = min(us, t.get((build, key), us))
print("| case | dtype | n | d | variant | base us | new us | new / base |")
print("|---|---|---:|---:|---|---:|---:|---:|")
for key in sorted({k for (_, k) in t}):
    b, n = t.get(("base", key)), t.get(("new", key))
    if b and n:
        print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {key[4]} | {b:.1f} | {n:.1f} | {n / b:.3f} |")
