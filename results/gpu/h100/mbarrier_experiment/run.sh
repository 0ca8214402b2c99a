#!/usr/bin/env bash
# A/B of two gpubench builds (BASE and .devbin/gpubench) on bench.toml, two interleaved rounds,
# then the attention GPU test with the new build. On a GPU machine from the repository root.
set -uo pipefail
base=${1:?usage: run.sh BASE_GPUBENCH OUTDIR}
out=${2:?usage: run.sh BASE_GPUBENCH OUTDIR}
here=results/gpu/h100/mbarrier_experiment
mkdir -p "$out"
for r in 1 2; do
  "$base" "$here/bench.toml" "$out/base.r$r.csv" > "$out/base.r$r.log" 2>&1
  ./.devbin/gpubench "$here/bench.toml" "$out/new.r$r.csv" > "$out/new.r$r.log" 2>&1
done
python3 "$here/summary.py" "$out" > "$out/summary.md"
cat "$out/summary.md"
timeout 300 ./.devbin/gpu_tests --test-threads=1 --nocapture masked_attention > "$out/tests.log" 2>&1
grep -E "test result|FAILED|panicked" "$out/tests.log"
