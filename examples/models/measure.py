"""Per-step wall time and peak memory of a training step on the CPU.

Peak memory of a step = the highest resident set size (RSS, from ``/proc/self/statm``) seen
while the step runs, minus the RSS when it starts: the step's working set (activations kept
for backward, the loss head's tensors, gradients, temporaries), not the parameters, optimizer
state and data that were resident before it. A background thread samples the RSS every
millisecond, so it sees memory allocated by C++ (oneDNN, segengine's kernels) as well as by
Python. For freed memory to leave the RSS (and a later step's peak to be visible), glibc is
told to serve blocks of 1 MiB and more with ``mmap`` and to trim its heap
(:func:`return_freed_memory`, called on import).

:func:`max_rss_mb` (``getrusage``'s ``ru_maxrss``) is the whole process's high-water mark:
measured in a fresh child process around one configuration it bounds the sampled figure
from above (``benchmarks/real_models.py`` reports both).
"""

from __future__ import annotations

import os
import resource
import threading
import time

_PAGE = os.sysconf("SC_PAGE_SIZE")
_MIB = 2.0 ** 20


def return_freed_memory() -> None:
    """glibc: large blocks through mmap, heap trimmed above 1 MiB, so RSS tracks live memory."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 20)   # M_MMAP_THRESHOLD (fixed: glibc stops adapting it)
        libc.mallopt(-1, 1 << 20)   # M_TRIM_THRESHOLD
    except (OSError, AttributeError):   # not glibc: RSS may keep freed blocks
        pass


return_freed_memory()


def rss_mb() -> float:
    """Resident set size of this process now, MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE / _MIB


def max_rss_mb() -> float:
    """Peak resident set size of this process so far (``ru_maxrss``, KiB on Linux), MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class StepMeter:
    """Context manager timing one step and sampling its peak RSS above the RSS at entry.

    After the ``with`` block: ``seconds`` (wall time), ``peak_extra_mb`` (MiB) and
    ``rss_before_mb``.
    """

    def __init__(self, interval_s: float = 0.001):
        self.interval_s = interval_s
        self.seconds = self.peak_extra_mb = self.rss_before_mb = float("nan")
        self._peak = 0.0
        self._stop = threading.Event()
        self._thread = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, rss_mb())
            time.sleep(self.interval_s)

    def __enter__(self) -> "StepMeter":
        self.rss_before_mb = self._peak = rss_mb()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._t0
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, rss_mb())
        self.peak_extra_mb = self._peak - self.rss_before_mb
