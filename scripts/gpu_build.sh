#!/usr/bin/env bash
# Builds what a GPU machine needs (it has no Rust): gpubench, ringbench, lowbitbench and the gpu crate's test binary,
# copied into .devbin/ (ignored by git). Then, on the GPU machine, from the repository root:
#   bash scripts/gpu_bench.sh OUTDIR     (kernels and PyTorch peers)
#   bash scripts/ring_bench.sh OUTDIR    (sequence-parallel attention over NCCL)
#   bash scripts/lowbit_bench.sh OUTDIR  (low-bit weight GEMV/GEMM and their peers)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p gpu --bin gpubench --bin ringbench --bin lowbitbench
mkdir -p .devbin
cp target/release/gpubench target/release/ringbench target/release/lowbitbench .devbin/
test_bin=$(cargo test --release -p gpu --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "gpu" and "test" in m["target"]["kind"] and m.get("executable"):
        print(m["executable"])' | head -1)
cp "$test_bin" .devbin/gpu_tests
grep -qx '/.devbin/' "$(git rev-parse --git-dir)/info/exclude" 2>/dev/null || echo '/.devbin/' >> "$(git rev-parse --git-dir)/info/exclude"
ls -la .devbin
