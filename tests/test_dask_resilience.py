"""segengine.dask on a cluster that loses a worker: a worker process is killed (SIGKILL) while
the blockwise watershed runs and its output is being written to zarr; dask.distributed
recomputes the lost work and the written labels are identical to an undisturbed run."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time

import numpy as np
import pytest

from tests.dask_fixtures import local_cluster, sparse_marker_volume

da = pytest.importorskip("dask.array")
pytest.importorskip("zarr")

import segengine.dask as sd  # noqa: E402
from segengine.dask._io import is_complete, open_array, save_array  # noqa: E402

SHAPE, CHUNKS = (32, 48, 48), (16, 24, 24)  # 8 blocks
BLOCK_SECONDS = 0.5  # each input block takes this long, so tasks are running when the kill comes


def _volume():
    """Smooth random 3-D landscape and 40 sparse markers (basins cross block faces)."""
    return sparse_marker_volume(SHAPE, 40, 3, seed=11)


def _slow_block(block):
    time.sleep(BLOCK_SECONDS)
    return block


def _wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_worker_killed_mid_computation(tmp_path):
    image, markers = _volume()
    expected = sd.watershed(da.from_array(image, chunks=CHUNKS), markers).compute(scheduler="synchronous")
    assert set(np.unique(expected)) == set(range(1, 41))

    slow_image = da.from_array(image, chunks=CHUNKS).map_blocks(_slow_block, dtype=image.dtype)
    labels = sd.watershed(slow_image, markers)
    out = tmp_path / "labels.zarr"

    with local_cluster(n_workers=2) as client, concurrent.futures.ThreadPoolExecutor(1) as pool:
        pids = client.run(os.getpid)  # worker address -> worker process id (not the nanny's)
        assert len(pids) == 2
        writing = pool.submit(save_array, labels, out, scheduler=client)

        def busy_worker():  # a worker that runs a task now and already holds results
            processing, holding = client.processing(), client.has_what()
            return next((w for w in pids if processing.get(w) and holding.get(w)), None)

        victim = _wait_for(busy_worker, 60, "a worker with running tasks and results in memory")
        assert not writing.done(), "the computation ended before a worker could be killed"
        os.kill(pids[victim], signal.SIGKILL)

        writing.result(timeout=120)
        assert victim not in client.scheduler_info()["workers"]  # it really died mid-run

    assert is_complete(out)
    np.testing.assert_array_equal(open_array(out).compute(scheduler="synchronous"), expected)
