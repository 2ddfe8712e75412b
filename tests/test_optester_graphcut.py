"""The shared op tests (tests/op_tester.py) for the graph-cut family: graphcut,
alpha_expansion and alpha_beta_swap, against the Edmonds-Karp oracles of
segengine/_reference/maxflow.py."""

import numpy as np
import pytest
import torch

import segengine
from segengine._reference import maxflow as ref
from tests.op_tester import OpTester, to_cpu_tensor


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x


class TestGraphcutOp(OpTester):
    op_name = "graphcut"
    dtypes = (torch.float32, torch.float64)
    differentiable = True
    channels_last_inputs = True
    gradcheck_skip_reason = (
        "graphcut is piecewise constant in unary (an exact min cut): its true derivative is 0 "
        "almost everywhere, so gradcheck's finite differences cannot check the blackbox "
        "backward, a deliberate surrogate (Vlastelica et al. 2020); "
        "tests/test_graphcut.py::test_backward_is_the_blackbox_formula checks it exactly")

    def fn(self, *args, **kwargs):
        return segengine.graphcut(*args, **kwargs)

    def reference(self, unary, pairwise=1.0, connectivity=4, **kwargs):
        out = ref.graphcut(_np(unary), _np(pairwise), connectivity)
        return torch.from_numpy(out) if isinstance(unary, torch.Tensor) else out

    def make_inputs(self, dtype, device, seed=0):
        g = torch.Generator().manual_seed(seed)
        unary = torch.randn(3, 2, 5, 6, generator=g, dtype=torch.float64).to(dtype)
        pairwise = (0.9 * torch.rand(3, 4, 5, 6, generator=g, dtype=torch.float64)).to(dtype)
        return (unary.to(device), pairwise.to(device)), {"connectivity": 8}

    def bad_inputs(self):
        u = torch.zeros(1, 2, 4, 4)
        return [
            ((torch.zeros(1, 3, 4, 4),), {}, ValueError, r"unary must have shape \[B, 2, H, W\]"),
            ((torch.zeros(1, 2, 4, 4, dtype=torch.int64),), {}, TypeError, "floating"),
            (([0.0, 1.0],), {}, TypeError, "torch.Tensor or numpy.ndarray"),
            ((torch.full((1, 2, 4, 4), float("nan")),), {}, ValueError, "unary contains NaN"),
            ((u,), {"connectivity": 6}, ValueError, r"connectivity must be one of \(4, 8\)"),
            ((u, torch.ones(1, 3, 4, 4)), {}, ValueError, r"pairwise must be a scalar or have shape"),
            ((u, -1.0), {}, ValueError, "non-negative"),
            ((u,), {"image": torch.zeros(1, 3, 5, 4)}, ValueError, "image must have shape"),
            ((u,), {"blackbox_lambda": 0.0}, ValueError, "blackbox_lambda"),
            ((u,), {"num_threads": 0}, ValueError, "num_threads"),
        ]

    def opcheck_inputs(self):
        return [((torch.randn(2, 2, 5, 6), torch.full((1,), 0.5), 4, 20.0, 1), {}),
                ((torch.randn(1, 2, 3, 4, 5, dtype=torch.float64, requires_grad=True),
                  torch.rand(1, 3, 3, 4, 5, dtype=torch.float64), 6, 5.0, 2), {})]


