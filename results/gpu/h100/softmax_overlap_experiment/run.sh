#!/usr/bin/env bash
# A/B of gpubench builds on bench.toml, two interleaved rounds: each named build X is
# .devbin/gpubench.X; then the attention and sequence-parallel GPU tests with .devbin/gpu_tests.
# On a GPU machine from the repository root: run.sh OUTDIR BUILD...
set -uo pipefail
out=${1:?usage: run.sh OUTDIR BUILD...}
shift
here=results/gpu/h100/softmax_overlap_experiment
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > "$out/gpu.txt"
for r in 1 2; do
  for b in "$@"; do
    timeout 200 "./.devbin/gpubench.$b" "$here/bench.toml" "$out/$b.r$r.csv" > "$out/$b.r$r.log" 2>&1 || echo "$b round $r: exit $?"
  done
done
timeout 240 ./.devbin/gpu_tests --test-threads=1 --nocapture masked_attention sequence_parallel > "$out/tests.log" 2>&1
grep -E "test result|FAILED|panicked" "$out/tests.log"
python3 "$here/summary.py" "$out" "$@" > "$out/summary.md"
cat "$out/summary.md"
