#!/usr/bin/env bash
# The whole GPU check in one call, for a machine with a CUDA GPU (docs/development.md):
# build the extension in place, run every CUDA-marked test, then the GPU benchmarks.
#   bash tools/gpu_check.sh [OUT]     (results and logs under OUT; default: the results table
#                                      in benchmarks/results, the logs in build/gpu-check)
# A test failure does not stop the benchmarks; the exit status is the test run's.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results}
LOGS=${1:-build/gpu-check}
mkdir -p "$OUT" "$LOGS"
export PYTHONUNBUFFERED=1
python -m pip install -q --no-build-isolation --no-deps -e . || exit 1
python - <<'PY' || exit 1
import torch
from segengine import _cuda
assert torch.cuda.is_available(), "no CUDA device visible to torch"
assert _cuda.cupy_available(), "CuPy is not installed (pip install 'segengine[cuda12]' or '[cuda13]')"
import cupy
print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| CuPy", cupy.__version__,
      "| CUDA runtime", cupy.cuda.runtime.runtimeGetVersion())
PY
timeout_opt=()
python -c "import pytest_timeout" 2>/dev/null && timeout_opt=(--timeout=300)
python -m pytest -q -p no:cacheprovider -m cuda -rfE "${timeout_opt[@]}" \
    --junitxml="$LOGS/gpu-tests.xml" 2>&1 | tee "$LOGS/gpu-tests.log"
tests=${PIPESTATUS[0]}
python -m benchmarks --device cuda --out "$OUT" 2>&1 | tee "$LOGS/gpu-bench.log"
echo "pytest -m cuda exit status: $tests"
exit "$tests"
