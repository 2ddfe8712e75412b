"""Registration of segengine's custom ops: one schema per op, one kernel per device.

Every op is declared here the way torchvision's C++ registration does it, through the
low-level ``torch.library.Library`` define/impl path::

    _op = define("watershed(Tensor image, ...) -> Tensor")

    @register_kernel("watershed", "cpu")
    def _(image, ...): ...

    @register_kernel("watershed", "cuda")   # in ops/_watershed_cuda.py
    def _(image, ...): ...

    @register_fake("watershed")
    def _(image, ...): ...

    register_autograd("watershed", backward, setup_context=setup_context)   # differentiable ops

Why not ``torch.library.custom_op``: it wraps each device kernel in ``torch._disable_dynamo``,
whose first call imports ``torch._dynamo`` (about 1.5 s and 70 MB in a fresh process), so a
script's first segengine call paid for the compiler stack it never used. Kernels registered
with ``Library.impl`` are plain dispatcher entries; ``torch.compile`` still treats the op as
opaque (through its fake kernel), and ``opcheck`` and autograd work as before
(tests/op_tester.py checks all three for every op).
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["NAMESPACE", "define", "register_kernel", "register_fake", "register_autograd"]

NAMESPACE = "segengine"

# One library object for the namespace; FRAGMENT so that a module reloaded by a test (or a
# second import path) does not fail on an existing DEF.
_LIB = torch.library.Library(NAMESPACE, "FRAGMENT")

_DISPATCH_KEY = {"cpu": "CPU", "cuda": "CUDA"}


def define(schema: str) -> torch._ops.OpOverload:
    """Declare ``segengine::<schema>`` and return its default overload (the callable op).

    Parameters
    ----------
    schema : str
        The op's schema without namespace, e.g. ``"graphcut(Tensor unary, ...) -> Tensor"``.
    """
    name = schema.split("(", 1)[0].strip()
    _LIB.define(schema)
    return getattr(getattr(torch.ops, NAMESPACE), name).default


def register_kernel(name: str, device: str) -> Callable[[Callable], Callable]:
    """Decorator registering ``fn`` as the ``device`` ("cpu" or "cuda") kernel of ``name``."""
    if device not in _DISPATCH_KEY:
        raise ValueError(f"device must be one of {sorted(_DISPATCH_KEY)}, got {device!r}")

    def decorate(fn: Callable) -> Callable:
        _LIB.impl(name, fn, _DISPATCH_KEY[device])
        return fn
    return decorate


def register_fake(name: str) -> Callable[[Callable], Callable]:
    """Decorator registering the fake (meta) kernel of ``name``: output shapes and dtypes."""
    def decorate(fn: Callable) -> Callable:
        torch.library.register_fake(f"{NAMESPACE}::{name}", fn, lib=_LIB)
        return fn
    return decorate


def register_autograd(name: str, backward: Callable, *, setup_context: Callable) -> None:
    """The backward formula of ``name`` (see ``torch.library.register_autograd``)."""
    torch.library.register_autograd(f"{NAMESPACE}::{name}", backward, setup_context=setup_context,
                                    lib=_LIB)
