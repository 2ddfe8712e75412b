"""examples/dask_watershed.py on a tiny volume, in a subprocess (it starts its own
LocalCluster of 2 worker processes on 127.0.0.1): it must finish, write the three zarr
stores and the PNG, and agree with the whole-array watershed."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dask.array")
pytest.importorskip("distributed")
pytest.importorskip("zarr")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]


def test_dask_watershed_example_tiny(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "dask_watershed.py"), "--out", str(out),
         "--shape", "16", "48", "64", "--chunks", "16", "24", "32", "--workers", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("image.zarr", "markers.zarr", "labels.zarr"):
        assert (out / name).is_dir(), name
    png = out / "slice.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    share = re.search(r"identical to whole-array segengine.watershed: ([\d.]+) %", proc.stdout)
    assert share is not None, proc.stdout
    assert float(share.group(1)) >= 99.0
