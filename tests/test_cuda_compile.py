"""Every csrc/cuda file must compile with NVRTC (run-time options) and with nvcc."""

import shutil
import subprocess

import pytest

from segengine import _cuda
from tests.nvrtc import compile_ptx, load_nvrtc

CU_FILES = sorted(p.stem for p in (_cuda.csrc_dir() / "cuda").glob("*.cu"))
NVRTC = load_nvrtc()


def test_there_are_kernels():
    assert CU_FILES, "no .cu files found"


@pytest.mark.skipif(NVRTC is None, reason="libnvrtc not installed (test extra: nvidia-cuda-nvrtc-cu12)")
@pytest.mark.parametrize("name", CU_FILES)
def test_nvrtc_compiles(name):
    options = list(_cuda.nvrtc_options()) + ["-arch=compute_90"]
    rc, log, ptx = compile_ptx(NVRTC, _cuda.cuda_source(name), f"{name}.cu", options)
    assert rc == 0, f"NVRTC failed on {name}.cu:\n{log}"
    assert ptx > 0


@pytest.mark.skipif(NVRTC is None, reason="libnvrtc not installed")
def test_nvrtc_reports_errors():
    """The harness itself must fail on broken code (a test that cannot fail is a defect)."""
    rc, log, _ = compile_ptx(NVRTC, 'extern "C" __global__ void k(){ undefined_symbol(); }',
                             "bad.cu", list(_cuda.nvrtc_options()) + ["-arch=compute_90"])
    assert rc != 0 and "undefined_symbol" in log


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
@pytest.mark.parametrize("name", CU_FILES)
def test_nvcc_compiles(name, tmp_path):
    src = _cuda.csrc_dir() / "cuda" / f"{name}.cu"
    cmd = ["nvcc", "-arch=sm_90", "-std=c++17", f"-I{_cuda.csrc_dir() / 'common'}",
           "-DSEG_NVRTC=1", "-c", str(src), "-o", str(tmp_path / f"{name}.o")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
