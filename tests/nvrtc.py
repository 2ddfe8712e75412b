"""Compile CUDA sources with libnvrtc through ctypes: no GPU and no CuPy needed.

Uses the NVRTC library from the ``nvidia-cuda-nvrtc-cu12`` wheel (or one on the
loader path) and the exact options of :func:`segengine._cuda.nvrtc_options`.
"""

from __future__ import annotations

import ctypes
import glob
import os
import site
import sys


def _candidates():
    roots = list(site.getsitepackages()) + [site.getusersitepackages()] + sys.path
    for root in roots:
        yield from sorted(glob.glob(os.path.join(root, "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so*")))
        yield from sorted(glob.glob(os.path.join(root, "nvidia", "cu1*", "lib", "libnvrtc.so*")))
    yield "libnvrtc.so"
    yield "libnvrtc.so.12"
    yield "libnvrtc.so.13"


def load_nvrtc():
    """Return the loaded libnvrtc, or None when none is installed."""
    for path in _candidates():
        if "builtins" in os.path.basename(path) or ".alt." in os.path.basename(path):
            continue
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def compile_ptx(lib, source: str, name: str, options) -> tuple[int, str, int]:
    """Compile ``source``; return (nvrtc result code, log, PTX size)."""
    prog = ctypes.c_void_p()
    rc = lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None)
    if rc != 0:
        return rc, "nvrtcCreateProgram failed", 0
    opts = [o.encode() for o in options]
    arr = (ctypes.c_char_p * len(opts))(*opts)
    rc = lib.nvrtcCompileProgram(prog, len(opts), arr)
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    buf = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, buf)
    ptx_size = ctypes.c_size_t()
    if rc == 0:
        lib.nvrtcGetPTXSize(prog, ctypes.byref(ptx_size))
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return rc, buf.value.decode(errors="replace"), ptx_size.value
