#!/usr/bin/env bash
# Runs on a GPU machine, from the repository root, after scripts/gpu_build.sh: the low-bit GPU
# test (every format, batch and tiling against fp64), our kernels (lowbitbench) and the PyTorch
# peers on the same shapes, then the comparison table. Everything lands in OUTDIR:
#   device.txt, tests.log, ours.csv, bench.log, peers.csv, peers.log, compare.md
set -euo pipefail
out=${1:?usage: lowbit_bench.sh OUTDIR [BENCH.toml]}
bench=${2:-configs/gpu/lowbit_h100.toml}
mkdir -p "$out"
{ date -u; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit --format=csv; } > "$out/device.txt" 2>&1
./.devbin/gpu_tests --test-threads=1 --nocapture lowbit read_floor 2>&1 | tee "$out/tests.log" | grep -E "^test |test result"
./.devbin/lowbitbench "$bench" "$out/ours.csv" 2>&1 | tee "$out/bench.log"
PYTHONUNBUFFERED=1 python3 scripts/lowbit_peers.py run "$bench" "$out/peers.csv" > "$out/peers.log" 2>&1
python3 scripts/lowbit_peers.py compare "$out/ours.csv" "$out/peers.csv" "$out/compare.md" "$bench"
