"""Run csrc/cuda kernels on the CPU: compile the .cu file as C++ with cuda_emulate.h
and call each kernel once per (block, thread) through ctypes."""

from __future__ import annotations

import ctypes
import itertools
import shutil
import subprocess
from pathlib import Path

from segengine import _cuda

HEADER = Path(__file__).with_name("cuda_emulate.h")


def have_compiler() -> bool:
    return shutil.which("g++") is not None


def build(name: str, out_dir: Path) -> ctypes.CDLL:
    """Compile ``csrc/cuda/<name>.cu`` into a shared library and load it."""
    src = _cuda.csrc_dir() / "cuda" / f"{name}.cu"
    lib = out_dir / f"emu_{name}.so"
    cmd = ["g++", "-std=c++17", "-O1", "-shared", "-fPIC", "-x", "c++", "-include", str(HEADER),
           f"-I{_cuda.csrc_dir() / 'common'}", str(src), "-o", str(lib)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"emulation build of {name}.cu failed:\n{res.stderr}")
    return ctypes.CDLL(str(lib))


def launch(lib: ctypes.CDLL, kernel: str, grid, block, args) -> None:
    """Run ``kernel`` for every (block, thread) of a 1-3 D ``grid`` x ``block``, serially."""
    grid = tuple(grid) + (1,) * (3 - len(grid))
    block = tuple(block) + (1,) * (3 - len(block))
    fn = getattr(lib, kernel)
    fn.restype = None
    for b in itertools.product(range(grid[2]), range(grid[1]), range(grid[0])):
        for t in itertools.product(range(block[2]), range(block[1]), range(block[0])):
            lib.seg_emu_set(b[2], b[1], b[0], t[2], t[1], t[0], *grid, *block)
            fn(*args)


def _ctypes_arg(a):
    import numpy as np
    import torch
    if a is None:
        return ctypes.c_void_p(0)
    if isinstance(a, torch.Tensor):
        assert a.is_contiguous() and a.device.type == "cpu", "emulated kernels read CPU tensors"
        return ctypes.c_void_p(a.data_ptr())
    if isinstance(a, np.uint64):
        return ctypes.c_void_p(int(a))
    if isinstance(a, np.int64):
        return ctypes.c_int64(int(a))
    if isinstance(a, np.int32):
        return ctypes.c_int32(int(a))
    if isinstance(a, np.float32):
        return ctypes.c_float(float(a))
    if isinstance(a, np.float64):
        return ctypes.c_double(float(a))
    raise TypeError(f"untyped kernel argument {a!r}")


def launcher(out_dir: Path, grid=(2,), block=(3,)):
    """A ``segengine._cuda.set_launcher`` launcher that runs every kernel on the CPU.

    Each ``.cu`` file is compiled on first use; every launch runs ``grid`` x ``block``
    threads serially (small on purpose: the kernels' grid-stride loops must wrap)."""
    libs: dict[str, ctypes.CDLL] = {}

    def launch_emulated(source, name, _grid, _block, args):
        if source not in libs:
            libs[source] = build(source, out_dir)
        launch(libs[source], name, grid, block, [_ctypes_arg(a) for a in args])
    return launch_emulated
