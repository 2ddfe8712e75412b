"""segengine._cuda without a GPU: source lookup, options, the missing-CuPy error, and the
launch plumbing (current stream looked up at every launch, typed arguments) against a
stand-in CuPy module."""

import sys
import types

import numpy as np
import pytest
import torch

from segengine import _cuda


def test_sources_and_options():
    root = _cuda.csrc_dir()
    assert (root / "cuda" / "upsample.cu").is_file()
    assert (root / "common" / "seg_common.h").is_file()
    opts = _cuda.nvrtc_options()
    assert f"-I{root / 'common'}" in opts and "--std=c++17" in opts
    assert "extern \"C\" __global__" in _cuda.cuda_source("upsample")


def test_grid_for():
    assert _cuda.grid_for(0) == (1,)
    assert _cuda.grid_for(257, 256) == (2,)
    assert _cuda.grid_for(10**12, 256)[0] == 65535 * 8  # grid-stride loops cover the rest


def test_ptr_types():
    assert _cuda.ptr(None) == np.uint64(0) and isinstance(_cuda.ptr(None), np.uint64)
    t = torch.zeros(3)
    assert int(_cuda.ptr(t)) == t.data_ptr()


def test_missing_cupy_names_the_extra(monkeypatch):
    monkeypatch.setattr(_cuda, "cupy_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"segengine\[cuda12\].*segengine\[cuda13\]"):
        _cuda.launch(torch.device("cuda", 0), "upsample", "k", (1,), (1,), ())


class _FakeStream:
    def __init__(self, ptr, index):
        self.cuda_stream = ptr
        self.device = torch.device("cuda", index)


def test_launch_uses_current_stream_each_time(monkeypatch):
    calls = []

    class Ctx:
        def __init__(self, *a):
            self.args = a

        def __enter__(self):
            calls.append(("enter",) + self.args)

        def __exit__(self, *exc):
            return False

    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(
        Device=lambda i: Ctx("device", i),
        ExternalStream=lambda ptr, index: Ctx("stream", ptr, index)))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(_cuda, "cupy_available", lambda: True)
    streams = iter([_FakeStream(111, 0), _FakeStream(222, 0)])
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: next(streams))

    def kernel(grid, block, args, shared_mem=0):
        calls.append(("kernel", grid, block, args, shared_mem))

    monkeypatch.setattr(_cuda, "_kernel", lambda index, source, name: kernel)
    _cuda._stream.cache_clear()
    _cuda._device.cache_clear()

    args = (np.uint64(5), np.int64(7), np.float32(0.5))
    _cuda.launch(torch.device("cuda", 0), "upsample", "k", (4,), (256,), args)
    _cuda.launch(torch.device("cuda", 0), "upsample", "k", [2, 1], [128], list(args))
    streams_used = [c[1:] for c in calls if c[0] == "enter" and c[1] == "stream"]
    assert streams_used == [("stream", 111, 0), ("stream", 222, 0)]
    kernels = [c for c in calls if c[0] == "kernel"]
    assert kernels[0][1:] == ((4,), (256,), args, 0)
    assert kernels[1][1] == (2, 1) and kernels[1][3] == args
    _cuda._stream.cache_clear()
    _cuda._device.cache_clear()


def test_launch_makes_each_stream_view_once(monkeypatch):
    made = []

    class Ctx:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def external_stream(ptr, index):
        made.append(ptr)
        return Ctx()

    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(Device=lambda i: Ctx(),
                                                            ExternalStream=external_stream))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(_cuda, "cupy_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: _FakeStream(333, 0))
    monkeypatch.setattr(_cuda, "_kernel", lambda index, source, name: lambda *a, **k: None)
    _cuda._stream.cache_clear()
    _cuda._device.cache_clear()
    try:
        for _ in range(5):
            _cuda.launch(torch.device("cuda", 0), "upsample", "k", (1,), (1,), [None, np.int64(1)])
        assert made == [333]
    finally:
        _cuda._stream.cache_clear()
        _cuda._device.cache_clear()


def test_launch_rejects_untyped_arguments(monkeypatch):
    monkeypatch.setattr(_cuda, "cupy_available", lambda: True)
    monkeypatch.setattr(_cuda, "_kernel", lambda index, source, name: None)
    monkeypatch.setattr(_cuda, "_stream", lambda index, handle: None)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: _FakeStream(1, 0))
    with pytest.raises(TypeError, match="numpy scalar"):
        _cuda.launch(torch.device("cuda", 0), "upsample", "k", (1,), (1,), [3])
