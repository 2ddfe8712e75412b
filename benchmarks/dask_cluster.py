"""A loopback dask.distributed cluster for the benchmarks, and a sampler of its workers' memory.

``worker_cluster(n, memory_limit)`` starts ``n`` worker processes (1 thread each) on
127.0.0.1 under nannies that enforce ``memory_limit``. ``WorkerMemory`` polls the resident
memory of every worker process from a thread of the benchmark process (psutil, no task sent
to the workers, so the sampling does not disturb them) and counts restarts (a nanny that
kills a worker over its limit starts a new process with a new pid).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time


@contextlib.contextmanager
def worker_cluster(n_workers: int, memory_limit="auto", threads_per_worker: int = 1,
                   local_directory=None, memory_fractions=None):
    """``(cluster, client)`` of a process-based LocalCluster on loopback, closed on exit.

    ``local_directory``: where the workers spill to disk (default dask's temporary folder).
    ``memory_fractions``: dask's worker memory thresholds to override, e.g.
    ``{"target": 0.4, "spill": 0.5}`` (fractions of ``memory_limit``).
    """
    import dask
    import distributed

    config = {f"distributed.worker.memory.{k}": v for k, v in (memory_fractions or {}).items()}
    with dask.config.set(config):  # the nannies hand this config to their worker processes
        cluster = distributed.LocalCluster(n_workers=n_workers, processes=True,
                                           threads_per_worker=threads_per_worker, host="127.0.0.1",
                                           memory_limit=memory_limit, dashboard_address=None,
                                           worker_dashboard_address=None, silence_logs=logging.ERROR,
                                           local_directory=local_directory)
    try:
        client = distributed.Client(cluster, set_as_default=False, timeout="60s")
        try:
            client.wait_for_workers(n_workers, timeout=120)
            yield cluster, client
        finally:
            client.close()
    finally:
        cluster.close()


class WorkerMemory:
    """Peak RSS of each worker process of a LocalCluster while a ``with`` block runs.

    Attributes (after the block)
    ----------------------------
    peak : dict name -> bytes
        Largest resident set seen per worker (over all its processes if it was restarted).
    idle : dict name -> bytes
        Resident set when sampling started.
    restarts : dict name -> int
        New worker processes seen under the same nanny.
    spill_peak : int
        Largest total size of the ``spill_dir`` folder(s) seen (bytes), when given.
    cpu : dict name -> seconds
        CPU time (user + system) the worker process used while sampling: with the wall
        time it shows whether a worker computed, waited for work, or waited for a core that
        another program held.
    """

    def __init__(self, cluster, interval: float = 0.05, spill_dir=None):
        self.cluster = cluster
        self.interval = interval
        self.spill_dir = spill_dir
        self.spill_peak = 0
        self._last_du = 0.0
        self.peak: dict = {}
        self.idle: dict = {}
        self.restarts: dict = {}
        self._cpu0: dict = {}
        self._cpu1: dict = {}
        self._pids: dict = {}
        self._done = threading.Event()
        self._thread = None

    def _sample(self):
        import psutil

        for name, nanny in list(self.cluster.workers.items()):
            pid = getattr(nanny, "pid", None)
            if pid is None:
                continue
            if name in self._pids and self._pids[name] != pid:
                self.restarts[name] = self.restarts.get(name, 0) + 1
            self._pids[name] = pid
            try:
                proc = psutil.Process(pid)
                rss = proc.memory_info().rss
                times = proc.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            used = times.user + times.system
            self._cpu0.setdefault((name, pid), used)
            self._cpu1[(name, pid)] = used
            self.idle.setdefault(name, rss)
            self.peak[name] = max(self.peak.get(name, 0), rss)
            self.restarts.setdefault(name, 0)

    def _sample_spill(self):
        """Bytes under ``spill_dir`` (a folder or a list of folders; every 2 s): what the
        workers spilled to disk."""
        if not self.spill_dir or time.monotonic() - self._last_du < 2.0:
            return
        self._last_du = time.monotonic()
        folders = [self.spill_dir] if isinstance(self.spill_dir, (str, os.PathLike)) else self.spill_dir
        total = 0
        for root, _, files in (entry for folder in folders for entry in os.walk(folder)):
            for f in files:
                try:
                    total += os.stat(os.path.join(root, f)).st_size
                except OSError:
                    pass
        self.spill_peak = max(self.spill_peak, total)

    def _loop(self):
        while not self._done.is_set():
            self._sample()
            self._sample_spill()
            time.sleep(self.interval)

    def __enter__(self):
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self._sample()
        return False

    @property
    def cpu(self) -> dict:
        out: dict = {}
        for (name, pid), used in self._cpu1.items():
            out[name] = out.get(name, 0.0) + used - self._cpu0[(name, pid)]
        return out

    def extra_mb(self) -> float:
        """Sum over workers of peak minus idle resident memory, MiB."""
        return sum(self.peak[n] - self.idle.get(n, 0) for n in self.peak) / 2**20

    def summary(self, limit_bytes=None) -> str:
        """'worker 0 peak 612 MiB, CPU 80 s, worker 1 ... (limit 768 MiB each), 0 restarts'."""
        cpu = self.cpu
        parts = [f"worker {n} peak {self.peak[n] / 2**20:.0f} MiB, CPU {cpu.get(n, 0):.0f} s"
                 for n in sorted(self.peak, key=str)]
        text = ", ".join(parts)
        if limit_bytes:
            text += f" (limit {limit_bytes / 2**20:.0f} MiB each)"
        text += f", {sum(self.restarts.values())} restarts"
        if self.spill_dir:
            text += f", at most {self.spill_peak / 2**30:.1f} GiB on disk at once (spill folders)"
        return text

    def over_limit(self, limit_bytes) -> bool:
        """True when a worker's peak RSS passed ``limit_bytes`` or a worker was restarted."""
        return any(p > limit_bytes for p in self.peak.values()) or any(self.restarts.values())
