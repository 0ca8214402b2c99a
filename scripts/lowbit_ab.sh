#!/usr/bin/env bash
# A/B of two lowbitbench builds on one GPU machine, from the repository root: BASE (a binary of
# the kernel before a change, built with scripts/gpu_build.sh at that commit) and NEW
# (.devbin/lowbitbench), two interleaved rounds on BENCH.toml (default configs/gpu/lowbit_ab.toml).
# Writes OUTDIR/{base,new}.r{1,2}.{csv,log} and OUTDIR/summary.md (scripts/lowbit_ab.py).
set -euo pipefail
base=${1:?usage: lowbit_ab.sh BASE_LOWBITBENCH OUTDIR [BENCH.toml]}
out=${2:?usage: lowbit_ab.sh BASE_LOWBITBENCH OUTDIR [BENCH.toml]}
bench=${3:-configs/gpu/lowbit_ab.toml}
mkdir -p "$out"
for r in 1 2; do
  "$base" "$bench" "$out/base.r$r.csv" > "$out/base.r$r.log" 2>&1
  ./.devbin/lowbitbench "$bench" "$out/new.r$r.csv" > "$out/new.r$r.log" 2>&1
done
python3 scripts/lowbit_ab.py "$out" > "$out/summary.md"
cat "$out/summary.md"
