"""Root conftest of a sanitizer tree (copied there by tools/run_sanitized_tests.sh).

Stops the run before any test unless ``segengine`` and every compiled module come from
this tree, are instrumented by AddressSanitizer and UBSan, and the ASan runtime is
loaded: a passing run then really is a sanitized run.
"""

import importlib
from pathlib import Path

import pytest

TREE = Path(__file__).resolve().parent


def _loaded_libraries():
    """Paths of the shared objects mapped into this process."""
    with open("/proc/self/maps") as maps:
        return {line.split()[-1] for line in maps if "/" in line}


def _problems():
    """Reasons this process is not a sanitized run of the tree (empty when it is)."""
    import segengine

    found = []
    if TREE not in Path(segengine.__file__).resolve().parents:
        found.append(f"segengine imported from {segengine.__file__}, not from {TREE}")
    if not any("libasan" in Path(p).name for p in _loaded_libraries()):
        found.append("libasan is not loaded (LD_PRELOAD missing?)")
    names = sorted(p.stem for p in (TREE / "segengine" / "_cy").glob("_*.pyx"))
    for name in names:
        mod = importlib.import_module(f"segengine._cy.{name}")
        so = Path(mod.__file__).resolve()
        if TREE not in so.parents:
            found.append(f"{mod.__name__} imported from {so}, not from {TREE}")
            continue
        image = so.read_bytes()
        if b"__asan_report_" not in image or b"__ubsan_handle_" not in image:
            found.append(f"{so} is not instrumented by ASan and UBSan")
    return found, names


def pytest_configure(config):
    found, names = _problems()
    if found:
        raise pytest.UsageError("not a sanitized run:\n  " + "\n  ".join(found))
    print(f"sanitized build in use: {', '.join(names)} from {TREE}")