class _MultilabelOp(OpTester):
    """Batched alpha-expansion / swap (``batched=True``): labels [B, *S] and energies [B]."""
    dtypes = (torch.float32, torch.float64, torch.int32)
    public = None        # the public function
    oracle = None        # its reference

    def fn(self, *args, **kwargs):
        return type(self).public(*args, batched=True, **kwargs)

    def reference(self, unary, pairwise=1.0, edge_weights=None, connectivity=None, **kwargs):
        u, V, ew = _np(unary), _np(pairwise), _np(edge_weights)
        out = [type(self).oracle(u[b], V, connectivity, None if ew is None else ew[b])
               for b in range(u.shape[0])]
        labels = np.stack([o[0] for o in out])
        energy = np.array([o[1] for o in out])
        if isinstance(unary, torch.Tensor):
            return torch.from_numpy(labels), torch.from_numpy(energy)
        return labels, energy

    def assert_same(self, got, expected):
        """Labels exactly; energies to 1e-12 (the oracle sums them in another order)."""
        got, expected = to_cpu_tensor(got), to_cpu_tensor(expected)
        torch.testing.assert_close(got[0], expected[0], rtol=0, atol=0)
        torch.testing.assert_close(got[1], expected[1], rtol=1e-12, atol=1e-12)

    def make_inputs(self, dtype, device, seed=0):
        g = torch.Generator().manual_seed(seed)
        scale = 1000.0 if not dtype.is_floating_point else 1.0
        unary = (scale * torch.randn(2, 4, 5, 6, generator=g, dtype=torch.float64)).to(dtype)
        d = torch.arange(4)
        V = (0.6 * scale * torch.minimum((d[:, None] - d[None, :]).abs(), torch.tensor(2))).to(dtype)
        ew = torch.rand(2, 4, 5, 6, generator=g, dtype=torch.float64) * 2
        ew = ew.round() if not dtype.is_floating_point else ew
        return (unary.to(device), V.to(device)), {"edge_weights": ew.to(dtype).to(device),
                                                  "connectivity": 8}

    def bad_inputs(self):
        name = self.op_name
        u = torch.zeros(2, 3, 4, 4)
        return [
            ((torch.zeros(3, 4, 4),), {}, ValueError, rf"{name}: unary must have shape \[B, C, H, W\]"),
            ((u.to(torch.complex64),), {}, TypeError, "real numeric"),
            ((u, torch.ones(2, 2)), {}, ValueError, r"pairwise must be a scalar \(Potts\) or a \[C, C\]"),
            ((u, -1.0), {}, ValueError, "pairwise costs must be non-negative"),
            ((u,), {"edge_weights": torch.ones(2, 4, 4)}, ValueError, r"edge_weights must have shape \(2, 2, 4, 4\)"),
            ((u,), {"init": torch.zeros(4, 4, dtype=torch.int64)}, ValueError, r"init must have shape \(2, 4, 4\)"),
            ((u,), {"init": torch.full((2, 4, 4), 3)}, ValueError, r"init labels must lie in \[0, 2\]"),
            ((torch.full((2, 3, 4, 4), float("inf")),), {}, ValueError, "unary contains NaN or infinity"),
            ((u,), {"label_order": [0, 0]}, ValueError, "must not repeat"),
            ((u,), {"max_cycles": -1}, ValueError, "max_cycles"),
            ((u,), {"connectivity": 6}, ValueError, "connectivity"),
            ((u,), {"num_threads": 0}, ValueError, "num_threads"),
        ]

    def opcheck_inputs(self):
        u = torch.randn(2, 3, 4, 5, dtype=torch.float64)
        V = 1.0 - torch.eye(3, dtype=torch.float64)
        order = torch.arange(3)
        return [((u, V, None, None, order, 4, -1, 1), {}),
                ((u.float(), torch.tensor(0.5), torch.rand(2, 4, 4, 5), torch.zeros(2, 4, 5, dtype=torch.int64),
                  order, 8, 2, 2), {})]


class TestAlphaExpansionOp(_MultilabelOp):
    op_name = "alpha_expansion"
    public = staticmethod(segengine.alpha_expansion)
    oracle = staticmethod(ref.alpha_expansion)


class TestAlphaBetaSwapOp(_MultilabelOp):
    op_name = "alpha_beta_swap"
    public = staticmethod(segengine.alpha_beta_swap)
    oracle = staticmethod(ref.alpha_beta_swap)


def test_unbatched_equals_batched_item():
    """The unbatched form (labels [*S], energy float) is item 0 of the batched form."""
    t = TestAlphaExpansionOp()
    (u, V), kw = t.make_inputs(torch.float64, "cpu")
    labels, energy = segengine.alpha_expansion(u, V, **kw, batched=True)
    for b in range(2):
        lb, eb = segengine.alpha_expansion(u[b], V, edge_weights=kw["edge_weights"][b], connectivity=8)
        assert torch.equal(lb, labels[b]) and isinstance(eb, float) and eb == float(energy[b])
    with pytest.raises(ValueError, match=r"unary must have shape \[C, H, W\]"):
        segengine.alpha_expansion(torch.zeros(4, 4))
