"""alpha_expansion / alpha_beta_swap and the PyMaxflow-compatible fastmin."""

import numpy as np
import pytest
import torch

import segengine
import segengine.maxflow as smf
from segengine._reference import maxflow as ref

pmf = pytest.importorskip("maxflow")


def truncated_linear(C, scale=1.0, trunc=2.0):
    a = np.arange(C)
    return scale * np.minimum(np.abs(a[:, None] - a[None, :]), trunc)


def offsets(ndim, conn):
    return [tuple(o) for o in smf.grid.forward_offsets(ndim, conn)]


@pytest.mark.parametrize("metric", ["potts", "trunc"])
def test_median_energy_not_above_pymaxflow(metric):
    rng = np.random.default_rng(0 if metric == "potts" else 1)
    ours, theirs = [], []
    for trial in range(25):
        C = int(rng.integers(2, 6))
        H, W = int(rng.integers(4, 14)), int(rng.integers(4, 14))
        unary = rng.random((C, H, W)) * 4
        V = (1 - np.eye(C)) * 1.3 if metric == "potts" else truncated_linear(C, 0.9, 2)
        init = rng.integers(0, C, (H, W))
        lab, e = segengine.alpha_expansion(unary, V, init=init)
        assert e == pytest.approx(ref.grid_energy(unary, V, lab, offsets(2, 4)), rel=1e-12)
        their = pmf.fastmin.aexpansion_grid(np.moveaxis(unary, 0, -1).copy(), V, labels=init.copy())
        ours.append(e)
        theirs.append(ref.grid_energy(unary, V, their, offsets(2, 4)))
    assert np.median(ours) <= np.median(theirs) + 1e-9
    assert np.mean(np.array(ours) <= np.array(theirs) + 1e-9) >= 0.8


@pytest.mark.parametrize("conn", [4, 8])
def test_result_is_local_minimum_for_every_expansion(conn):
    rng = np.random.default_rng(conn)
    for trial in range(6):
        C = 3
        unary = rng.random((C, 3, 4)) * 3
        V = truncated_linear(C, 1.1, 1.5) if trial % 2 else (1 - np.eye(C)) * 0.8
        ew = rng.random((len(offsets(2, conn)), 3, 4)) + 0.2
        lab, e = segengine.alpha_expansion(unary, V, edge_weights=ew, connectivity=conn,
                                           init=rng.integers(0, C, (3, 4)))
        assert e == pytest.approx(ref.grid_energy(unary, V, lab, offsets(2, conn), ew), rel=1e-12)
        for alpha in range(C):
            best = ref.best_expansion_energy(unary, V, lab, alpha, offsets(2, conn), ew)
            assert best >= e - 1e-9, (trial, alpha, best, e)
        # Potts: within a factor 2 of the global optimum (Boykov et al. 2001)
        gmin, _ = ref.brute_force_labels(unary, V, offsets(2, conn), ew)
        assert gmin <= e + 1e-12
        if trial % 2 == 0:
            assert e <= 2 * gmin + 1e-9


def test_3d_and_label_order_and_max_cycles():
    rng = np.random.default_rng(5)
    unary = rng.random((4, 4, 5, 6))
    lab, e = segengine.alpha_expansion(unary, 0.3, connectivity=26, label_order=[3, 1, 0, 2])
    assert lab.shape == (4, 5, 6) and lab.dtype == np.int64
    assert e == pytest.approx(ref.grid_energy(unary, 0.3 * (1 - np.eye(4)), lab, offsets(3, 26)), rel=1e-12)
    init = unary.argmin(0)
    e0 = ref.grid_energy(unary, 0.3 * (1 - np.eye(4)), init, offsets(3, 26))
    lab0, e_zero = segengine.alpha_expansion(unary, 0.3, connectivity=26, max_cycles=0)
    assert np.array_equal(lab0, init) and e_zero == pytest.approx(e0)
    _, e1 = segengine.alpha_expansion(unary, 0.3, connectivity=26, max_cycles=1)
    assert e <= e1 <= e0
    # only expanding label 0 from init: every changed pixel became 0
    lab_only0, _ = segengine.alpha_expansion(unary, 0.3, connectivity=26, label_order=[0])
    changed = lab_only0 != init
    assert np.all(lab_only0[changed] == 0)


def test_swap_energy_and_local_optimality():
    rng = np.random.default_rng(6)
    ours, theirs = [], []
    for trial in range(15):
        C = 3
        unary = rng.random((C, 6, 7)) * 3
        V = truncated_linear(C, 1.0, 2.0)
        lab, e = segengine.alpha_beta_swap(unary, V)
        assert e == pytest.approx(ref.grid_energy(unary, V, lab, offsets(2, 4)), rel=1e-12)
        assert e <= ref.grid_energy(unary, V, unary.argmin(0), offsets(2, 4)) + 1e-12
        their = pmf.fastmin.abswap_grid(np.moveaxis(unary, 0, -1).copy(), V)
        ours.append(e)
        theirs.append(ref.grid_energy(unary, V, their, offsets(2, 4)))
    assert np.median(ours) <= np.median(theirs) + 1e-9
    # tiny problem: no single swap move improves (by enumeration over the swap set)
    unary = rng.random((3, 3, 3)) * 2
    V = truncated_linear(3, 1.0, 2.0)
    lab, e = segengine.alpha_beta_swap(unary, V)
    flat = lab.reshape(-1)
    import itertools
    for a, b in itertools.combinations(range(3), 2):
        idx = np.nonzero((flat == a) | (flat == b))[0]
        for bits in itertools.product((a, b), repeat=len(idx)):
            cand = flat.copy()
            cand[idx] = bits
            assert ref.grid_energy(unary, V, cand.reshape(lab.shape), offsets(2, 4)) >= e - 1e-9


