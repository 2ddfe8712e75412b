"""Regression tests for the failures the fuzzer found (tests/fuzz/known.py), one per finding.

Each test feeds the reproducer's input, written directly; huge inputs are broadcast views
(``torch.zeros(()).expand(shape)``), which allocate nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segengine import metrics
from segengine.densecrf import utils as dutils
from segengine.nn import DenseCRF
from segengine.ops.graphcut import graphcut
from segengine.ops.lattice import PermutohedralLattice, bilateral_filter, permutohedral_filter
from segengine.ops.upsample import upsample_argmax, upsample_cross_entropy


# ------------------------------------------------------------ graphcut_empty_batch_with_image

def test_graphcut_empty_batch_with_image():
    unary = torch.zeros((0, 2, 3, 4))
    labels = graphcut(unary, image=torch.zeros((0, 1, 3, 4)))
    assert labels.shape == (0, 3, 4)
    assert labels.shape == graphcut(unary).shape


# ------------------------------------------------------------------ densecrf_utils_silent_inf

@pytest.mark.parametrize("sdims", [(55.8, 0.0), (1.0, -2.0), (float("inf"), 1.0), (float("nan"), 1.0)])
def test_create_pairwise_gaussian_rejects_bad_sdims(sdims):
    with pytest.raises(ValueError, match=r"sdims\[\d\] must be finite and > 0"):
        dutils.create_pairwise_gaussian(sdims, (5, 1))


@pytest.mark.parametrize("sdims, schan, bad", [((0.0, 1.0), 13.0, "sdims"), ((3.0, 3.0), 0.0, "schan"),
                                               ((3.0, 3.0), (13.0, float("nan"), 13.0), "schan")])
def test_create_pairwise_bilateral_rejects_bad_bandwidths(sdims, schan, bad):
    img = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(ValueError, match=bad):
        dutils.create_pairwise_bilateral(sdims, schan, img, chdim=2)


@pytest.mark.parametrize("clip", [0.0, -1e-5, float("nan")])
def test_unary_from_softmax_rejects_bad_clip(clip):
    sm = np.full((2, 3, 4), 0.5, np.float32)
    with pytest.raises(ValueError, match="clip must be finite and > 0"):
        dutils.unary_from_softmax(sm, clip=clip)


def test_densecrf_utils_valid_inputs_unchanged():
    feats = dutils.create_pairwise_gaussian((2.0, 4.0), (3, 5))
    assert np.array_equal(feats[1].reshape(3, 5), np.tile(np.arange(5, dtype=np.float32) / 4, (3, 1)))
    u = dutils.unary_from_softmax(np.full((2, 6), 0.5), clip=1e-5)
    assert np.all(np.isfinite(u))


# --------------------------------------------------------------- unary_from_labels_one_label

def test_unary_from_labels_one_label():
    labels = np.zeros((2, 2), np.int16)
    with pytest.raises(ValueError, match="n_labels must be >= 2"):
        dutils.unary_from_labels(labels, 1, 0.5, zero_unsure=True)


@pytest.mark.parametrize("gt_prob", [0.0, 1.0, 1.5, float("nan")])
def test_unary_from_labels_gt_prob_range(gt_prob):
    with pytest.raises(ValueError, match=r"gt_prob must be in \(0, 1\)"):
        dutils.unary_from_labels(np.ones((2, 2), np.int16), 2, gt_prob)


# ----------------------------------------------------------------- metrics_num_classes_overflow

def test_metrics_num_classes_overflow():
    labels = np.zeros((3, 5), np.int64)
    with pytest.raises(ValueError, match=r"num_classes must be at most 2\*\*30.*got 2147483648"):
        metrics.iou(labels, labels, 2147483648)
    with pytest.raises(ValueError, match="num_classes must be at most"):
        metrics.ConfusionMatrix(2**62)


def test_metrics_confusion_matrix_working_set(monkeypatch):
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "1G")
    labels = np.zeros((3, 5), np.int64)
    with pytest.raises(MemoryError, match="confusion matrix of 1073741824 classes"):
        metrics.confusion_matrix(labels, labels, 2**30)
    with pytest.raises(MemoryError, match="ConfusionMatrix"):
        metrics.ConfusionMatrix(2**20).compute()


def test_metrics_huge_labels_memory_error(monkeypatch):
    """torch_allocation_runtime_error: the int64 conversion of a huge broadcast label map."""
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "1G")
    big = torch.zeros((), dtype=torch.int32).expand(2**16, 2**16)
    with pytest.raises(MemoryError, match=r"labels of shape \(65536, 65536\)"):
        metrics.mean_iou(big, big, 3)


# ------------------------------------------------------------ nn_densecrf_num_classes_overflow

@pytest.mark.parametrize("num_classes", [2**31, 2**63 - 1])
def test_nn_densecrf_num_classes_overflow(num_classes):
    with pytest.raises(ValueError, match=f"num_classes must be at most 2\\*\\*30.*got {num_classes}"):
        DenseCRF(num_classes)


def test_nn_densecrf_num_classes_working_set(monkeypatch):
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "1G")
    with pytest.raises(MemoryError, match=r"DenseCRF\(num_classes=1073741824\)"):
        DenseCRF(2**30)
    assert DenseCRF(21).gaussian_compat.shape == (21, 21)


# ------------------------------------------------------- upsample_int_argument_beyond_int64

@pytest.mark.parametrize("kwargs, match", [
    ({"scale_factor": 1e30}, "H and W must stay below 2\\*\\*63"),
    ({"size": (2**63 - 1, 2**63 - 1)}, "8\\*B\\*H\\*W bytes must stay below 2\\*\\*63"),
    ({"size": (2**63, 2)}, "size must hold ints below 2\\*\\*63"),
])
def test_upsample_argmax_output_size_beyond_int64(kwargs, match):
    logits = torch.zeros((1, 2, 5, 5))
    with pytest.raises(ValueError, match=match):
        upsample_argmax(logits, **kwargs)


@pytest.mark.parametrize("ignore_index", [2**63, -2**63 - 1])
def test_upsample_cross_entropy_ignore_index_beyond_int64(ignore_index):
    logits = torch.zeros((1, 2, 5, 5))
    target = torch.zeros((1, 5, 5), dtype=torch.int64)
    with pytest.raises(ValueError, match=f"ignore_index must lie in the int64 range.*got {ignore_index}"):
        upsample_cross_entropy(logits, target, ignore_index=ignore_index)


def test_upsample_large_representable_output_memory_error(monkeypatch):
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "1G")
    with pytest.raises(MemoryError, match="upsample_argmax"):
        upsample_argmax(torch.zeros((1, 2, 5, 5)), size=(2**20, 2**20))


def test_upsample_half_logits_conversion_memory_error(monkeypatch):
    """torch_allocation_runtime_error: the float32 conversion of huge half-precision logits."""
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "1G")
    logits = torch.zeros((), dtype=torch.float16).expand(13, 3, 13, 2**31)
    with pytest.raises(MemoryError, match=r"upsample_argmax of logits \(13, 3, 13, 2147483648\)"):
        upsample_argmax(logits, size=4)
    target = torch.zeros((13, 4, 4), dtype=torch.int64)
    with pytest.raises(MemoryError, match="upsample_cross_entropy"):
        upsample_cross_entropy(logits, target)


def test_upsample_cross_entropy_target_conversion_memory_error(monkeypatch):
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "1G")
    target = torch.zeros((), dtype=torch.int32).expand(1, 2**17, 2**17)
    with pytest.raises(MemoryError, match=r"target \(1, 131072, 131072\)"):
        upsample_cross_entropy(torch.zeros((1, 2, 5, 5)), target)


# ----------------------------------------------------------- torch_allocation_runtime_error

def test_bilateral_filter_huge_broadcast_image_memory_error():
    """The reproducer: torch allocated the coordinate features before any guard."""
    image = torch.zeros((), dtype=torch.float32).expand(13, 3, 13, 2147483659)
    with pytest.raises(MemoryError, match=r"bilateral_filter on an image of shape \(13, 3, 13, 2147483659\)"):
        bilateral_filter(image, 72.3, 32.5)


def test_bilateral_filter_working_set_before_conversion(monkeypatch):
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "64M")
    image = torch.zeros((), dtype=torch.uint8).expand(1, 3, 2**12, 2**12)
    with pytest.raises(MemoryError, match="bilateral_filter"):
        bilateral_filter(image, 3.0, 13.0)


def test_permutohedral_filter_working_set(monkeypatch):
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "64M")
    feats = torch.zeros((), dtype=torch.float64).expand(1, 3, 2**12, 2**12)
    values = torch.zeros(()).expand(1, 2, 2**12, 2**12)
    with pytest.raises(MemoryError, match="permutohedral_filter of values"):
        permutohedral_filter(values, feats, "after")
    with pytest.raises(MemoryError, match="PermutohedralLattice on features"):
        PermutohedralLattice(feats)


def test_lattice_valid_input_unchanged():
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.integers(0, 256, (1, 3, 9, 11), dtype=np.uint8))
    out = bilateral_filter(image, 3.0, 13.0)
    assert out.shape == (1, 3, 9, 11) and bool(torch.isfinite(out).all())


def test_graphcut_huge_broadcast_unary_memory_error():
    """Fixed before this file: graphcut's guard runs before its isfinite pass."""
    unary = torch.zeros(()).expand(13, 2, 13, 2147483659)
    with pytest.raises(MemoryError, match="graphcut"):
        graphcut(unary)


