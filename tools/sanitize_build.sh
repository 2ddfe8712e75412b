#!/usr/bin/env bash
# Build the whole package with AddressSanitizer + UBSan (SEGENGINE_SANITIZE=1: -O1 -g,
# -D_GLIBCXX_ASSERTIONS, the max-flow solver's SEG_MF_DEBUG invariant checks) into its own
# folder, leaving the checkout's in-place build alone.
#
# usage: tools/sanitize_build.sh [DEST]      (DEST defaults to build/sanitize)
#
# DEST becomes a self-contained staging tree (setup.py, pyproject.toml, csrc/, segengine/)
# and the extensions are built in place *there*, so Cython's generated .cpp files and the
# .so files never touch the checkout.  Run the tests against it with
# tools/run_sanitized_tests.sh [DEST].  Needs the project's build requirements (Cython,
# numpy, setuptools) in the active Python.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:-"$ROOT/build/sanitize"}
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
case "$DEST/" in
    "$ROOT/") echo "sanitize_build.sh: DEST must not be the checkout itself" >&2; exit 2 ;;
esac

echo "== sanitizer build into $DEST"
rm -rf "$DEST/segengine" "$DEST/csrc" "$DEST/build"
# -p keeps timestamps: a generated _cy/*.cpp newer than its .pyx is reused, not re-cythonized.
cp -rp "$ROOT/segengine" "$ROOT/csrc" "$DEST/"
cp -p "$ROOT/setup.py" "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/LICENSE" "$DEST/"
find "$DEST/segengine" \( -name '*.so' -o -name '__pycache__' \) -prune -exec rm -rf {} +

cd "$DEST"
SEGENGINE_SANITIZE=1 python setup.py -q build_ext --inplace -j "$(nproc)"

# Every extension must exist and carry the sanitizer runtime.
n=0
for so in segengine/_cy/_*.so; do
    ldd "$so" | grep libasan >/dev/null || { echo "sanitize_build.sh: $so is not linked with libasan" >&2; exit 1; }
    n=$((n + 1))
done
expected=$(ls segengine/_cy/_*.pyx | wc -l)
if [ "$n" -ne "$expected" ]; then
    echo "sanitize_build.sh: built $n extensions, expected $expected" >&2
    exit 1
fi
echo "sanitizer build ok: $n extensions in $DEST/segengine/_cy"