def test_fastmin_compat_matches_pymaxflow_layout():
    rng = np.random.default_rng(8)
    for shape in [(7, 9), (12,), (3, 4, 5)]:
        L = 4
        unary = rng.random(shape + (L,)) * 3
        binary = truncated_linear(L, 0.7, 2)
        a = smf.fastmin.aexpansion_grid(unary, binary)
        b = pmf.fastmin.aexpansion_grid(unary, binary)
        assert a.shape == b.shape and a.dtype == b.dtype == np.int8
        ea = pmf.fastmin.energy_of_grid_labeling(unary, binary, a)
        eb = pmf.fastmin.energy_of_grid_labeling(unary, binary, b)
        assert ea <= eb + 1e-9
        assert smf.fastmin.energy_of_grid_labeling(unary, binary, a) == pytest.approx(ea)
        init = rng.integers(0, L, shape).astype(np.int32)
        out = smf.fastmin.abswap_grid(unary, binary, labels=init)
        assert out is init  # modified in place, as PyMaxflow does


def test_tensor_roundtrip(device):
    unary = torch.rand(3, 8, 9, device=device)
    lab, e = segengine.alpha_expansion(unary, 0.5)
    assert isinstance(lab, torch.Tensor) and lab.device == unary.device and lab.dtype == torch.int64
    lab2, e2 = segengine.alpha_expansion(unary.cpu().numpy(), 0.5)
    assert np.array_equal(lab.cpu().numpy(), lab2) and e == pytest.approx(e2)


def test_bad_input():
    u = np.random.rand(3, 4, 4)
    with pytest.raises(ValueError, match="unary must have shape"):
        segengine.alpha_expansion(np.random.rand(4, 4))
    with pytest.raises(ValueError, match="NaN"):
        segengine.alpha_expansion(np.full((3, 4, 4), np.nan))
    with pytest.raises(ValueError, match="pairwise"):
        segengine.alpha_expansion(u, np.ones((2, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        segengine.alpha_expansion(u, -1.0)
    with pytest.raises(ValueError, match="edge_weights"):
        segengine.alpha_expansion(u, 1.0, edge_weights=np.ones((3, 4, 4)))
    with pytest.raises(ValueError, match="init"):
        segengine.alpha_expansion(u, init=np.full((4, 4), 3))
    with pytest.raises(ValueError, match="label_order"):
        segengine.alpha_beta_swap(u, label_order=[0, 0])
    with pytest.raises(ValueError, match="connectivity"):
        segengine.alpha_expansion(u, connectivity=6)
    with pytest.raises(ValueError, match="binary"):
        smf.fastmin.aexpansion_grid(np.random.rand(4, 4, 3), np.ones((2, 2)))


@pytest.mark.parametrize("shape,conn", [((17, 23), 4), ((12, 9), 8), ((5, 6, 7), 6), ((4, 5, 3), 26),
                                        ((1, 31), 4)])
@pytest.mark.parametrize("metric", ["potts", "trunc"])
def test_expansion_resumed_from_kept_graphs_equals_fresh_moves(shape, conn, metric):
    """Integer costs make the arithmetic exact: the moves that resume from each label's kept
    residual graph and trees return exactly the cuts of moves solved afresh."""
    from segengine._cy import _maxflow as _cy
    rng = np.random.default_rng(len(shape) * 100 + conn)
    C = 5
    unary = rng.integers(0, 12, (C,) + shape).astype(np.float64)
    V = (1 - np.eye(C)) * 3.0 if metric == "potts" else truncated_linear(C, 2.0, 3.0)
    K = len(offsets(len(shape), conn))
    ew = rng.integers(0, 4, (K,) + shape).astype(np.float64)
    init = rng.integers(0, C, shape)
    out = []
    for dynamic in (True, False):
        lab = init.astype(np.int64).reshape(-1).copy()
        e, cycles = _cy.multilabel(0, shape, conn, unary.reshape(-1), C, V.reshape(-1), ew.reshape(-1),
                                   np.arange(C, dtype=np.int64), -1, lab, dynamic)
        out.append((lab, e, cycles))
    assert np.array_equal(out[0][0], out[1][0]) and out[0][1:] == out[1][1:]
    assert out[0][2] >= 2   # later cycles did resume
    offs = offsets(len(shape), conn)
    assert out[0][1] == ref.grid_energy(unary, V, out[0][0].reshape(shape), offs, ew)
    assert out[0][1] < ref.grid_energy(unary, V, init, offs, ew)


def test_module_level_names_match_pymaxflow():
    """``import segengine.maxflow as maxflow`` keeps PyMaxflow's module-level names working."""
    pmf = pytest.importorskip("maxflow")
    import segengine.maxflow as smf

    theirs = {n for n in dir(pmf) if not n.startswith("_")} - {"np", "version"}
    assert theirs <= set(dir(smf)), theirs - set(dir(smf))
    assert smf.aexpansion_grid is smf.fastmin.aexpansion_grid
    assert smf.abswap_grid is smf.fastmin.abswap_grid
