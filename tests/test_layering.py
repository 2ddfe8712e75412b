"""Layers point one way (docs/architecture.md), checked on the import statements of the source.

- ``segengine/ops`` and ``segengine/_cy`` never import the drop-ins (``segengine.maxflow``,
  ``segengine.densecrf``), the layers (``segengine.nn``) or ``segengine.dask``;
- the oracles in ``segengine/_reference`` import nothing of segengine but each other;
- only ``segengine/_cuda.py`` compiles or launches CUDA code (the one CUDA seam), and
  ``torch.library.custom_op`` is called nowhere (ops register through ``segengine/ops/_library.py``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import segengine

PKG = Path(segengine.__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _sources(sub: str) -> list[Path]:
    return sorted((PKG / sub).rglob("*.py")) + sorted((PKG / sub).rglob("*.pyx"))


def _pyx_imports(path: Path) -> set[str]:
    # Cython: only the Python-level import lines matter here
    names = set()
    for line in path.read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in ("import", "from") and not line.startswith(" "):
            names.add(words[1])
    return names


def _all_imports(path: Path) -> set[str]:
    return _pyx_imports(path) if path.suffix == ".pyx" else _imports(path)


UPPER = ("segengine.maxflow", "segengine.densecrf", "segengine.nn", "segengine.dask")


@pytest.mark.parametrize("sub", ["ops", "_cy"])
def test_ops_and_bindings_do_not_import_upper_layers(sub):
    files = _sources(sub)
    assert files
    bad = {f.name: sorted(n for n in _all_imports(f) if n.startswith(UPPER)) for f in files}
    assert not {k: v for k, v in bad.items() if v}


def test_reference_oracles_import_no_segengine_code():
    files = _sources("_reference")
    assert files
    bad = {f.name: sorted(n for n in _imports(f)
                          if n.startswith("segengine") and not n.startswith("segengine._reference"))
           for f in files}
    assert not {k: v for k, v in bad.items() if v}


_LAUNCH_WORDS = ("RawModule", "RawKernel", "ExternalStream", "cupy.cuda.Device", "get_function(")


def test_only_the_cuda_seam_compiles_or_launches():
    offenders = [str(f.relative_to(PKG)) for f in sorted(PKG.rglob("*.py"))
                 if f.name != "_cuda.py" and any(w in f.read_text() for w in _LAUNCH_WORDS)]
    assert offenders == []


def test_no_op_uses_custom_op_registration():
    offenders = [str(f.relative_to(PKG)) for f in sorted(PKG.rglob("*.py"))
                 if re.search(r"custom_op\(|@torch\.library\.custom_op", f.read_text())]
    assert offenders == []


def test_the_checker_sees_a_forbidden_import(tmp_path):
    # the checks above are not vacuous
    f = tmp_path / "x.py"
    f.write_text("from segengine.maxflow.grid import grid_maxflow\nimport cupy\n")
    names = _imports(f)
    assert any(n.startswith(UPPER) for n in names) and "cupy" in names
