"""alpha_expansion / alpha_beta_swap / fastmin refuse what they cannot solve exactly: pairwise
matrices for which a move is not a graph cut (ValueError naming the labels), integer costs
whose energy passes 2**53 (OverflowError); num_threads is validated and passed on."""

import numpy as np
import pytest

import segengine
import segengine.maxflow as smf
from segengine._cy import _maxflow as _cy
from segengine._reference import maxflow as ref

ISSUE_V = np.array([[0, 1, 5], [1, 0, 1], [5, 1, 0]], dtype=np.float64)   # triangle inequality fails


def truncated_linear(C, scale=1.0, trunc=2.0):
    a = np.arange(C)
    return scale * np.minimum(np.abs(a[:, None] - a[None, :]), trunc)


def offsets(ndim, conn):
    return [tuple(o) for o in smf.grid.forward_offsets(ndim, conn)]


# ------------------------------------------------------------------ expansion: representability

def test_issue_matrix_expansion_raises_naming_the_labels():
    unary = np.random.default_rng(0).random((3, 5, 6))
    with pytest.raises(ValueError, match=r"expansion move of label 1: pairwise\[0, 2\] \+ pairwise\[1, 1\] = 5 > "
                                         r"pairwise\[0, 1\] \+ pairwise\[1, 2\] = 2 \(labels a=1, b=0, c=2"):
        segengine.alpha_expansion(unary, ISSUE_V)
    with pytest.raises(ValueError, match=r"aexpansion_grid: binary does not allow the expansion move of label 1"):
        smf.fastmin.aexpansion_grid(np.moveaxis(unary, 0, -1).copy(), ISSUE_V)


def test_pymaxflow_silently_misses_the_better_move_on_the_issue_matrix():
    """What PyMaxflow 1.3.2 does with a non-metric binary: its expansion graph (extra nodes
    between differently labelled neighbours) under-prices keeping the labels 0 | 2 (cost 2
    instead of 5), so expanding label 1 is not taken although it lowers the energy."""
    pmf = pytest.importorskip("maxflow")
    unary = np.array([[[0.0, 1.5, 9.0], [9.0, 1.5, 0.0]]])     # [1, 2, 3 labels]
    lab = np.array([[0, 2]], dtype=np.int8)
    theirs = pmf.fastmin.aexpansion_grid(unary, ISSUE_V, labels=lab.copy())
    assert theirs.tolist() == [[0, 2]]
    assert pmf.fastmin.energy_of_grid_labeling(unary, ISSUE_V, theirs) == 5.0
    assert pmf.fastmin.energy_of_grid_labeling(unary, ISSUE_V, np.array([[1, 2]])) == 2.5
    with pytest.raises(ValueError, match="label 1"):
        smf.fastmin.aexpansion_grid(unary, ISSUE_V, labels=lab.copy())


def test_unchecked_move_would_be_wrong():
    """The check is needed: solved anyway (the binding has no check), the clipped pair term
    misses the move that a brute-force expansion of label 1 finds (keep 0, turn 2 into 1)."""
    unary = np.array([[[0.0, 9.0]], [[2.0, 1.5]], [[9.0, 0.0]]])   # [3 labels, 1, 2]
    lab = np.array([0, 2], dtype=np.int64)
    _cy.multilabel(0, (1, 2), 4, unary.reshape(-1), 3, ISSUE_V.reshape(-1), None,
                   np.array([1], dtype=np.int64), 1, lab)
    got = ref.grid_energy(unary, ISSUE_V, lab.reshape(1, 2), offsets(2, 4))
    best = ref.best_expansion_energy(unary, ISSUE_V, np.array([[0, 2]]), 1, offsets(2, 4))
    assert best == 2.5 and got == 3.0


@pytest.mark.parametrize("V", [truncated_linear(5, 1.3, 2.0), (1 - np.eye(5)) * 0.7,
                               truncated_linear(5, 1.0, 10.0)], ids=["trunc", "potts", "linear"])
def test_metrics_pass_and_give_the_unchecked_result(V):
    rng = np.random.default_rng(1)
    unary = rng.random((5, 9, 11)) * 3
    lab, e = segengine.alpha_expansion(unary, V)
    raw = unary.argmin(0).astype(np.int64).reshape(-1)
    e_raw, _ = _cy.multilabel(0, (9, 11), 4, unary.reshape(-1), 5, V.reshape(-1), None,
                              np.arange(5, dtype=np.int64), -1, raw)
    assert np.array_equal(lab.reshape(-1), raw) and e == e_raw


