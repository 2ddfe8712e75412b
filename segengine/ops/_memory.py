"""Working-set guard: refuse an allocation that cannot fit before the kernel starts.

A kernel that asks for more memory than the machine has is not refused by Linux: pages are
handed out lazily and the process is killed by the OOM killer later, losing the user's
session.  Each op estimates its working set from the input sizes (a few array sizes, the
same arithmetic as its C++ allocations) and calls :func:`check_working_set` first, which
raises ``MemoryError`` at once when the estimate exceeds the memory available.

The limit is ``MemAvailable`` of ``/proc/meminfo`` (physical memory not in use, counting
reclaimable caches), read at each call.  ``SEGENGINE_MEMORY_LIMIT`` overrides it (bytes,
or with a suffix K/M/G/T: ``SEGENGINE_MEMORY_LIMIT=2G``; ``0`` or ``off`` disables the
check).  Where neither is known (no /proc) the check passes.
"""

from __future__ import annotations

import os

__all__ = ["available_memory", "check_working_set"]

_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _parse_bytes(text: str) -> int | None:
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    if t in ("", "0", "OFF", "NONE"):
        return None
    unit = t[-1] if t[-1] in _SUFFIX else ""
    number = t[:-1] if unit else t
    try:
        return int(float(number) * _SUFFIX[unit])
    except ValueError:
        raise ValueError(f"SEGENGINE_MEMORY_LIMIT must be a byte count such as 2G or 512M, got {text!r}")


def available_memory() -> int | None:
    """Bytes an op may use now: ``SEGENGINE_MEMORY_LIMIT`` if set, else MemAvailable; None
    when unknown or disabled."""
    env = os.environ.get("SEGENGINE_MEMORY_LIMIT")
    if env is not None:
        return _parse_bytes(env)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_working_set(nbytes: float, what: str) -> None:
    """Raise ``MemoryError`` when an op's estimated working set cannot fit.

    Parameters
    ----------
    nbytes : float
        Estimated bytes the op will allocate (outputs and temporaries together).
    what : str
        The call and its input, for the message (e.g. ``"dense_crf on [1, 21, 9000, 9000]"``).
    """
    limit = available_memory()
    if limit is not None and nbytes > limit:
        source = ("SEGENGINE_MEMORY_LIMIT" if os.environ.get("SEGENGINE_MEMORY_LIMIT", "").strip()
                  else "MemAvailable; set SEGENGINE_MEMORY_LIMIT to change the limit")
        raise MemoryError(f"{what} needs about {nbytes / 2**30:.2f} GiB of working memory, but only "
                          f"{limit / 2**30:.2f} GiB is available ({source})")
