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
