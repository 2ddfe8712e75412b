"""Timing and memory helpers shared by every ``bench_<op>.py``.

Each bench module exposes ``run(quick: bool) -> list[dict]``; each row has
``op``, ``case`` (the input, in words), ``impl`` (segengine or the peer's name),
``median_s``, ``peak_mb`` (peak resident memory above the baseline during one call),
``check`` (how the outputs compare with the peer's, in words), optional ``notes``, and
``gpu_peak_mb`` where the process uses a CUDA device.
``ratio`` (peer time / segengine time) is filled in by the runner per case.
"""

from __future__ import annotations

import gc
import os
import statistics
import threading
import time

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _fix_malloc() -> None:
    """Make freed large blocks go back to the OS, so resident memory tracks live memory.

    glibc raises its mmap threshold after large frees (up to 32 MiB), after which big
    buffers come from the heap and stay resident: a later call would then show no growth.
    Setting M_MMAP_THRESHOLD explicitly turns that adjustment off.
    """
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD: 1 MiB
        libc.mallopt(-1, 1 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


_fix_malloc()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def median_time(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_extra_memory_mb(fn, interval: float = 0.0005) -> float:
    """Peak resident memory above the pre-call level while ``fn()`` runs, in MiB.

    Sampled from /proc/self/statm by a background thread every ``interval`` seconds,
    so it sees allocations made by C/C++ code and by torch, not only by Python.
    """
    gc.collect()
    base = _rss_bytes()
    peak = base
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(interval)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        fn()
    finally:
        done.set()
        th.join()
    peak = max(peak, _rss_bytes())
    return (peak - base) / 2**20


def measure(op: str, case: str, impl: str, fn, repeat: int = 5, warmup: int = 1,
            check: str = "", notes: str = "") -> dict:
    """One benchmark row: median time and peak extra memory of ``fn``."""
    t = median_time(fn, repeat=repeat, warmup=warmup)
    row = {"op": op, "case": case, "impl": impl, "median_s": t, "check": check, "notes": notes}
    gpu = _cuda_in_use()
    if gpu:
        import torch
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    row["peak_mb"] = peak_extra_memory_mb(fn)
    if gpu:
        torch.cuda.synchronize()
        row["gpu_peak_mb"] = (torch.cuda.max_memory_allocated() - base) / 2**20
    return row


def _cuda_in_use() -> bool:
    """Whether this process has touched a CUDA device (then rows also get ``gpu_peak_mb``,
    the peak of torch's device allocations above the pre-call level)."""
    import sys
    torch = sys.modules.get("torch")
    return torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized()