def test_random_shortest_path_metric_passes_and_rounding_is_tolerated():
    rng = np.random.default_rng(2)
    C = 12
    W = rng.random((C, C)) * 5 + 0.1
    D = np.minimum(W, W.T)
    np.fill_diagonal(D, 0)
    for k in range(C):                       # Floyd-Warshall: a metric with tight triangles
        D = np.minimum(D, D[:, k:k + 1] + D[k:k + 1, :])
    unary = rng.random((C, 6, 7)) * 4
    segengine.alpha_expansion(unary, D)
    segengine.alpha_expansion(unary, D * (1 + 1e-15 * rng.standard_normal((C, C))))   # rounding noise
    bad = D.copy()
    b, c = 3, 7
    a = int(np.argmin([D[b, k] + D[k, c] if k not in (b, c) else np.inf for k in range(C)]))
    bad[b, c] = D[b, a] + D[a, c] + 1e-9 * D.max()            # just beyond the tolerance
    with pytest.raises(ValueError, match=f"a={a}, b={b}, c={c}"):
        segengine.alpha_expansion(unary, bad)


def test_only_labels_that_can_meet_are_checked():
    unary = np.random.default_rng(3).random((3, 4, 4))
    # label 0 may be expanded whatever meets: V[b, c] <= V[b, 0] + V[0, c] holds here
    segengine.alpha_expansion(unary, ISSUE_V, label_order=[0], init=np.full((4, 4), 2))
    # expanding 1 among labels {1, 2} only: fine; once 0 and 2 can meet it is not
    segengine.alpha_expansion(unary, ISSUE_V, label_order=[1], init=np.full((4, 4), 2))
    init = np.zeros((4, 4), dtype=np.int64)
    init[:, 2:] = 2
    with pytest.raises(ValueError, match="a=1"):
        segengine.alpha_expansion(unary, ISSUE_V, label_order=[1], init=init)
    # max_cycles=0 solves nothing: nothing to refuse
    segengine.alpha_expansion(unary, ISSUE_V, max_cycles=0)


def test_diagonal_costs_count():
    """The diagonal counts: V[1, 1] = 3 > V[1, 0] + V[0, 1] makes expanding 0 across two
    neighbours labelled 1 non-representable, although the matrix is symmetric and satisfies
    the triangle inequality between distinct labels."""
    V = np.array([[0.0, 1.0, 1.0], [1.0, 3.0, 1.0], [1.0, 1.0, 0.0]])
    unary = np.random.default_rng(4).random((3, 4, 5))
    with pytest.raises(ValueError, match="label 0: .* a=0, b=1, c=1"):
        segengine.alpha_expansion(unary, V)


def test_many_labels_vectorised_and_last_chunk_found():
    C = 300
    V = truncated_linear(C, 1.0, 4.0)
    unary = np.random.default_rng(5).random((C, 3, 3))
    init = np.arange(9).reshape(3, 3) * 33
    segengine.alpha_expansion(unary, V, init=init, max_cycles=1)
    bad = V.copy()
    bad[296, 299] = bad[299, 296] = 9.0       # 296 and 299 via 298: 2 + 1 < 9
    init[2, 2], init[2, 1] = 296, 299
    with pytest.raises(ValueError, match=r"b=29[69], c=29[69]"):
        segengine.alpha_expansion(unary, bad, init=init, max_cycles=1)


# ------------------------------------------------------------------ swap: representability

