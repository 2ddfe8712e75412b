"""Working-set guard: dense_crf, watershed and watershed_batch refuse, with MemoryError and
before allocating anything of the input's size, a call whose estimated working set exceeds
the memory available (SEGENGINE_MEMORY_LIMIT here, so that the tests do not depend on the
machine)."""

import numpy as np
import pytest
import torch

import segengine
from segengine.ops._memory import _parse_bytes, available_memory, check_working_set
from segengine.ops.crf import crf_working_set
from segengine.ops.watershed import ws_working_set

HUGE = 10**6  # 10^6 x 10^6 = 10^12 pixels: terabytes of working set

RNG = np.random.default_rng(0)
LOGITS = torch.from_numpy(RNG.standard_normal((1, 3, 64, 64), dtype=np.float32))
IMAGE = torch.from_numpy(RNG.integers(0, 256, (1, 3, 64, 64), dtype=np.uint8))
WS_IMAGE = RNG.random((256, 256))
WS_MARKERS = np.zeros((256, 256), dtype=np.int32)
WS_MARKERS[::64, ::64] = 1 + np.arange(16).reshape(4, 4)

NORMAL_CALLS = {
    "dense_crf": lambda: segengine.dense_crf(LOGITS, IMAGE, iterations=1),
    "watershed": lambda: segengine.watershed(WS_IMAGE, WS_MARKERS),
    "watershed_batch": lambda: segengine.watershed_batch(WS_IMAGE[None], WS_MARKERS[None]),
}


def _zeros(shape, dtype):
    """A tensor of ``shape`` that owns one element (zero strides): declares, allocates nothing."""
    return torch.zeros((), dtype=dtype).expand(*shape)


HUGE_CALLS = {
    "dense_crf": lambda: segengine.dense_crf(_zeros((1, 2, HUGE, HUGE), torch.float32),
                                             _zeros((1, 3, HUGE, HUGE), torch.uint8)),
    "dense_crf-float-image": lambda: segengine.dense_crf(_zeros((1, 2, HUGE, HUGE), torch.float64),
                                                         _zeros((1, 3, HUGE, HUGE), torch.float32)),
    "watershed": lambda: segengine.watershed(np.broadcast_to(np.float32(0), (HUGE, HUGE)),
                                             np.broadcast_to(np.int32(1), (HUGE, HUGE))),
    "watershed-tensor": lambda: segengine.watershed(_zeros((HUGE, HUGE), torch.uint8), None),
    "watershed-seed-count": lambda: segengine.watershed(np.broadcast_to(np.uint8(0), (HUGE, HUGE)), 5),
    "watershed_batch": lambda: segengine.watershed_batch(
        np.broadcast_to(np.float64(0), (10**4, 10**4, 10**4)), None,
        mask=np.broadcast_to(True, (10**4, 10**4))),
}


@pytest.fixture
def no_limit(monkeypatch):
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "off")


@pytest.mark.parametrize("name", list(NORMAL_CALLS))
def test_small_limit_refuses_a_normal_call(monkeypatch, name):
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "64K")
    with pytest.raises(MemoryError, match=rf"^{name} on .*SEGENGINE_MEMORY_LIMIT"):
        NORMAL_CALLS[name]()


@pytest.mark.parametrize("limit", ["off", "64G", None])
@pytest.mark.parametrize("name", list(NORMAL_CALLS))
def test_normal_call_runs_without_a_small_limit(monkeypatch, name, limit):
    if limit is None:  # MemAvailable
        monkeypatch.delenv("SEGENGINE_MEMORY_LIMIT", raising=False)
    else:
        monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", limit)
    out = NORMAL_CALLS[name]()
    assert out.shape[-2:] == (64, 64) if name == "dense_crf" else out.shape[-2:] == (256, 256)


@pytest.mark.parametrize("name", list(HUGE_CALLS))
def test_huge_declared_input_raises_memory_error(monkeypatch, name):
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "1T")  # 1 TiB: far more than this machine
    op = name.split("-")[0]
    with pytest.raises(MemoryError, match=rf"^{op} on .* needs about \d+\.\d+ GiB"):
        HUGE_CALLS[name]()


def test_working_set_grows_with_the_input():
    small = crf_working_set(1, 1000, 21, [2, 5], False)
    assert crf_working_set(2, 1000, 21, [2, 5], False, chunk_images=2) == 2 * small
    # a batch runs a chunk of images at a time: only the marginals (and an input copy) scale with B
    per_image = 1000 * 4 * 21
    assert crf_working_set(8, 1000, 21, [2, 5], False, chunk_images=1) == small + 7 * per_image
    assert crf_working_set(1, 1000, 21, [2, 5], True) > small
    assert crf_working_set(1, 1000, 21, [2], False) < small
    # at least the marginals, the unary buffer and the lattice entries
    assert small > 1000 * (4 * 21 + 4 * 24 + 8 * 3 + 8 * 6)
    one = ws_working_set(1, 1000, 1, 0, 4, False, False)
    assert ws_working_set(8, 1000, 2, 0, 4, False, False) < 8 * one
    assert ws_working_set(1, 1000, 1, 0, 4, False, True) > one
    assert one >= 1000 * (4 + 1 + 16)  # labels, flags, one heap item per pixel


@pytest.mark.parametrize("text,expected", [("2G", 2 << 30), ("512M", 512 << 20), ("1.5K", 1536),
                                           ("4096", 4096), ("2GiB", 2 << 30), ("1t", 1 << 40),
                                           ("off", None), ("0", None), ("", None)])
def test_parse_limit(text, expected):
    assert _parse_bytes(text) == expected


def test_bad_limit_raises(monkeypatch):
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="SEGENGINE_MEMORY_LIMIT"):
        available_memory()


def test_check_working_set(monkeypatch):
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "1M")
    check_working_set(1 << 20, "x")
    with pytest.raises(MemoryError, match="^op on y needs about"):
        check_working_set((1 << 20) + 1, "op on y")
    monkeypatch.delenv("SEGENGINE_MEMORY_LIMIT")
    assert available_memory() is None or available_memory() > 0
