#!/usr/bin/env bash
# Run the C++-heavy tests against the ASan + UBSan build made by tools/sanitize_build.sh.
#
# usage: tools/run_sanitized_tests.sh [DEST] [-- PYTEST_ARGS...]
#   DEST         the sanitizer tree (default build/sanitize)
#   PYTEST_ARGS  replace the default selection below (paths are relative to the checkout)
#
# The checkout's tests/ are copied into DEST and pytest runs from DEST, so `import
# segengine` finds the sanitized copy (the checkout's own folder is never on sys.path);
# DEST/conftest.py (tools/sanitize_conftest.py) refuses to start unless the imported
# modules are DEST's instrumented ones.  Any ASan or UBSan report ends the process with
# a non-zero status, so the run fails.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/build/sanitize"
if [ $# -gt 0 ] && [ "$1" != "--" ]; then DEST=$1; shift; fi
if [ $# -gt 0 ] && [ "$1" == "--" ]; then shift; fi
DEST=$(cd "$DEST" && pwd)
[ -d "$DEST/segengine/_cy" ] || { echo "run_sanitized_tests.sh: no sanitizer build in $DEST (run tools/sanitize_build.sh)" >&2; exit 2; }

# Every kernel family must stay covered.  Seconds: pytest's own time for the file on 2
# busy cores under the sanitizers (ASan + UBSan at -O1 run the kernels ~2-5x slower).
SELECTION=(
    # lattice / dense CRF
    tests/test_lattice.py               # 16 s
    tests/test_crf.py                   # 63 s
    tests/test_densecrf_compat.py       #  5 s
    tests/test_nn_crf.py                # 65 s (less the one deselected below)
    # max-flow (general graphs, grids) and multi-label moves (alpha-expansion / swap)
    tests/test_maxflow.py               # 32 s
    tests/test_maxflow_grid_form.py     #  7 s
    tests/test_alpha_expansion.py       # 43 s
    tests/test_graphcut.py              # 39 s
    # watershed
    tests/test_watershed.py             #  8 s
    tests/test_watershed_fast.py        # the fast tie order (csrc/cpu/watershed_fast.cpp)
    tests/test_watershed_parallel.py    # the parallel tie order (csrc/cpu/watershed_parallel.cpp)
    # the flooding-level kernels of the blockwise watershed (synchronous scheduler, no cluster)
    tests/test_dask_watershed.py::test_flooding_levels_two_kernels_agree
    tests/test_dask_watershed.py::test_equals_whole_array_without_ties
    tests/test_dask_watershed.py::test_watershed_line
    # fused upsampling
    tests/test_upsample.py              # 29 s
    # every op's num_threads handling
    tests/test_num_threads.py           # 11 s
    # fuzz regressions (in-process) and multi-label stress tests (the stereo case runs in a
    # child process that inherits the sanitizer environment and imports this tree)
    tests/fuzz/test_regressions.py
    tests/test_alpha_expansion_stress.py # 30 s
    # the short fuzz run: its worker processes inherit the sanitizer environment (they skip
    # their address-space cap when libasan is preloaded: ASan reserves terabytes for its shadow)
    tests/fuzz/test_fuzz.py
)
# Slow and about torch's tracing, not the kernels (22 s on busy cores).
DESELECT=(
    tests/test_nn_crf.py::test_torch_compile
)
if [ $# -gt 0 ]; then SELECTION=("$@"); DESELECT=(); fi

rm -rf "$DEST/tests"
cp -r "$ROOT/tests" "$DEST/tests"
find "$DEST/tests" -name '__pycache__' -prune -exec rm -rf {} +
# test_alpha_expansion_stress.py imports benchmarks.problems from the tree's root
rm -rf "$DEST/benchmarks"
mkdir "$DEST/benchmarks"
cp "$ROOT"/benchmarks/*.py "$DEST/benchmarks/"
cp "$ROOT/pyproject.toml" "$DEST/pyproject.toml"
cp "$ROOT/tools/sanitize_conftest.py" "$DEST/conftest.py"

# Python is not linked with ASan, so its runtime is preloaded.  libstdc++ is preloaded with
# it: ASan resolves the real __cxa_throw when it starts, and without libstdc++ loaded by
# then the first C++ exception (a kernel's std::invalid_argument) aborts in the interceptor.
preload=()
for lib in libasan.so libstdc++.so; do
    path=$(readlink -f "$("${CXX:-c++}" -print-file-name="$lib")")
    [ -f "$path" ] || { echo "run_sanitized_tests.sh: $lib not found" >&2; exit 2; }
    preload+=("$path")
done
PRELOAD=$(IFS=:; echo "${preload[*]}")

# Python and torch leak by design (detect_leaks=0); any report ends the process
# (halt_on_error, abort_on_error).
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
args=()
for t in "${DESELECT[@]}"; do args+=(--deselect "$t"); done

cd "$DEST"
echo "== sanitized tests (ASan + UBSan) in $DEST"
LD_PRELOAD="$PRELOAD" python -m pytest -q -p no:cacheprovider --capture=sys "${args[@]}" "${SELECTION[@]}"
