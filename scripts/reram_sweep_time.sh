#!/usr/bin/env bash
# Times the 10,000-point `reram.inv` sweep (configs/reram_inv_10k.toml) with the release binary
# on this machine's cores, into a fresh directory. Usage: scripts/reram_sweep_time.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/reram_inv_10k-$(date +%s)}"
cargo build --release --quiet
echo "cores: $(nproc)"
start=$(date +%s.%N)
./target/release/archsweep sweep configs/reram_inv_10k.toml --out "$out" --quiet
end=$(date +%s.%N)
echo "10,000-point reram.inv sweep: $(echo "$end - $start" | bc) s"
