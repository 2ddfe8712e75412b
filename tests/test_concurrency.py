"""Every op called from 8 Python threads at once returns exactly what serial calls return.

The kernels release the GIL, so these calls really overlap (a barrier releases all threads
together, over a few rounds).  Each thread gets one of a few different inputs, so a kernel
that kept state between calls (a shared buffer, a static cache) would mix them up.
Results are compared bitwise (NaN == NaN) with the serial results.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import segengine
import segengine.densecrf as dcrf
import segengine.maxflow as maxflow
from segengine import metrics

THREADS = 8
ROUNDS = 3
VARIANTS = 4


def run_concurrently(fn, threads=THREADS, rounds=ROUNDS):
    """Call ``fn(i)`` in ``threads`` threads at once, ``rounds`` times; results per (round, i)."""
    barrier = threading.Barrier(threads)
    results, errors = {}, []

    def worker(i):
        for r in range(rounds):
            barrier.wait()
            try:
                results[r, i] = fn(i)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                errors.append(exc)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return results


def _flat(x):
    if isinstance(x, (tuple, list)):
        return [y for v in x for y in _flat(v)]
    if isinstance(x, torch.Tensor):
        return [x.detach().cpu().numpy()]
    return [np.asarray(x)]


def assert_bitwise_equal(a, b):
    fa, fb = _flat(a), _flat(b)
    assert len(fa) == len(fb)
    for x, y in zip(fa, fb):
        assert x.shape == y.shape and x.dtype == y.dtype
        assert np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"), "differs from the serial result"


def check_matches_serial(fn):
    """``fn(variant)`` in threads equals ``fn(variant)`` called serially, for every thread."""
    serial = [fn(v) for v in range(VARIANTS)]
    for (r, i), got in run_concurrently(lambda i: fn(i % VARIANTS)).items():
        assert_bitwise_equal(got, serial[i % VARIANTS])


def _gen(v):
    return torch.Generator().manual_seed(1000 + v)


def _logits(v, shape=(2, 4, 12, 15)):
    return torch.randn(shape, generator=_gen(v), dtype=torch.float32)


def _image(v, shape=(2, 3, 24, 30)):
    return torch.randint(0, 256, shape, generator=_gen(v + 50), dtype=torch.uint8)


# ------------------------------------------------------------------ the ops

def test_upsample_argmax():
    check_matches_serial(lambda v: segengine.upsample_argmax(_logits(v), size=(37, 41),
                                                             return_confidence=True))


def test_upsample_cross_entropy_forward_backward():
    def call(v):
        x = _logits(v).requires_grad_(True)
        target = torch.randint(0, 4, (2, 30, 33), generator=_gen(v))
        loss = segengine.upsample_cross_entropy(x, target, label_smoothing=0.1)
        loss.backward()
        return loss.detach(), x.grad
    check_matches_serial(call)


def test_dense_crf():
    check_matches_serial(lambda v: segengine.dense_crf(_logits(v, (2, 4, 24, 30)), _image(v),
                                                       iterations=3))


def test_permutohedral_and_bilateral_filter():
    def call(v):
        img = _image(v).float()
        feats = torch.randn(2, 3, 24, 30, generator=_gen(v))
        return (segengine.bilateral_filter(img, 5.0, 20.0),
                segengine.permutohedral_filter(img, feats, "symmetric"))
    check_matches_serial(call)


def test_shared_lattice_filtered_from_threads():
    lat = segengine.PermutohedralLattice(torch.randn(2, 4, 20, 20, generator=_gen(0)))
    check_matches_serial(lambda v: (lat.filter(torch.randn(2, 3, 20, 20, generator=_gen(v))),
                                    lat.adjoint(torch.randn(2, 2, 20, 20, generator=_gen(v))),
                                    lat.normalizer()))


def test_nn_densecrf_forward_backward():
    layer = segengine.nn.DenseCRF(num_classes=4, iterations=2)

    def call(v):
        x = _logits(v, (1, 4, 16, 16)).requires_grad_(True)
        out = layer(x, _image(v, (1, 3, 16, 16)))
        (grad,) = torch.autograd.grad(out.square().sum(), x)
        return out.detach(), grad
    check_matches_serial(call)


def _dcrf(v, w=20, h=16, n=3):
    d = dcrf.DenseCRF2D(w, h, n)
    rng = np.random.default_rng(v)
    d.setUnaryEnergy(rng.random((n, w * h), dtype=np.float32) * 3)
    d.addPairwiseGaussian(3, 3)
    d.addPairwiseBilateral(20, 13, rng.integers(0, 256, (h, w, 3), dtype=np.uint8), 10)
    return d


def test_densecrf_separate_objects():
    check_matches_serial(lambda v: _dcrf(v).inference(4))


def test_densecrf_shared_object_inference():
    crfs = [_dcrf(v) for v in range(VARIANTS)]
    check_matches_serial(lambda v: crfs[v].inference(3))


def test_graphcut_batch():
    def call(v):
        unary = torch.randn(4, 2, 20, 24, generator=_gen(v), dtype=torch.float64)
        img = torch.rand(4, 3, 20, 24, generator=_gen(v + 9))
        return segengine.graphcut(unary, pairwise=0.7, image=img, connectivity=8)
    check_matches_serial(call)


@pytest.mark.parametrize("fn", [segengine.alpha_expansion, segengine.alpha_beta_swap])
def test_multilabel(fn):
    def call(v):
        unary = torch.rand(4, 18, 21, generator=_gen(v), dtype=torch.float64) * 5
        return fn(unary, pairwise=1.0)
    check_matches_serial(call)


def test_fastmin():
    def call(v):
        rng = np.random.default_rng(v)
        unary = rng.random((15, 17, 3)) * 4
        binary = 1.0 - np.eye(3)
        return maxflow.fastmin.aexpansion_grid(unary, binary), maxflow.fastmin.abswap_grid(unary, binary)
    check_matches_serial(call)


def _graph(v, kind):
    rng = np.random.default_rng(v)
    g = maxflow.Graph[kind]()
    ids = g.add_grid_nodes((23, 19))
    g.add_grid_edges(ids, weights=rng.integers(1, 20, (23, 19)), symmetric=True)
    g.add_grid_tedges(ids, rng.integers(0, 60, (23, 19)), rng.integers(0, 60, (23, 19)))
    extra = g.add_nodes(5)
    g.add_edges(extra[:-1], extra[1:], [3, 4, 5, 6], [1, 1, 1, 1])
    g.add_tedges(extra, [9, 0, 4, 0, 2], [0, 7, 0, 5, 1])
    g.add_edge(int(ids[0, 0]), int(extra[0]), 2, 2)
    flow = g.maxflow()
    g.add_tedge(int(ids[5, 5]), 30, 0)
    g.mark_grid_nodes(ids)
    flow2 = g.maxflow(reuse_trees=True)
    return np.array([flow, flow2]), g.get_grid_segments(ids), np.array([g.get_segment(i) for i in extra])


@pytest.mark.parametrize("kind", [int, float])
def test_separate_maxflow_graphs(kind):
    check_matches_serial(lambda v: _graph(v, kind))


def test_grid_maxflow():
    def call(v):
        rng = np.random.default_rng(v)
        return maxflow.grid_maxflow(rng.random((30, 31)), rng.random((30, 31)), weights=0.3)
    check_matches_serial(call)


def test_watershed_and_batch():
    def call(v):
        rng = np.random.default_rng(v)
        img = rng.integers(0, 256, (3, 40, 45), dtype=np.uint8)
        fimg = rng.random((40, 45))
        return (segengine.watershed_batch(img, 12, watershed_line=True),
                segengine.watershed(fimg, 9, compactness=0.01),
                segengine.watershed(torch.from_numpy(fimg), 5, connectivity=2))
    check_matches_serial(call)


def test_metrics():
    def call(v):
        g = _gen(v)
        pred, target = torch.randint(0, 5, (3, 30, 30), generator=g), torch.randint(0, 5, (3, 30, 30), generator=g)
        cm = metrics.ConfusionMatrix(5, ignore_index=4)
        cm.update(pred, target)
        return (metrics.confusion_matrix(pred, target, 5), metrics.mean_iou(pred, target, 5),
                cm.compute(), cm.iou())
    check_matches_serial(call)


# ------------------------------------------------------------------ the check can fail

def test_check_detects_shared_state():
    """A deliberately racy function (shared buffer) is caught by the comparison."""
    shared = np.zeros(1000)

    def racy(v):
        shared[:] = v
        threading.Event().wait(0.001)  # let another thread overwrite the buffer
        return shared.copy()
    with pytest.raises(AssertionError):
        check_matches_serial(racy)
