#!/usr/bin/env bash
# Runs on a GPU machine, from the repository root, after scripts/gpu_build.sh: every GPU test
# (the sequence-parallel ones included) and ringbench (sequence-parallel attention over NCCL,
# checked against fp64, timed per step) on a ringbench file. NCCL comes from the machine's
# PyTorch install (the nvidia-nccl wheel ships libnccl.so.2; cudarc loads libnccl.so, so a link
# is made). OUTDIR gets device.txt, tests.log, ring.csv, ring.log. SKIP_TESTS=1 skips the tests.
set -euo pipefail
out=${1:?usage: ring_bench.sh OUTDIR [RING.toml]}
cfg=${2:-configs/gpu/ring_h100.toml}
mkdir -p "$out"
nccl=$(python3 - <<'PY'
import glob, os, site
for d in site.getsitepackages() + [site.getusersitepackages()]:
    for f in glob.glob(os.path.join(d, "nvidia", "nccl", "lib", "libnccl.so*")):
        print(f)
        raise SystemExit
PY
)
[ -n "$nccl" ] || nccl=$(find /usr /opt /root -name 'libnccl.so*' 2>/dev/null | head -1)
[ -n "$nccl" ] || { echo "no libnccl.so found" >&2; exit 1; }
link=$(mktemp -d)
ln -sf "$nccl" "$link/libnccl.so"
export LD_LIBRARY_PATH="$link:$(dirname "$nccl"):${LD_LIBRARY_PATH:-}"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
{ date -u; echo "NCCL: $nccl"; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit --format=csv; nvidia-smi topo -m; } > "$out/device.txt" 2>&1
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  ./.devbin/gpu_tests --test-threads=1 --nocapture 2>&1 | tee "$out/tests.log" | grep -E "^test |skipped|test result"
fi
./.devbin/ringbench "$cfg" "$out/ring.csv" 2>&1 | tee "$out/ring.log"
