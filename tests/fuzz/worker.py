"""A long-lived child process that runs fuzz examples, and its parent-side handle.

The child is started with the ``spawn`` context (never ``fork`` of a process whose torch
threads are running), under a memory guard (``SEGENGINE_MEMORY_LIMIT``) and an address-space
limit, with faulthandler on so that a crash prints the native stack.  The parent sends one
:class:`~tests.fuzz.spec.Call` at a time over a pipe and waits with a timeout: when the
child dies (segfault, abort) or does not answer in time (hang), the outcome says so and the
next call starts a fresh child.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

__all__ = ["Worker", "Outcome", "MEMORY_LIMIT", "ADDRESS_SPACE_LIMIT"]

MEMORY_LIMIT = "4G"
ADDRESS_SPACE_LIMIT = 8 << 30


class Outcome(tuple):
    """``(kind, *details)``: kind is ok, raised, violation, crash, hang or harness."""

    @property
    def kind(self) -> str:
        return self[0]

    @property
    def failed(self) -> bool:
        """True when the outcome breaks the contract."""
        if self[0] == "raised":
            return not self[3]
        return self[0] in ("violation", "crash", "hang")

    def describe(self) -> str:
        if self[0] == "raised":
            return f"raised {self[1]}: {self[2]}" + ("" if self[3] else f"\n{self[4]}")
        if self[0] == "crash":
            return f"worker died: {self[1]}"
        return " ".join(str(x) for x in self)


def _limit_resources() -> None:
    import resource
    os.environ["SEGENGINE_MEMORY_LIMIT"] = MEMORY_LIMIT
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        return   # ASan reserves terabytes of address space; the memory limit above still holds
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = ADDRESS_SPACE_LIMIT if hard == resource.RLIM_INFINITY else min(ADDRESS_SPACE_LIMIT, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _child_main(conn, num_threads: int, preload: bool) -> None:
    """Worker loop: receive a Call, run it, send the outcome tuple; ``None`` stops."""
    import faulthandler
    import warnings
    _limit_resources()
    faulthandler.enable()
    warnings.simplefilter("ignore")
    if preload:  # import once, before the first example
        import torch
        torch.set_num_threads(num_threads)
        import segengine  # noqa: F401
    from tests.fuzz.spec import is_finite_spec, materialize
    from tests.fuzz.targets import run_call
    conn.send(("ready",))
    while True:
        try:
            call = conn.recv()
        except EOFError:
            return
        if call is None:
            return
        conn.send(run_call(call, materialize, is_finite_spec))


class Worker:
    """Parent-side handle of the child process; restarts it after a crash or hang.

    Parameters
    ----------
    timeout : float
        Seconds one example may take before it counts as a hang.
    num_threads : int
        ``torch.set_num_threads`` in the child (the ops' default thread count).
    preload : bool
        Import torch and segengine when the child starts (off: a fast start, for tests of
        the harness itself).
    """

    def __init__(self, timeout: float = 30.0, num_threads: int = 2, preload: bool = True):
        self.timeout = timeout
        self.num_threads = num_threads
        self.preload = preload
        self._ctx = mp.get_context("spawn")
        self._proc = None
        self._conn = None
        self.restarts = 0

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_child_main, args=(child, self.num_threads, self.preload),
                                        daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        try:
            if not parent.poll(120):
                raise TimeoutError("did not answer within 120 s")
            parent.recv()
        except (EOFError, TimeoutError) as exc:
            self._stop()
            raise RuntimeError(f"the fuzz worker failed to start ({exc!r}); see its stderr") from None

    def _stop(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            os.kill(self._proc.pid, signal.SIGKILL)
        if self._proc is not None:
            self._proc.join(5)
        self._proc = None
        self._conn = None

    def run(self, call) -> Outcome:
        """Run one call in the child; never raises for what the call does."""
        if self._proc is None or not self._proc.is_alive():
            self._start()
        start = time.monotonic()
        try:
            self._conn.send(call)
            if not self._conn.poll(self.timeout):
                self._stop()
                self.restarts += 1
                return Outcome(("hang", f"no answer after {self.timeout:.0f} s"))
            return Outcome(self._conn.recv())
        except (EOFError, BrokenPipeError, ConnectionResetError):
            self._proc.join(5)
            code = self._proc.exitcode
            self._stop()
            self.restarts += 1
            sig = f" ({signal.Signals(-code).name})" if code is not None and code < 0 else ""
            return Outcome(("crash", f"exit code {code}{sig} after {time.monotonic() - start:.1f} s"))

    def close(self) -> None:
        """Ask the child to stop, then make sure it has."""
        if self._conn is not None:
            try:
                self._conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            if self._proc is not None:
                self._proc.join(5)
        self._stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
