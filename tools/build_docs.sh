#!/usr/bin/env bash
# Build the documentation site (docs/ -> build/docs) with every warning an error.
#
#   bash tools/build_docs.sh [OUT]        (default OUT: build/docs; open OUT/index.html)
#
# Needs the docs extra in the active Python (pip install -e ".[docs]") and an importable,
# built segengine: the API reference is generated from the docstrings and the user guide's
# pictures are made by the quick `segengine demo` modules during the build. Offline: no
# intersphinx inventory or other download (docs/conf.py). -n (nitpicky) makes every
# unresolved cross-reference an error too; -E re-reads every page, so a run never reuses a
# stale environment.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-build/docs}
PY=${PYTHON:-python}
if ! "$PY" -c "import sphinx, numpydoc, myst_parser, furo" 2>/dev/null; then
    echo "build_docs.sh: Sphinx, numpydoc, myst-parser and furo are needed: pip install -e '.[docs]'" >&2
    exit 2
fi
# The pages document the segengine that `python` imports from here (the checkout first):
# its compiled extensions must be built (pip install -e ., or setup.py build_ext --inplace).
if ! "$PY" -c "import segengine._cy._lattice, segengine._cy._maxflow, segengine._cy._watershed, segengine._cy._upsample" 2>/dev/null; then
    echo "build_docs.sh: segengine's compiled extensions do not import from $(pwd);" \
         "build them first: pip install -e . (or python setup.py build_ext --inplace)" >&2
    exit 2
fi
start=$SECONDS
"$PY" -m sphinx -W --keep-going -n -E -q -b html docs "$OUT"
echo "docs: $OUT/index.html ($((SECONDS - start)) s)"
