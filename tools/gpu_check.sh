#!/usr/bin/env bash
# The whole GPU check in one call, for a machine with a CUDA GPU (docs/development.md):
# build the extension in place, run every CUDA-marked test, then the GPU benchmarks.
#   bash tools/gpu_check.sh [OUT]     (results table under OUT, default benchmarks/results)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results}
python -m pip install -q --no-build-isolation --no-deps -e .
python - <<'PY'
import torch
from segengine import _cuda
assert torch.cuda.is_available(), "no CUDA device visible to torch"
assert _cuda.cupy_available(), "CuPy is not installed (pip install 'segengine[cuda12]' or '[cuda13]')"
print("GPU:", torch.cuda.get_device_name(0))
PY
python -m pytest -q -p no:cacheprovider -m cuda
python -m benchmarks --device cuda --out "$OUT"
