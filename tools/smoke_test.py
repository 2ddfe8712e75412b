"""Smoke test of an installed segengine: each op family once, on inputs whose answer is known.

Run from any folder (not the checkout, so that the installed package is the one imported):
``python tools/smoke_test.py``. It needs only segengine's own dependencies (numpy, torch), so
it is the test command of the release wheels (``[tool.cibuildwheel]`` in pyproject.toml) and of
``.ci/run``'s wheel and sdist checks. Exits 0 and prints one line per check, or raises.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def check_upsample() -> str:
    import segengine

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, 9, generator=g, dtype=torch.float64)
    target = torch.randint(0, 5, (2, 28, 36), generator=g)
    up = F.interpolate(logits, size=(28, 36), mode="bilinear", align_corners=False)
    labels = segengine.upsample_argmax(logits, size=(28, 36))
    assert torch.equal(labels, up.argmax(1)), "upsample_argmax differs from F.interpolate(...).argmax(1)"
    loss = segengine.upsample_cross_entropy(logits, target)
    ref = F.cross_entropy(up, target)
    assert torch.allclose(loss, ref, rtol=1e-10, atol=0), (loss, ref)
    return f"upsample_argmax == interpolate+argmax, upsample_cross_entropy {loss.item():.6f} == {ref.item():.6f}"


def check_crf() -> str:
    import segengine

    # Two flat regions; the unaries favour the right label everywhere but in a noisy 5 %.
    rng = np.random.default_rng(0)
    H, W = 40, 48
    truth = np.zeros((H, W), np.int64)
    truth[:, W // 2:] = 1
    image = np.where(truth[None] == 1, 200, 30).astype(np.uint8).repeat(3, 0)[None]  # [1,3,H,W]
    noisy = np.where(rng.random((H, W)) < 0.05, 1 - truth, truth)
    logits = np.stack([noisy == 0, noisy == 1]).astype(np.float32)[None] * 2.0  # [1,2,H,W]
    q = segengine.dense_crf(logits, image, iterations=5)
    assert isinstance(q, np.ndarray) and q.shape == (1, 2, H, W) and q.dtype == np.float32
    assert np.allclose(q.sum(1), 1, atol=1e-5), "marginals do not sum to 1"
    before = (noisy != truth).mean()
    after = (q[0].argmax(0) != truth).mean()
    assert after < before / 4, (before, after)
    smooth = segengine.bilateral_filter(np.full((1, 1, 16, 16), 7.0, np.float32), 4.0, 10.0)
    assert np.allclose(smooth, 7.0, rtol=1e-5), "bilateral filter of a constant image is not that constant"
    return f"dense_crf: label errors {before:.3f} -> {after:.3f}; bilateral_filter keeps a constant image"


def check_graph_cuts() -> str:
    import segengine
    import segengine.maxflow as maxflow

    # PyMaxflow's tutorial graph: maximum flow 8, node 0 on the sink side, node 1 on the source side.
    g = maxflow.Graph[int]()
    nodes = g.add_nodes(2)
    g.add_edge(nodes[0], nodes[1], 1, 2)
    g.add_tedge(nodes[0], 2, 5)
    g.add_tedge(nodes[1], 9, 4)
    flow = g.maxflow()
    segments = [g.get_segment(n) for n in nodes]
    assert flow == 8 and segments == [1, 0], (flow, segments)
    # A graph cut and an alpha expansion whose unaries alone decide (no smoothing wanted).
    rng = np.random.default_rng(1)
    unary = rng.random((3, 12, 10))
    labels, energy = segengine.alpha_expansion(unary, pairwise=0.0)
    assert np.array_equal(labels, unary.argmin(0)), "alpha_expansion with no pairwise term is not argmin"
    assert np.isclose(energy, unary.min(0).sum()), (energy, unary.min(0).sum())
    two = torch.from_numpy(rng.random((1, 2, 12, 10)))
    cut = segengine.graphcut(two, pairwise=0.0)
    assert torch.equal(cut, two.argmin(1).to(two.dtype)), "graphcut with no pairwise term is not argmin"
    return f"maxflow.Graph flow {flow}, segments {segments}; alpha_expansion and graphcut == argmin"


def check_watershed() -> str:
    import segengine

    # Two basins separated by a ridge at column 5: each marker floods its own side.
    image = np.tile(np.array([0, 1, 2, 3, 4, 9, 4, 3, 2, 1, 0], np.float64), (6, 1))
    markers = np.zeros(image.shape, np.int32)
    markers[:, 0] = 1
    markers[:, -1] = 2
    labels = segengine.watershed(image, markers)
    assert np.all(labels[:, :5] == 1) and np.all(labels[:, 6:] == 2), labels
    batch = segengine.watershed_batch(np.stack([image, image]), np.stack([markers, markers]))
    assert np.array_equal(batch[0], labels) and np.array_equal(batch[1], labels)
    return "watershed: two basins split at the ridge; watershed_batch == watershed per item"


CHECKS = (check_upsample, check_crf, check_graph_cuts, check_watershed)


def main() -> int:
    import segengine

    print(f"segengine {segengine.__version__} from {segengine.__file__}")
    start = time.perf_counter()
    for check in CHECKS:
        print(f"ok  {check.__name__}: {check()}")
    print(f"smoke test passed: {len(CHECKS)} checks in {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
