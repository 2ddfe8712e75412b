"""The documentation site: the benchmark-table generator and a full build with warnings as errors.

Skipped without the docs extra (``pip install -e ".[docs]"``). The full build takes about
20 s on 2 cores; ``bash tools/build_docs.sh`` runs the same build into build/docs.
"""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

pytest.importorskip("sphinx")
for _name in ("numpydoc", "myst_parser", "furo"):
    pytest.importorskip(_name)


@pytest.fixture(scope="module")
def tables():
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        yield importlib.import_module("segengine_bench_tables")
    finally:
        sys.path.remove(str(ROOT / "docs" / "_ext"))


def _markdown_rows(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    return [" ".join(line.split()) for line in lines
            if line.startswith("| ") and not line.startswith("| op |")]


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*.json")), ids=lambda p: p.stem)
def test_site_tables_show_the_rows_of_the_markdown_results(tables, path):
    """The site renders the JSON rows; they must be the rows of the Markdown file beside it."""
    data = json.loads(path.read_text())
    if not tables.is_standard(data):
        facts, columns, rows = tables.generic_rows(data)
        assert columns and rows, f"{path.name}: no table to show"
        return
    md = path.with_suffix(".md")
    if not md.exists():
        pytest.skip(f"{md.name} missing")
    gpu = any("gpu_peak_mb" in r for r in data["rows"])
    generated = [" ".join(("| " + " | ".join(tables.cells(r, gpu=gpu)) + " |").split()) for r in data["rows"]]
    assert generated == _markdown_rows(md)


def test_generic_results_file(tables):
    data = {"machine": "m", "results": [{"head": "plain", "steps": [{"t": 1.0}], "miou": 0.51234},
                                        {"head": "fused", "peak_mb": 40.0}]}
    facts, columns, rows = tables.generic_rows(data)
    assert facts == ["machine: m"]
    assert columns == ["head", "miou", "peak_mb"]          # nested fields left out
    assert rows == [["plain", "0.5123", ""], ["fused", "", "40"]]
    assert not tables.is_standard(data)


def test_notes_shared_by_every_case_are_given_once(tables):
    rows = [{"case": c, "impl": i, "notes": n} for c in ("a", "b")
            for i, n in (("segengine", "2 threads"), ("peer", f"run {c}"))]
    assert tables.note_lines(rows) == ["segengine (every case): 2 threads", "a / peer: run a",
                                       "b / peer: run b"]


def test_docs_build_without_warnings(tmp_path):
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-E", "-q", "-b", "html",
           "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(tmp_path / "html")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-8000:]
    html = tmp_path / "html"
    for page in ("index", "install", "benchmarks", "changelog", "reference/ops",
                 "migrate/pydensecrf", "migrate/pymaxflow", "migrate/skimage"):
        assert (html / f"{page}.html").exists(), page
    for name in ("crf_after.png", "graphcut.png", "watershed_after.png", "upsample_argmax.png"):
        assert (html / "_images" / name).exists(), name
    reference = (html / "reference" / "ops.html").read_text()
    assert 'id="segengine.dense_crf"' in reference and 'id="segengine.watershed"' in reference
