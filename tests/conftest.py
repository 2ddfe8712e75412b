"""Shared fixtures: the devices every op is tested on and a seeded generator."""

import numpy as np
import pytest
import torch

from segengine import _cuda


def _devices():
    devs = ["cpu"]
    if torch.cuda.is_available() and _cuda.cupy_available():
        devs.append("cuda")
    return devs


DEVICES = _devices()


@pytest.fixture(params=DEVICES)
def device(request):
    """Every device an op runs on here: cpu always, cuda when a GPU and CuPy are present."""
    return torch.device(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def _seed_global_generators():
    """Tests that draw from the global generators see the same numbers whatever runs before."""
    torch.manual_seed(0)
    np.random.seed(0)


def pytest_collection_modifyitems(config, items):
    """Every test that runs on the CUDA device carries the ``cuda`` marker (``pytest -m cuda``
    selects the whole GPU suite), whether it got the device from the ``device`` fixture, a
    ``device`` parameter or an explicit mark."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if str(params.get("device", "")) == "cuda":
            item.add_marker(pytest.mark.cuda)