# -------------------------------------------------------- graphcut_pairwise_beyond_float32

def test_graphcut_pairwise_beyond_float32():
    unary = torch.zeros((2, 2, 4, 3), dtype=torch.float32)
    with pytest.raises(ValueError, match=r"pairwise must be representable in the unary's dtype "
                                         r"torch.float32.*got 1e\+300"):
        graphcut(unary, pairwise=1e300)
    assert graphcut(unary.double(), pairwise=1e300).shape == (2, 4, 3)


def test_nn_densecrf_forward_huge_broadcast_memory_error():
    """torch_allocation_runtime_error, reproduced by DenseCRF.forward: image checks and
    features ran on [B, C, H, W] before any guard."""
    layer = DenseCRF(3)
    big = torch.zeros(()).expand(1, 3, 4, 2147483659)
    with pytest.raises(MemoryError, match=r"DenseCRF forward on logits \(1, 3, 4, 2147483659\)"):
        layer(big, big)


def test_unary_from_softmax_clip_below_the_input_precision():
    """float16 probabilities with clip=1e-30: the floor underflows to 0 in float16, which
    gave inf unaries; the floor now holds (computed in float32)."""
    from segengine.densecrf.utils import unary_from_softmax
    sm = np.zeros((4, 13), dtype=np.float16)
    sm[0] = 1
    u = unary_from_softmax(sm, clip=1e-30)
    assert np.all(np.isfinite(u)) and u.dtype == np.float32
    assert np.allclose(u[1:], -np.log(np.float32(1e-30)))
    # a floor that float16 can hold keeps pydensecrf's float16 arithmetic
    sm = np.full((2, 3), 0.5, dtype=np.float16)
    assert np.array_equal(unary_from_softmax(sm, clip=1e-3), (-np.log(sm)).reshape(2, -1).astype(np.float32))
