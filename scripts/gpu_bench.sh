#!/usr/bin/env bash
# Runs on a GPU machine, from the repository root, after scripts/gpu_build.sh: the GPU tests
# (correctness against fp64 on random and real inputs), our kernels (gpubench) and the PyTorch
# peers on the same cases, then the comparison table. Everything lands in OUTDIR:
#   tests.log, ours.csv, bench.log, peers.csv, peers.log, compare.md, device.txt
set -euo pipefail
out=${1:?usage: gpu_bench.sh OUTDIR [BENCH.toml]}
bench=${2:-configs/gpu/bench_h100.toml}
mkdir -p "$out"
{ date -u; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit --format=csv; nvidia-smi topo -m; } > "$out/device.txt" 2>&1
./.devbin/gpu_tests --test-threads=1 --nocapture 2>&1 | tee "$out/tests.log" | grep -E "^test |real MiniLM|test result"
./.devbin/gpubench "$bench" "$out/ours.csv" 2>&1 | tee "$out/bench.log" | grep -E "device|copy|selected" || true
PYTHONUNBUFFERED=1 python3 scripts/gpu_peers.py run "$bench" "$out/peers.csv" > "$out/peers.log" 2>&1
python3 scripts/gpu_peers.py compare "$out/ours.csv" "$out/peers.csv" "$out/compare.md"
