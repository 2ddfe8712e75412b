"""Fixtures for the segengine.dask tests: a loopback LocalCluster and the three schedulers.

Import them into a test module with ``from tests.dask_fixtures import *``. The cluster is
bounded in time (start and close each time out) and listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import logging

import pytest

pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

__all__ = ["dask_client", "scheduler", "local_cluster", "compute"]


@contextlib.contextmanager
def local_cluster(n_workers=2, **kwargs):
    """A process-based LocalCluster on loopback with a Client that is not the default."""
    opts = dict(n_workers=n_workers, processes=True, threads_per_worker=1, host="127.0.0.1",
                dashboard_address=":0", silence_logs=logging.ERROR, worker_dashboard_address=None)
    opts.update(kwargs)
    with distributed.LocalCluster(**opts) as cluster:
        with distributed.Client(cluster, set_as_default=False, timeout="60s") as client:
            client.wait_for_workers(n_workers, timeout=60)
            yield client


@pytest.fixture(scope="session")
def dask_client():
    """2 worker processes, 1 thread each, shared by the whole test session."""
    with local_cluster() as client:
        yield client


@pytest.fixture(params=["synchronous", "threads", "distributed"])
def scheduler(request):
    """Each scheduler a user may run under: 'synchronous', 'threads', or a Client."""
    if request.param == "distributed":
        return request.getfixturevalue("dask_client")
    return request.param


def compute(x, scheduler):
    """``x.compute()`` under ``scheduler`` (a name or a Client), as a numpy array."""
    return x.compute(scheduler=scheduler)


def sparse_marker_volume(shape, n_markers, sigma, seed):
    """A smooth random float32 landscape and ``n_markers`` single-voxel int32 markers
    (labels 1..n) at random places: basins cross the block faces of any small chunking."""
    import numpy as np
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    image = ndi.gaussian_filter(rng.random(shape), sigma).astype(np.float32)
    markers = np.zeros(shape, np.int32)
    markers.flat[rng.choice(image.size, n_markers, replace=False)] = np.arange(1, n_markers + 1)
    return image, markers
