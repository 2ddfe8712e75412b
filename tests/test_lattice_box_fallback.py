"""The lattice build's fallback from the dense key box to the hash table
(csrc/cpu/permutohedral.cpp): unreachable through the Python API (the box has a margin), so a
C++ driver (tests/cpp/lattice_box_fallback.cpp) builds with a box shrunk on purpose and
compares the result with lattice_build's, in a child process (a crash fails the test)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_box_table_falls_back_to_hash_table(tmp_path):
    exe = tmp_path / "lattice_box_fallback"
    cmd = ["g++", "-std=c++17", "-O1", "-fopenmp", "-DSEGENGINE_OPENMP",
           f"-I{ROOT / 'csrc' / 'cpu'}", f"-I{ROOT / 'csrc'}", f"-I{ROOT / 'csrc' / 'common'}",
           str(ROOT / "tests" / "cpp" / "lattice_box_fallback.cpp"), "-o", str(exe)]
    build = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", (run.returncode, run.stdout, run.stderr)
