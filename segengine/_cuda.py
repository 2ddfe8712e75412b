"""Run-time compilation and launch of the CUDA kernels in ``csrc/cuda``.

Kernels are compiled by NVRTC through CuPy, once per (device, source file,
kernel name) and cached.  They are launched on PyTorch's current stream,
looked up at every launch, with raw ``data_ptr()`` arguments.

The NVRTC options live here (:func:`nvrtc_options`) so that the CPU test that
compiles every ``.cu`` file without a GPU uses exactly the same ones.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np
import torch

__all__ = ["csrc_dir", "cuda_source", "nvrtc_options", "cupy_available",
           "get_kernel", "launch", "ptr", "grid_for"]

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


def launch(kernel, device: torch.device, grid, block, args, shared_mem: int = 0) -> None:
    """Launch ``kernel`` on PyTorch's current stream of ``device``."""
    cupy = _require_cupy()
    stream = torch.cuda.current_stream(device)
    index = stream.device.index
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ext = cupy.cuda.ExternalStream(stream.cuda_stream, index)
    with cupy.cuda.Device(index), ext:
        kernel(tuple(grid), tuple(block), tuple(args), shared_mem=shared_mem)
