"""The shared op tests (tests/op_tester.py) for the fused upsampling ops.

Oracles: the PyTorch composites of segengine/_reference/upsample.py
(``F.interpolate(...).argmax(1)`` and ``F.cross_entropy(F.interpolate(...), ...)``).
Labels are compared exactly; the confidence and the loss, which the composites form in a
different order of operations, within the tolerances stated in ``assert_same``.
"""

import pytest
import torch

import segengine
from segengine._codes import Reduction
from segengine._reference.upsample import (upsample_argmax_composite,
                                           upsample_cross_entropy_composite)
from tests.op_tester import OpTester, to_cpu_tensor


def _logits(B, C, h, w, dtype, device, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, C, h, w, generator=g, dtype=torch.float64).to(dtype).to(device)


def _target(B, C, H, W, device, seed):
    g = torch.Generator().manual_seed(seed + 1000)
    t = torch.randint(0, C, (B, H, W), generator=g)
    t[0, :2] = -100            # ignored rows and columns in every batch item
    t[-1, :, -3:] = -100
    return t.to(device)


def _close(got, expected, rtol, atol):
    got, expected = to_cpu_tensor(got), to_cpu_tensor(expected)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=rtol, atol=atol, equal_nan=True)


class TestUpsampleArgmaxOp(OpTester):
    op_name = "upsample_argmax"
    dtypes = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
    differentiable = False
    channels_last_inputs = True

    def fn(self, *args, **kwargs):
        return segengine.upsample_argmax(*args, **kwargs)

    def reference(self, logits, **kwargs):
        return upsample_argmax_composite(logits, **kwargs)

    def make_inputs(self, dtype, device, seed=0):
        x = _logits(3, 6, 9, 13, dtype, device, seed)
        return (x,), {"size": (31, 29), "align_corners": False, "return_confidence": True}

    def assert_same(self, got, expected):
        """Labels exactly; the winner's softmax probability (float32) within 1e-5."""
        labels, conf = got
        ref_labels, ref_conf = expected
        _close(labels, ref_labels, rtol=0, atol=0)
        _close(conf, ref_conf, rtol=1e-5, atol=1e-6)

    def bad_inputs(self):
        x = torch.zeros(1, 2, 4, 4)
        return [
            ((torch.zeros(3, 4, 5),), {"size": (8, 8)}, ValueError, "4-D"),
            ((torch.zeros(1, 0, 4, 4),), {"size": (8, 8)}, ValueError, "empty"),
            ((torch.zeros(1, 2, 4, 4, dtype=torch.int64),), {"size": (8, 8)}, TypeError,
             "floating-point"),
            ((x,), {"size": (0, 5)}, ValueError, "positive"),
            ((x,), {"size": (2, 3, 4)}, ValueError, "pair"),
            ((x,), {}, ValueError, "exactly one"),
            ((x,), {"size": (4, 4), "scale_factor": 2.0}, ValueError, "exactly one"),
            ((x,), {"scale_factor": float("nan")}, ValueError, "positive"),
            ((x,), {"scale_factor": 0.01}, ValueError, "empty output"),
            ((x,), {"size": (8, 8), "num_threads": 0}, ValueError, "num_threads"),
            ((x,), {"size": (8, 8), "num_threads": 2.5}, TypeError, "num_threads"),
            (([[1.0]],), {"size": (2, 2)}, TypeError, "logits"),
        ]

    def opcheck_inputs(self):
        x = _logits(2, 3, 5, 7, torch.float32, "cpu", seed=1)
        xd = _logits(2, 4, 6, 3, torch.float64, "cpu", seed=2)
        return [((x, 11, 13, -1.0, -1.0, False, True, 2), {}),
                ((xd, 12, 6, 2.0, 2.0, True, False, 0), {})]

    def test_scale_factor_matches_reference(self):
        """The scale-factor form of the source index (not only a size)."""
        x = _logits(2, 5, 11, 17, torch.float32, "cpu", seed=3)
        for scale, align in ((1.5, False), ((2.0, 0.5), True), (0.7, False)):
            got = self.fn(x, scale_factor=scale, align_corners=align)
            ref = self.reference(x, scale_factor=scale, align_corners=align)
            _close(got, ref, rtol=0, atol=0)


