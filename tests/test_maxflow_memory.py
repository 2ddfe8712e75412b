"""Working-set guard of the grid solvers: a problem whose estimated working set exceeds the
memory limit raises MemoryError naming the call before anything is allocated."""

import tracemalloc

import numpy as np
import pytest

import segengine
import segengine.maxflow as smf

HUGE = (10**6, 10**6)   # 10**12 nodes


@pytest.fixture
def one_mib(monkeypatch):
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "1M")


def moderate_unary(C=3):
    return np.random.default_rng(0).random((C, 128, 128))


def test_moderate_grids_exceed_one_mib(one_mib):
    u = moderate_unary()
    with pytest.raises(MemoryError, match=r"grid_maxflow on a grid of shape \(128, 128\)"):
        smf.grid_maxflow(u[0], u[1])
    with pytest.raises(MemoryError, match="alpha_expansion on unary of shape"):
        segengine.alpha_expansion(u, 1.0)
    with pytest.raises(MemoryError, match="alpha_beta_swap on unary of shape"):
        segengine.alpha_beta_swap(u, 1.0)
    fm = np.moveaxis(u, 0, -1).copy()
    with pytest.raises(MemoryError, match="aexpansion_grid on unary of shape"):
        smf.fastmin.aexpansion_grid(fm, 1 - np.eye(3))
    with pytest.raises(MemoryError, match="abswap_grid on unary of shape"):
        smf.fastmin.abswap_grid(fm, 1 - np.eye(3))
    with pytest.raises(MemoryError, match=r"add_grid_nodes\(\(128, 128\)\)"):
        smf.Graph[float]().add_grid_nodes((128, 128))
    with pytest.raises(MemoryError, match=r"add_nodes\(100000\)"):
        smf.Graph[float]().add_nodes(100000)


def test_small_grids_fit_under_the_same_limit(one_mib):
    u = moderate_unary()[:, :16, :16]
    flow, seg = smf.grid_maxflow(u[0], u[1])
    lab, e = segengine.alpha_expansion(u, 1.0)
    g = smf.Graph[float]()
    ids = g.add_grid_nodes((16, 16))
    g.add_grid_edges(ids, 1.0, symmetric=True)
    g.add_grid_tedges(ids, u[0], u[1])
    assert g.maxflow() == pytest.approx(smf.grid_maxflow(u[0], u[1], 1.0)[0])


def test_limit_off_lets_moderate_grids_run(monkeypatch):
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "off")
    u = moderate_unary()
    smf.grid_maxflow(u[0], u[1])


@pytest.mark.parametrize("call", ["grid_nodes", "grid_nodes_int32", "nodes", "grid_maxflow",
                                  "alpha_expansion", "aexpansion_grid"])
def test_declared_trillion_node_grid_is_refused_without_allocating(monkeypatch, call):
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "1T")   # far more than any machine here has
    zeros = np.zeros(1)

    def run():
        if call == "grid_nodes":
            smf.Graph[float]().add_grid_nodes(HUGE)
        elif call == "grid_nodes_int32":
            smf.Graph[np.int32]().add_grid_nodes(HUGE + (1,))
        elif call == "nodes":
            smf.Graph[int]().add_nodes(10**12)
        elif call == "grid_maxflow":
            smf.grid_maxflow(np.broadcast_to(zeros, HUGE), 0.0)
        elif call == "alpha_expansion":
            segengine.alpha_expansion(np.broadcast_to(zeros, (2,) + HUGE), 1.0)
        else:
            smf.fastmin.aexpansion_grid(np.broadcast_to(zeros, HUGE + (2,)), 1 - np.eye(2))

    tracemalloc.start()
    try:
        with pytest.raises(MemoryError, match="needs about"):
            run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20      # numpy reports its allocations to tracemalloc


def test_estimates_grow_with_the_problem(monkeypatch):
    """The estimate tracks the sizes: one limit between two problem sizes separates them."""
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "1M")
    u = moderate_unary(2)
    smf.grid_maxflow(u[0, :64, :64], u[1, :64, :64])            # 4096 nodes * ~65 B
    with pytest.raises(MemoryError, match=r"grid_maxflow on a grid of shape \(128, 128\)"):
        smf.grid_maxflow(u[0], u[1], connectivity=8)            # 16384 nodes * ~97 B
    segengine.alpha_beta_swap(u[:, :32, :32], 1.0)
    with pytest.raises(MemoryError, match=r"alpha_expansion on unary of shape \(40, 128, 128\)"):
        segengine.alpha_expansion(np.zeros((40, 128, 128)), 1.0)   # 40 kept move graphs


def test_graphcut_working_set_guard(monkeypatch):
    import torch

    import segengine
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "1M")
    with pytest.raises(MemoryError, match="graphcut on unary of shape"):
        segengine.graphcut(torch.rand(2, 2, 256, 256))
    monkeypatch.setenv("SEGENGINE_MEMORY_LIMIT", "1T")
    huge = torch.zeros(1, 1, 1, 1).expand(4, 2, 10**6, 10**6)
    with pytest.raises(MemoryError, match="graphcut"):
        segengine.graphcut(huge)
    monkeypatch.delenv("SEGENGINE_MEMORY_LIMIT")
    assert segengine.graphcut(torch.rand(1, 2, 16, 16)).shape == (1, 16, 16)
