"""Run-time compilation and launch of the CUDA kernels in ``csrc/cuda``.

Kernels are compiled by NVRTC through CuPy, once per (device, source file,
kernel name) and cached.  They are launched on PyTorch's current stream
(looked up at every launch; CuPy's view of each stream is made once and cached) with raw
``data_ptr()`` arguments. This module is the only place that compiles or launches a kernel:
the per-family drivers (``segengine/ops/_<family>_cuda.py``) call :func:`launch`, and tests
swap the launcher for a CPU emulation with :func:`set_launcher`.

The NVRTC options live here (:func:`nvrtc_options`) so that the CPU test that
compiles every ``.cu`` file without a GPU uses exactly the same ones.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

__all__ = ["csrc_dir", "cuda_source", "nvrtc_options", "cupy_available",
           "get_kernel", "launch", "set_launcher", "ptr", "grid_for"]

_INSTALL_HINT = ("CUDA tensors need CuPy: pip install 'segengine[cuda12]' "
                 "(CUDA 12) or 'segengine[cuda13]' (CUDA 13)")


def csrc_dir() -> Path:
    """Folder holding ``common/`` and ``cuda/``: shipped in the wheel as
    ``segengine/_csrc``, or the checkout's ``csrc/`` for in-place builds."""
    here = Path(__file__).resolve().parent
    for cand in (here / "_csrc", here.parent / "csrc"):
        if (cand / "cuda").is_dir() and (cand / "common").is_dir():
            return cand
    raise FileNotFoundError("segengine: CUDA sources (csrc/cuda, csrc/common) not found "
                            f"next to {here}")


def cuda_source(name: str) -> str:
    """Text of ``csrc/cuda/<name>.cu``."""
    return (csrc_dir() / "cuda" / f"{name}.cu").read_text()


def nvrtc_options() -> tuple[str, ...]:
    """NVRTC options used for every kernel (CuPy adds the ``-arch`` of the device)."""
    return ("--std=c++17", f"-I{csrc_dir() / 'common'}", "-DSEG_NVRTC=1")


@functools.lru_cache(maxsize=None)
def cupy_available() -> bool:
    try:
        import cupy  # noqa: F401
    except Exception:
        return False
    return True


def _require_cupy():
    if not cupy_available():
        raise RuntimeError(_INSTALL_HINT)
    import cupy
    return cupy


@functools.lru_cache(maxsize=None)
def _module(device_index: int, source: str):
    cupy = _require_cupy()
    with cupy.cuda.Device(device_index):
        mod = cupy.RawModule(code=cuda_source(source), options=nvrtc_options())
        mod.compile()
    return mod


@functools.lru_cache(maxsize=None)
def _kernel(device_index: int, source: str, name: str):
    return _module(device_index, source).get_function(name)


def get_kernel(device: torch.device, source: str, name: str):
    """Compiled ``extern "C"`` kernel ``name`` of ``csrc/cuda/<source>.cu`` on ``device``.

    The whole file is compiled once per device; kernels carry their dtype in
    their name (``..._f32``, ``..._f64``), so the cache key is (device, file, name).
    """
    index = device.index if device.index is not None else torch.cuda.current_device()
    return _kernel(index, source, name)


def ptr(t: torch.Tensor | None) -> np.uint64:
    """Raw device pointer argument (0 for None)."""
    return np.uint64(0 if t is None else t.data_ptr())


def grid_for(n: int, block: int = 256, max_blocks: int = 65535 * 8) -> tuple[int]:
    """1-D grid for ``n`` work items; kernels use grid-stride loops past ``max_blocks``."""
    return (max(1, min((n + block - 1) // block, max_blocks)),)


# Tests replace the launcher with a CPU emulation of the kernels (tests/emulate.py):
# launcher(source, name, grid, block, args) with args as given to launch().
_launcher: Callable | None = None


def set_launcher(launcher: Callable | None) -> Callable | None:
    """Route every :func:`launch` to ``launcher(source, name, grid, block, args)`` (None: the
    GPU); returns the previous one. The single seam through which tests emulate CUDA."""
    global _launcher
    previous, _launcher = _launcher, launcher
    return previous


@functools.lru_cache(maxsize=64)
def _stream(device_index: int, handle: int):
    """CuPy view of PyTorch's stream ``handle``, made once per stream."""
    cupy = _require_cupy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return cupy.cuda.ExternalStream(handle, device_index)


@functools.lru_cache(maxsize=None)
def _device(device_index: int):
    return _require_cupy().cuda.Device(device_index)


def _raw(a):
    if a is None or isinstance(a, torch.Tensor):
        return ptr(a)
    if isinstance(a, np.generic):
        return a
    raise TypeError(f"kernel argument must be a tensor, None or a numpy scalar, got {a!r}")


def launch(device: torch.device, source: str, name: str, grid, block, args,
           shared_mem: int = 0) -> None:
    """Launch kernel ``name`` of ``csrc/cuda/<source>.cu`` on PyTorch's current stream of ``device``.

    Parameters
    ----------
    device : torch.device
        A CUDA device.
    source, name : str
        The ``.cu`` file (without suffix) and the ``extern "C"`` kernel in it.
    grid, block : tuple of int
        Launch shape (see :func:`grid_for`).
    args : sequence
        Tensors (passed as device pointers; they must be contiguous), None (a null pointer)
        or numpy scalars (``np.int64``, ``np.int32``, ``np.float32``, ``np.float64``), in the
        kernel's parameter order.
    """
    if _launcher is not None:
        _launcher(source, name, tuple(grid), tuple(block), list(args))
        return
    raw = tuple(_raw(a) for a in args)
    index = device.index if device.index is not None else torch.cuda.current_device()
    kernel = _kernel(index, source, name)
    stream = _stream(index, torch.cuda.current_stream(index).cuda_stream)
    with _device(index), stream:
        kernel(tuple(grid), tuple(block), raw, shared_mem=shared_mem)
