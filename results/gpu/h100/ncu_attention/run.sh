#!/usr/bin/env bash
# Nsight Compute (full section set, clocks left alone) of attn_wgmma, variant
# wgmma-m128-n128-pipe, head dim 128, fp16, 8192 tokens: the first two launches, which are the
# dense case's check and its first timed run (the causal case in bench.toml runs after them).
# On a GPU machine from the repository root after scripts/gpu_build.sh. Writes
# OUTDIR/details.txt (the report pages), OUTDIR/stalls.csv and OUTDIR/summary.txt.
set -uo pipefail
out=${1:?usage: run.sh OUTDIR}
here=results/gpu/h100/ncu_attention
mkdir -p "$out"
ncu --clock-control none --set full --import-source no -k regex:attn_wgmma -c 2 -f -o "$out/attn" \
  ./.devbin/gpubench "$here/bench.toml" "$out/bench.csv" > "$out/bench.log" 2>&1
ncu -i "$out/attn.ncu-rep" --page details > "$out/details.txt" 2>&1
ncu -i "$out/attn.ncu-rep" --page raw --csv 2>/dev/null | python3 -c 'import csv,sys
rows=list(csv.reader(sys.stdin))
for row in rows[2:]:
    print("== kernel")
    for h,u,v in zip(rows[0],rows[1],row):
        if "pcsamp_warps_issue_stalled" in h and not h.endswith("not_issued") or "pipe_tensor" in h or "inst_executed_pipe" in h:
            print(h,u,v,sep=",")' > "$out/stalls.csv"
grep -E "attn_wgmma|Duration|Compute \(SM\) Throughput|Issue Slots Busy|Registers Per|Achieved Active Warps|No Eligible|Warp Cycles Per Issued|Shared Memory Configuration|Dynamic Shared" "$out/details.txt" > "$out/summary.txt"
cat "$out/summary.txt"
grep -E "== kernel|stalled" "$out/stalls.csv" | sort -t, -k3 -g -r | head -30
grep -E "tensor" "$out/stalls.csv" | head -20
