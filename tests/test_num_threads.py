"""Every public op and class that takes ``num_threads`` checks it the same way
(segengine.ops._common.check_threads): None or an integer >= 1; TypeError for other types
(2.7, "2", True), ValueError for integers below 1."""

import numpy as np
import pytest
import torch

import segengine
import segengine.densecrf as dcrf
from segengine import maxflow, nn
from segengine.maxflow.grid import grid_maxflow
from segengine.ops._common import check_threads, op_threads, resolve_threads

RNG = np.random.default_rng(0)
LOGITS = torch.from_numpy(RNG.standard_normal((1, 3, 6, 7), dtype=np.float32))
IMAGE = torch.from_numpy(RNG.integers(0, 256, (1, 3, 6, 7), dtype=np.uint8))
TARGET = torch.from_numpy(RNG.integers(0, 3, (1, 12, 14)))
FEATURES = torch.from_numpy(RNG.standard_normal((1, 2, 30), dtype=np.float32))
VALUES = torch.from_numpy(RNG.standard_normal((1, 3, 30), dtype=np.float32))
WS_IMAGE = RNG.random((2, 8, 9))
WS_MARKERS = np.zeros((2, 8, 9), dtype=np.int32)
WS_MARKERS[:, 1, 1], WS_MARKERS[:, 6, 7] = 1, 2
UNARY2 = torch.from_numpy(RNG.standard_normal((1, 2, 6, 7), dtype=np.float32))
UNARY3 = RNG.standard_normal((6, 7, 3)).astype(np.float32)


def _graph_maxflow(n):
    g = maxflow.Graph[float]()
    nodes = g.add_nodes(2)
    g.add_edge(nodes[0], nodes[1], 1.0, 1.0)
    g.add_tedge(nodes[0], 2.0, 0.0)
    g.add_tedge(nodes[1], 0.0, 2.0)
    return g.maxflow(num_threads=n)


CALLS = {
    "upsample_argmax": lambda n: segengine.upsample_argmax(LOGITS, scale_factor=2, num_threads=n),
    "upsample_cross_entropy": lambda n: segengine.upsample_cross_entropy(LOGITS, TARGET, num_threads=n),
    "dense_crf": lambda n: segengine.dense_crf(LOGITS, IMAGE, iterations=1, num_threads=n),
    "PermutohedralLattice": lambda n: segengine.PermutohedralLattice(FEATURES, num_threads=n),
    "permutohedral_filter": lambda n: segengine.permutohedral_filter(VALUES, FEATURES, num_threads=n),
    "bilateral_filter": lambda n: segengine.bilateral_filter(IMAGE.float(), 2.0, 20.0, num_threads=n),
    "densecrf.DenseCRF": lambda n: dcrf.DenseCRF(42, 3, num_threads=n),
    "densecrf.DenseCRF2D": lambda n: dcrf.DenseCRF2D(7, 6, 3, num_threads=n),
    "nn.DenseCRF": lambda n: nn.DenseCRF(3, iterations=1, num_threads=n)(LOGITS, IMAGE.float()),
    "watershed_batch": lambda n: segengine.watershed_batch(WS_IMAGE, WS_MARKERS, num_threads=n),
    "graphcut": lambda n: segengine.graphcut(UNARY2, pairwise=0.5, num_threads=n),
    "grid_maxflow": lambda n: grid_maxflow(UNARY3[..., 0], UNARY3[..., 1], num_threads=n),
    "Graph.maxflow": _graph_maxflow,
    "alpha_expansion": lambda n: segengine.alpha_expansion(UNARY3, num_threads=n),
}
OPS = [pytest.param(f, id=name) for name, f in CALLS.items()]

BAD_TYPES = [2.7, 2.0, "2", True, np.float64(2.0), [2]]
BAD_VALUES = [0, -1, np.int64(0)]


@pytest.mark.parametrize("call", OPS)
@pytest.mark.parametrize("n", [None, 1, 2, np.int32(2)], ids=repr)
def test_valid_thread_counts_run(call, n):
    call(n)


@pytest.mark.parametrize("call", OPS)
@pytest.mark.parametrize("n", BAD_TYPES, ids=repr)
def test_non_integer_raises_type_error(call, n):
    with pytest.raises(TypeError, match="num_threads must be"):
        call(n)


@pytest.mark.parametrize("call", OPS)
@pytest.mark.parametrize("n", BAD_VALUES, ids=repr)
def test_below_one_raises_value_error(call, n):
    with pytest.raises(ValueError, match="num_threads must be"):
        call(n)


def test_nn_dense_crf_checks_at_construction():
    with pytest.raises(TypeError, match="num_threads must be"):
        nn.DenseCRF(3, num_threads=2.7)
    with pytest.raises(ValueError, match="num_threads must be"):
        nn.DenseCRF(3, num_threads=0)


def test_helpers():
    assert resolve_threads(None) == torch.get_num_threads()
    assert resolve_threads(np.int16(3)) == 3 and type(resolve_threads(np.int16(3))) is int
    assert op_threads(None) == 0 and op_threads(4) == 4
    check_threads(1)
    for bad, exc in [(2.7, TypeError), (False, TypeError), (0, ValueError)]:
        with pytest.raises(exc):
            check_threads(bad)
