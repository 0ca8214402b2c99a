#!/usr/bin/env bash
# The L2 flush method's effect on the timings, on a GPU machine from the repository root after
# scripts/gpu_build.sh: lowbitbench and the cuBLAS peer at batch 1 on the four shapes, with the
# L2 flushed by writing, by reading, and not flushed; then the lut2 kernel of the largest shape
# under Nsight Compute with its caches invalidated (--cache-control all), the cold-cache time
# with no write-back owed. Writes OUTDIR/{write,read,none}.{ours,peers}.csv, ncu.txt, summary.md.
set -euo pipefail
out=${1:?usage: run.sh OUTDIR}
here=results/gpu/lowbit_h100/flush_experiment
mkdir -p "$out"
for mode in write read none; do
  ./.devbin/lowbitbench "$here/$mode.toml" "$out/$mode.ours.csv" > "$out/$mode.bench.log" 2>&1
  python3 scripts/lowbit_peers.py run "$here/$mode.toml" "$out/$mode.peers.csv" > "$out/$mode.peers.log" 2>&1
done
ncu --clock-control none --cache-control all -k regex:lowbit_gemv --launch-skip 1 --launch-count 5 \
  --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
  ./.devbin/lowbitbench "$here/ncu.toml" "$out/ncu.ours.csv" > "$out/ncu.txt" 2>&1 || true
python3 "$here/summary.py" "$out" > "$out/summary.md"
cat "$out/summary.md"
