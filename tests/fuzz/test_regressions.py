"""Inputs from the fuzz runs that probe the compiled kernels' own guards (run in-process).

The fuzzer found no crash, hang or wrong exception in the kernels of csrc/cpu (crf,
permutohedral, watershed, upsample) or their bindings; these are the edge cases it drove
them through that a regression there would turn into a crash or a silent NaN.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import segengine


@pytest.mark.parametrize("scale", [1e6, 1e12, 1e30])
def test_lattice_refuses_coordinates_past_its_key_range(scale):
    """Elevated coordinates beyond 2^22 would overflow the integer lattice keys."""
    f = torch.randn(1, 5, 20, 20, generator=torch.Generator().manual_seed(0)) * scale
    with pytest.raises(ValueError, match="features too large"):
        segengine.PermutohedralLattice(f)


@pytest.mark.parametrize("sigma", [1e-30, 1e-10])
def test_bilateral_filter_tiny_sigma_raises(sigma):
    img = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 255
    with pytest.raises(ValueError):
        segengine.bilateral_filter(img, sigma, 10.0)


def test_dense_crf_huge_bandwidths_stay_finite():
    """sxy = 1e30 puts every pixel on one lattice vertex: still a finite distribution."""
    g = torch.Generator().manual_seed(2)
    q = segengine.dense_crf(torch.randn(1, 3, 16, 16, generator=g), torch.rand(1, 3, 16, 16, generator=g) * 255,
                            gaussian_sxy=1e30, bilateral_sxy=1e30, bilateral_srgb=1e30)
    assert torch.isfinite(q).all() and torch.allclose(q.sum(1), torch.ones(1, 16, 16))


def test_upsample_argmax_huge_logits_zero_stride():
    """Broadcast (zero-stride) logits with values near the float32 limit: labels in range."""
    x = torch.full((1, 4, 1, 1), 3e38).expand(1, 4, 5, 7)
    labels, conf = segengine.upsample_argmax(x, size=(9, 11), return_confidence=True)
    assert labels.shape == (1, 9, 11) and int(labels.max()) == 0 and torch.isfinite(conf).all()


def test_watershed_negative_strides_and_one_element():
    img = np.flip(np.arange(30, dtype=np.float32).reshape(5, 6))
    assert np.array_equal(segengine.watershed(img, 2), segengine.watershed(img.copy(), 2))
    out = segengine.watershed([1.5], None)  # a plain list, one element
    assert np.asarray(out).shape == (1,)
