#!/usr/bin/env bash
# Nsight Compute (full section set, clocks left alone, caches flushed before the launch) of the
# selected batch-1 tilings of several formats and shapes, and of the read floor's read_u4 on
# one of them. On a GPU machine from the repository root after scripts/gpu_build.sh.
# Writes OUTDIR/NAME.{ncu-rep,details.txt,stalls.csv,sass.csv} and OUTDIR/summary.txt.
set -uo pipefail
out=${1:?usage: run.sh OUTDIR}
here=results/gpu/lowbit_h100/ncu_experiment
mkdir -p "$out"
ncu --version | tail -1 > "$out/summary.txt"
for t in "$here"/*.toml; do
  name=$(basename "$t" .toml)
  ncu --clock-control none --cache-control all --set full --import-source no \
    -k regex:lowbit_gemv -c 1 -f -o "$out/$name" \
    ./.devbin/lowbitbench "$t" "$out/$name.bench.csv" > "$out/$name.log" 2>&1
  ncu -i "$out/$name.ncu-rep" --page details > "$out/$name.details.txt" 2>&1
  ncu -i "$out/$name.ncu-rep" --page raw --csv 2>/dev/null \
    | python3 -c 'import csv,sys
rows=list(csv.reader(sys.stdin))
for h,u,v in zip(rows[0],rows[1],rows[2]):
    if "stall" in h or "issue_active" in h or "inst_executed" in h or "wavefronts" in h or "bank" in h:
        print(h,u,v,sep=",")' > "$out/$name.stalls.csv"
  ncu -i "$out/$name.ncu-rep" --page source --csv --print-source sass > "$out/$name.sass.csv" 2>&1
  echo "== $name" >> "$out/summary.txt"
  grep -E "Duration|DRAM Throughput|Memory Throughput|Compute \(SM\) Throughput|Achieved Occupancy|Registers Per|Issue Slots Busy|Warp Cycles Per Issued|No Eligible|Active Warps Per" "$out/$name.details.txt" >> "$out/summary.txt"
  sort -t, -k3 -g -r "$out/$name.stalls.csv" | grep "pcsamp_warps_issue_stalled" | grep -v not_issued | head -8 >> "$out/summary.txt"
done
# The read floor of lut3 4096x11008: read_u4 over the same bytes.
ncu --clock-control none --cache-control all --set full -k regex:read_u4 -c 1 -f -o "$out/read_lut3_4096x11008" \
  ./.devbin/lowbitbench "$here/lut3_4096x11008.toml" "$out/read.bench.csv" > "$out/read.log" 2>&1
ncu -i "$out/read_lut3_4096x11008.ncu-rep" --page details > "$out/read_lut3_4096x11008.details.txt" 2>&1
echo "== read_u4 (lut3 4096x11008 bytes)" >> "$out/summary.txt"
grep -E "Duration|DRAM Throughput|Achieved Occupancy|Grid Size|Block Size" "$out/read_lut3_4096x11008.details.txt" >> "$out/summary.txt"
cat "$out/summary.txt"