class TestUpsampleCrossEntropyOp(OpTester):
    op_name = "upsample_cross_entropy"
    dtypes = (torch.float32, torch.float64)
    differentiable = True
    channels_last_inputs = True
    C = 5                      # != batch size, so that item() never slices the weight

    def fn(self, *args, **kwargs):
        return segengine.upsample_cross_entropy(*args, **kwargs)

    def reference(self, logits, target, **kwargs):
        return upsample_cross_entropy_composite(logits, target, **kwargs)

    def make_inputs(self, dtype, device, seed=0):
        """Per-pixel losses (reduction "none"), so that a batch is its items stacked."""
        x = _logits(2, self.C, 7, 9, dtype, device, seed)
        t = _target(2, self.C, 19, 23, device, seed)
        w = (torch.arange(self.C, dtype=torch.float64) / 4 + 0.5).to(dtype).to(device)
        return (x, t), {"weight": w, "reduction": "none", "label_smoothing": 0.1,
                        "align_corners": True}

    def assert_same(self, got, expected):
        """Loss within the rounding of the composite's different order of operations."""
        dtype = to_cpu_tensor(expected).dtype
        tol = (1e-12, 1e-12) if dtype == torch.float64 else (1e-5, 1e-6)
        _close(got, expected, *tol)

    def gradcheck_inputs(self):
        x = _logits(2, 3, 4, 5, torch.float64, "cpu", seed=4).requires_grad_(True)
        t = _target(2, 3, 7, 6, "cpu", seed=4)
        w = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
        return (x, t), {"weight": w, "reduction": "mean", "label_smoothing": 0.2}

    def bad_inputs(self):
        x = torch.zeros(2, 5, 4, 4)
        t = torch.zeros(2, 8, 8, dtype=torch.int64)
        return [
            ((x, torch.full((2, 8, 8), 5)), {}, ValueError, r"target holds 5, outside \[0, 5\)"),
            ((x, torch.full((2, 8, 8), -1)), {}, ValueError, "outside"),
            ((x, torch.zeros(3, 8, 8, dtype=torch.int64)), {}, ValueError, "batch"),
            ((x, torch.zeros(2, 8, dtype=torch.int64)), {}, ValueError, "3-D"),
            ((x, torch.zeros(2, 8, 8)), {}, TypeError, "integer"),
            ((x, torch.zeros(2, 0, 8, dtype=torch.int64)), {}, ValueError, "empty"),
            ((x, t), {"weight": torch.ones(4)}, ValueError, "weight"),
            ((x, t), {"weight": torch.ones(5, dtype=torch.int64)}, TypeError, "weight"),
            ((x, t), {"reduction": "avg"}, ValueError, "reduction"),
            ((x, t), {"label_smoothing": 1.5}, ValueError, "label_smoothing"),
            ((x, t), {"ignore_index": 2**63}, ValueError, "ignore_index"),
            ((x, t), {"num_threads": 0}, ValueError, "num_threads"),
            ((torch.zeros(2, 5, 4), t), {}, ValueError, "4-D"),
        ]

    def _raw_case(self, seed=5):
        x = _logits(2, 3, 4, 5, torch.float64, "cpu", seed).requires_grad_(True)
        t = _target(2, 3, 9, 8, "cpu", seed)
        return x, t

    def opcheck_inputs(self):
        x, t = self._raw_case()
        w = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
        return [((x, t, weight, -100, int(red), 0.1, align, True, 2), {})
                for red in Reduction for weight, align in ((None, False), (w, True))]

    def test_opcheck_backward_op(self):
        """The backward op (run when the forward formed no gradient) passes opcheck too."""
        x, t = self._raw_case()
        x = x.detach()
        op = torch.ops.segengine.upsample_cross_entropy_backward.default
        torch.library.opcheck(op, (torch.tensor(1.5, dtype=torch.float64), x, t, None, -100,
                                   int(Reduction.MEAN), 0.0, False, 2))
        g = torch.rand(t.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        torch.library.opcheck(op, (g, x, t, None, -100, int(Reduction.NONE), 0.1, True, 0))

    @pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
    def test_gradient_matches_reference(self, reduction):
        (x, t), kwargs = self.make_inputs(torch.float64, "cpu", seed=6)
        kwargs["reduction"] = reduction
        xa = x.clone().requires_grad_(True)
        xb = x.clone().requires_grad_(True)
        got = self.fn(xa, t, **kwargs)
        ref = self.reference(xb, t, **kwargs)
        gout = torch.rand(ref.shape, dtype=ref.dtype, generator=torch.Generator().manual_seed(1))
        (ga,) = torch.autograd.grad(got, xa, gout)
        (gb,) = torch.autograd.grad(ref, xb, gout)
        torch.testing.assert_close(ga, gb, rtol=1e-10, atol=1e-13)
