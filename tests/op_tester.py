"""One tester base for every op: each op declares its function, its reference and its inputs,
and inherits the same tests (torchvision's ``OpTester`` and kornia's ``BaseTester``, our way).

A subclass per op, named ``Test...`` so that pytest collects it::

    class TestWatershedOp(OpTester):
        op_name = "watershed"                      # segengine::watershed, for opcheck
        dtypes = (torch.uint8, torch.float32)

        def fn(self, *args, **kwargs):             # the public function
            return segengine.watershed(*args, **kwargs)

        def reference(self, *args, **kwargs):      # an independent oracle, on CPU inputs
            return reference_watershed(*args, **kwargs)

        def make_inputs(self, dtype, device, seed=0):
            return (image, markers), {"connectivity": 1}

        def bad_inputs(self):
            return [((image, None), {"connectivity": 0}, ValueError, "connectivity")]

        def opcheck_inputs(self):                  # arguments of the raw custom op
            return [((image, None, ...), {})]

Inherited tests (each can be switched off by a class attribute only where it does not
apply, and then says why in a visible skip):

- ``test_matches_reference`` — every dtype in ``dtypes`` x every device (CUDA whenever a GPU
  and CuPy are present; those cases carry the ``cuda`` marker), output on the input's device;
- ``test_numpy_in_numpy_out`` — numpy inputs give numpy outputs equal to the tensor result;
- ``test_non_contiguous`` / ``test_channels_last`` — strided inputs give the same result;
- ``test_batch_equals_per_item`` — the batch result is the per-item results stacked;
- ``test_bad_input`` — each declared bad input raises its exception with ``match=``;
- ``test_opcheck`` — ``torch.library.opcheck`` on the raw op;
- ``test_compile_fullgraph`` — ``torch.compile(fn, fullgraph=True)`` equals eager;
- ``test_gradcheck`` — for differentiable ops, in float64;
- ``test_threads_identical`` — ``num_threads`` 1, 2 and 3 give identical results.

Comparison is exact by default (``assert_same``); an op whose reference is only close overrides
it with its stated tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segengine import _cuda


def _cuda_ready() -> bool:
    return torch.cuda.is_available() and _cuda.cupy_available()


DEVICE_PARAMS = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=[
        pytest.mark.cuda,
        pytest.mark.skipif(not _cuda_ready(), reason="needs a CUDA GPU and CuPy")]),
]


# ----------------------------------------------------------------------------- tree helpers

def tree_map(fn, obj):
    """Apply ``fn`` to every tensor/array leaf of nested tuples, lists and dicts."""
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        return fn(obj)
    if isinstance(obj, tuple):
        return tuple(tree_map(fn, o) for o in obj)
    if isinstance(obj, list):
        return [tree_map(fn, o) for o in obj]
    if isinstance(obj, dict):
        return {k: tree_map(fn, v) for k, v in obj.items()}
    return obj


def leaves(obj) -> list:
    out = []
    tree_map(lambda x: out.append(x) or x, obj)
    return out


def to_device(obj, device):
    return tree_map(lambda t: t.to(device) if isinstance(t, torch.Tensor) else t, obj)


def to_numpy(obj):
    return tree_map(lambda t: t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t, obj)


def to_cpu_tensor(obj):
    def conv(x):
        if isinstance(x, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(x))
        return x.detach().cpu()
    return tree_map(conv, obj)


def non_contiguous(t):
    """Same values, last-axis stride 2 (a view into a wider buffer)."""
    if not isinstance(t, torch.Tensor) or t.dim() == 0 or t.numel() == 0:
        return t
    nc = torch.stack([t, torch.zeros_like(t)], dim=-1).select(-1, 0)
    assert not nc.is_contiguous() and torch.equal(nc, t)
    return nc


def channels_last(t):
    if isinstance(t, torch.Tensor) and t.dim() == 4 and t.numel() and t.dtype.is_floating_point:
        cl = t.contiguous(memory_format=torch.channels_last)
        return cl
    return t


def assert_exact(got, expected) -> None:
    """Exact equality of nested outputs (NaN equals NaN), compared as CPU tensors."""
    got, expected = to_cpu_tensor(got), to_cpu_tensor(expected)
    if isinstance(expected, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(expected), \
            f"output structure differs: {type(got).__name__} vs {type(expected).__name__}"
        for g, e in zip(got, expected):
            assert_exact(g, e)
        return
    if isinstance(expected, torch.Tensor):
        assert isinstance(got, torch.Tensor), f"expected a tensor/array, got {type(got).__name__}"
        torch.testing.assert_close(got, expected, rtol=0, atol=0, equal_nan=True,
                                   check_dtype=True, check_device=True)
        return
    assert got == expected


# ----------------------------------------------------------------------------- the base

class OpTester:
    """Base of the per-op testers; see the module docstring."""

    op_name: str | None = None      # segengine::<op_name>: the raw custom op for opcheck
    dtypes: tuple = (torch.float32,)
    differentiable = False
    batched = True                  # first axis of the batched inputs is the batch
    threaded = True                 # takes num_threads=
    channels_last_inputs = False    # has [B, C, H, W] float inputs
    compilable = True
    numpy_io = True
    gradcheck_skip_reason: str | None = None

    # ---- what a subclass declares
    def fn(self, *args, **kwargs):
        raise NotImplementedError

    def reference(self, *args, **kwargs):
        raise NotImplementedError

    def make_inputs(self, dtype, device, seed: int = 0):
        """``(args, kwargs)`` of :meth:`fn` on ``device``; batched inputs with B >= 2."""
        raise NotImplementedError

    def bad_inputs(self) -> list:
        """``[(args, kwargs, exception_type, match_regex), ...]``."""
        return []

    def opcheck_inputs(self) -> list:
        """``[(args, kwargs), ...]`` for the raw op ``torch.ops.segengine.<op_name>.default``."""
        return []

    def gradcheck_inputs(self):
        """``(args, kwargs)`` in float64 with ``requires_grad`` leaves, for differentiable ops."""
        return None

    def assert_same(self, got, expected) -> None:
        assert_exact(got, expected)

    def item(self, args, kwargs, i: int):
        """Arguments of batch item ``i`` (kept as a batch of one): tensors whose first axis is
        the batch size are sliced ``[i:i + 1]``."""
        B = self.batch_size(args, kwargs)
        cut = (lambda t: t[i:i + 1] if isinstance(t, torch.Tensor) and t.dim() and t.shape[0] == B
               else t)
        return tuple(cut(a) for a in args), {k: cut(v) for k, v in kwargs.items()}

    def batch_size(self, args, kwargs) -> int:
        first = next(a for a in args if isinstance(a, torch.Tensor))
        return first.shape[0]

    # ---- parametrisation
    def pytest_generate_tests(self, metafunc):
        if "dtype" in metafunc.fixturenames:
            metafunc.parametrize("dtype", self.dtypes, ids=[str(d).replace("torch.", "")
                                                            for d in self.dtypes])
        if "device" in metafunc.fixturenames:
            metafunc.parametrize("device", DEVICE_PARAMS)
        if "bad_case" in metafunc.fixturenames:
            cases = self.bad_inputs()
            metafunc.parametrize("bad_case", range(len(cases)) if cases else [None])

    # ---- the shared tests
    def test_matches_reference(self, dtype, device):
        args, kwargs = self.make_inputs(dtype, device)
        out = self.fn(*args, **kwargs)
        for leaf in leaves(out):
            if isinstance(leaf, torch.Tensor):
                assert leaf.device.type == device, f"output on {leaf.device}, input on {device}"
        cpu_args, cpu_kwargs = to_device(args, "cpu"), to_device(kwargs, "cpu")
        self.assert_same(out, self.reference(*cpu_args, **cpu_kwargs))

    def test_numpy_in_numpy_out(self):
        if not self.numpy_io:
            pytest.skip(f"{type(self).__name__}: the op takes tensors only")
        args, kwargs = self.make_inputs(self.dtypes[0], "cpu")
        expected = self.fn(*args, **kwargs)
        got = self.fn(*to_numpy(args), **to_numpy(kwargs))
        for leaf in leaves(got):
            assert isinstance(leaf, np.ndarray), f"numpy in gave {type(leaf).__name__} out"
        self.assert_same(got, to_numpy(expected))

    def test_non_contiguous(self, dtype):
        args, kwargs = self.make_inputs(dtype, "cpu")
        expected = self.fn(*args, **kwargs)
        nc_args = tree_map(non_contiguous, args)
        nc_kwargs = tree_map(non_contiguous, kwargs)
        assert any(isinstance(t, torch.Tensor) and not t.is_contiguous() for t in leaves(nc_args))
        self.assert_same(self.fn(*nc_args, **nc_kwargs), expected)

    def test_channels_last(self, dtype):
        if not self.channels_last_inputs:
            pytest.skip(f"{type(self).__name__}: no [B, C, H, W] float input")
        args, kwargs = self.make_inputs(dtype, "cpu")
        expected = self.fn(*args, **kwargs)
        cl_args = tree_map(channels_last, args)
        assert any(isinstance(t, torch.Tensor) and t.dim() == 4 and not t.is_contiguous()
                   for t in leaves(cl_args))
        self.assert_same(self.fn(*cl_args, **tree_map(channels_last, kwargs)), expected)

    def test_batch_equals_per_item(self):
        if not self.batched:
            pytest.skip(f"{type(self).__name__}: not a batched op")
        args, kwargs = self.make_inputs(self.dtypes[0], "cpu")
        B = self.batch_size(args, kwargs)
        assert B >= 2, "make_inputs must give a batch of at least 2 items"
        whole = self.fn(*args, **kwargs)
        for i in range(B):
            item_args, item_kwargs = self.item(args, kwargs, i)
            self.assert_same(self.fn(*item_args, **item_kwargs),
                             tree_map(lambda t: t[i:i + 1] if t.dim() else t, whole))

    def test_bad_input(self, bad_case):
        if bad_case is None:
            pytest.fail(f"{type(self).__name__} declares no bad_inputs()")
        args, kwargs, exc, match = self.bad_inputs()[bad_case]
        with pytest.raises(exc, match=match):
            self.fn(*args, **kwargs)

    def test_opcheck(self):
        cases = self.opcheck_inputs()
        assert self.op_name and cases, f"{type(self).__name__} declares no op_name/opcheck_inputs()"
        op = getattr(torch.ops.segengine, self.op_name).default
        for args, kwargs in cases:
            torch.library.opcheck(op, args, kwargs)

    def test_compile_fullgraph(self):
        if not self.compilable:
            pytest.skip(f"{type(self).__name__}: not compilable")
        args, kwargs = self.make_inputs(self.dtypes[0], "cpu")
        expected = self.fn(*args, **kwargs)
        torch._dynamo.reset()
        compiled = torch.compile(self.fn, fullgraph=True, backend="aot_eager")
        self.assert_same(compiled(*args, **kwargs), expected)

    def test_gradcheck(self):
        if not self.differentiable:
            pytest.skip(f"{type(self).__name__}: not differentiable")
        if self.gradcheck_skip_reason:
            pytest.skip(self.gradcheck_skip_reason)
        args, kwargs = self.gradcheck_inputs()
        assert any(isinstance(a, torch.Tensor) and a.requires_grad for a in args)
        assert torch.autograd.gradcheck(lambda *a: self.fn(*a, **kwargs), args)

    def test_threads_identical(self):
        if not self.threaded:
            pytest.skip(f"{type(self).__name__}: takes no num_threads")
        args, kwargs = self.make_inputs(self.dtypes[0], "cpu")
        outs = [self.fn(*args, **{**kwargs, "num_threads": n}) for n in (1, 2, 3)]
        self.assert_same(outs[1], outs[0])
        self.assert_same(outs[2], outs[0])