def test_swap_needs_only_a_semi_metric():
    unary = np.random.default_rng(6).random((3, 5, 5))
    lab, e = segengine.alpha_beta_swap(unary, ISSUE_V)               # not a metric: fine for swaps
    assert e == pytest.approx(ref.grid_energy(unary, ISSUE_V, lab, offsets(2, 4)))
    smf.fastmin.abswap_grid(np.moveaxis(unary, 0, -1).copy(), ISSUE_V)
    V = np.array([[3.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])  # V01 + V10 = 2 < V00 + V11 = 3
    with pytest.raises(ValueError, match=r"alpha_beta_swap: pairwise does not allow the swap move of labels 0 and 1"):
        segengine.alpha_beta_swap(unary, V)
    with pytest.raises(ValueError, match="abswap_grid: binary does not allow the swap move of labels 0 and 1"):
        smf.fastmin.abswap_grid(np.moveaxis(unary, 0, -1).copy(), V)
    # labels outside label_order are never swapped
    segengine.alpha_beta_swap(unary, V, label_order=[1, 2])
    # asymmetric but semi-metric: fine
    segengine.alpha_beta_swap(unary, np.array([[0.0, 3.0, 0.0], [0.0, 0.0, 2.0], [1.0, 0.0, 0.0]]))


# ------------------------------------------------------------------ integer costs and 2**53

@pytest.mark.parametrize("method", ["alpha_expansion", "alpha_beta_swap"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_costs_beyond_2_53_raise(method, dtype):
    f = getattr(segengine, method)
    big = int(np.iinfo(dtype).max)
    unary = np.zeros((3, 4, 4), dtype=dtype)
    V = (1 - np.eye(3, dtype=dtype))
    ew = np.ones((2, 4, 4), dtype=dtype)
    ew[0, 0, 0] = big
    pairs = 2 * 4 * 3                                  # 24 neighbour pairs on a 4x4 grid
    V2 = V * (2**53 // (pairs * big) + 1) if dtype == np.int64 else V * big
    with pytest.raises(OverflowError, match=f"{method}: integer costs whose energy can reach .* exceed 2\\*\\*53"):
        f(unary, V2, edge_weights=ew)
    if dtype == np.int64:
        u = np.zeros((3, 4, 4), dtype=np.int64)
        u[0] = 2**53 // 16 + 1                           # the unary sum alone passes 2**53
        with pytest.raises(OverflowError, match=method):
            f(u, 0)


@pytest.mark.parametrize("method", ["alpha_expansion", "alpha_beta_swap"])
def test_integer_costs_just_below_2_53_are_exact(method):
    f = getattr(segengine, method)
    rng = np.random.default_rng(7)
    H, W, C = 4, 4, 3
    pairs = 2 * H * (W - 1)
    scale = 2**53 // (H * W + pairs * 2)                  # bound = 2**53 - small rest
    unary = (rng.integers(0, 2, (C, H, W)) * scale).astype(np.int64)
    V = truncated_linear(C, 1, 2).astype(np.int64) * scale
    lab, e = f(unary, V)
    # exact: the energy of the labelling in Python ints
    offs = offsets(2, 4)
    ui = unary.astype(object)
    Vi = V.astype(object)
    total = sum(ui[lab[y, x], y, x] for y in range(H) for x in range(W))
    for (dy, dx) in offs:
        for y in range(H - dy):
            for x in range(W - dx):
                total += Vi[lab[y, x], lab[y + dy, x + dx]]
    assert e == total
    # and the same labels as the same problem divided by the common scale (small integers)
    lab_small, e_small = f(unary // scale, V // scale)
    assert np.array_equal(lab, lab_small) and e == e_small * scale


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_one_huge_integer_unary_cannot_make_the_move_graphs_round(dtype):
    """The energy bound can stay below 2**53 while the moves' int64 fixed-point scale would
    drop below 1 (it covers N times the largest cost): refused, not rounded.  Unchecked,
    the rounded small costs give a worse labelling."""
    rng = np.random.default_rng(10)
    C, H, W = 3, 64, 64
    u = rng.integers(0, 4, (C, H, W)).astype(np.int64)

    def with_corner(big):
        v = u.copy()
        v[:, 0, 0] = [0, big, big]
        return v

    lab_ref, e_ref = segengine.alpha_expansion(with_corner(1000), 1, num_threads=1)
    if dtype == np.int64:
        lab, e = segengine.alpha_expansion(with_corner(2**47), 1, num_threads=1)   # scale stays 1
        assert np.array_equal(lab, lab_ref) and e == e_ref
        huge = with_corner(2**52)
        lab = huge.argmin(0).astype(np.int64).reshape(-1)
        e_raw, _ = _cy.multilabel(0, (H, W), 4, huge.astype(np.float64).reshape(-1), C,
                                  (1 - np.eye(C)).reshape(-1), None, np.arange(C), -1, lab, True, 1)
        assert e_raw > e_ref                     # what the check prevents
        with pytest.raises(OverflowError, match="alpha_expansion: integer costs too large for exact move graphs"):
            segengine.alpha_expansion(huge, 1)
    else:
        # int32: 2**31 - 1 at one pixel of a 64x64 grid stays exact (2**44 < 2**61); a grid
        # of 2**30 pixels would be needed to pass the limit
        lab, e = segengine.alpha_expansion(with_corner(2**31 - 1).astype(np.int32), np.int32(1),
                                           num_threads=1)
        assert np.array_equal(lab, lab_ref) and e == e_ref


def test_fastmin_integer_costs_beyond_2_53_raise():
    unary = np.zeros((4, 4, 3), dtype=np.int64)
    unary[..., 0] = 2**53 // 16 + 1
    with pytest.raises(OverflowError, match="aexpansion_grid: integer costs"):
        smf.fastmin.aexpansion_grid(unary, (1 - np.eye(3)).astype(np.int64))
    with pytest.raises(OverflowError, match="abswap_grid: integer costs"):
        smf.fastmin.abswap_grid(unary, (1 - np.eye(3)).astype(np.int64))
    unary[..., 0] = 2**53 // 16 - 100                 # 16 pixels + 24 pairs * 1: just below
    out = smf.fastmin.aexpansion_grid(unary, (1 - np.eye(3)).astype(np.int64))
    assert np.all(out != 0)


def test_float_costs_are_not_limited_to_2_53_but_must_keep_a_finite_bound():
    unary = np.full((3, 4, 4), 2.0**60)
    unary[1] = 0
    lab, e = segengine.alpha_expansion(unary, 2.0**55)
    assert np.all(lab == 1)
    unary[0] = 1e307                     # (2 * 1e307 + ...) * 16 pixels is inf in float64
    for f in (segengine.alpha_expansion, segengine.alpha_beta_swap):
        with pytest.raises(OverflowError, match=f"{f.__name__}: costs too large"):
            f(unary, 1.0)
    with pytest.raises(OverflowError, match="aexpansion_grid: costs too large"):
        smf.fastmin.aexpansion_grid(np.moveaxis(unary, 0, -1).copy(), 1 - np.eye(3))


# ------------------------------------------------------------------ num_threads

def test_num_threads_validated_and_passed_on(monkeypatch):
    unary = np.random.default_rng(8).random((3, 6, 6))
    for f in (segengine.alpha_expansion, segengine.alpha_beta_swap):
        with pytest.raises(TypeError, match="num_threads"):
            f(unary, 1.0, num_threads=2.7)
        with pytest.raises(ValueError, match="num_threads"):
            f(unary, 1.0, num_threads=0)
    seen = []
    real = _cy.multilabel

    def spy(*args):
        seen.append(args[11])      # (..., labels, allow_dynamic, num_threads, ...)
        return real(*args)

    monkeypatch.setattr(_cy, "multilabel", spy)
    a = segengine.alpha_expansion(unary, 1.0, num_threads=3)
    b = segengine.alpha_beta_swap(unary, 1.0, num_threads=2)
    assert seen == [3, 2]
    monkeypatch.undo()
    assert np.array_equal(a[0], segengine.alpha_expansion(unary, 1.0, num_threads=1)[0])
    assert np.array_equal(b[0], segengine.alpha_beta_swap(unary, 1.0, num_threads=1)[0])


def test_large_grid_expansion_with_threads_matches_energy_reference():
    """A grid large enough for the parallel slab solve of fresh moves."""
    rng = np.random.default_rng(9)
    unary = (rng.random((3, 256, 256)) * 4).round()
    lab2, e2 = segengine.alpha_expansion(unary, 1.0, num_threads=2, max_cycles=1)
    assert e2 == pytest.approx(ref.grid_energy(unary, 1.0 * (1 - np.eye(3)), lab2, offsets(2, 4)), rel=1e-12)
    lab1, e1 = segengine.alpha_expansion(unary, 1.0, num_threads=1, max_cycles=1)
    assert e1 == pytest.approx(e2, rel=1e-9)   # the same moves' optima (cuts may differ)


def test_maxflow_entry_points_check_num_threads():
    g = smf.Graph[float]()
    g.add_nodes(2)
    g.add_tedge(0, 1, 0)
    with pytest.raises(TypeError, match="num_threads"):
        g.maxflow(num_threads=2.7)
    with pytest.raises(ValueError, match="num_threads"):
        g.maxflow(num_threads=0)
    with pytest.raises(TypeError, match="num_threads"):
        smf.grid_maxflow(np.ones((3, 3)), 0, num_threads=2.7)
    with pytest.raises(ValueError, match="num_threads"):
        smf.grid_maxflow(np.ones((3, 3)), 0, num_threads=0)
    assert g.maxflow(num_threads=np.int64(2)) == 0
