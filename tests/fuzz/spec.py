"""Printable, picklable descriptions of fuzz inputs, turned into real arrays in the worker.

A spec's ``repr`` is Python source that rebuilds it (evaluate it with :func:`parse`), so a
failure report is a reproducer.  Arrays are described, not stored: :class:`Arr` holds a
shape, dtype, layout and seed and is materialised only in the worker process, which keeps
examples cheap to send and lets a "large" array be a zero-stride broadcast of a tiny one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Arr", "Call", "parse", "materialize", "is_finite_spec"]

TORCH_DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16",
                "float32", "float64", "complex64", "complex128")
NUMPY_DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64",
                "float16", "float32", "float64", "longdouble", "complex64", "complex128", "object")
LAYOUTS = ("C", "F", "strided", "negative", "broadcast", "permuted")


@dataclass(frozen=True)
class Arr:
    """A numpy array (``torch=False``) or CPU tensor (``torch=True``) to build in the worker.

    Parameters
    ----------
    shape : tuple of int
        Logical shape.
    dtype : str
        numpy dtype name; ``"bfloat16"`` only with ``torch=True``; ``"object"`` holds Python floats.
    fill : str
        ``"randn"`` (normal), ``"uniform"`` (0..1), ``"int"`` (integers ``0..scale``),
        ``"zeros"``, ``"ones"`` or ``"const"`` (every element ``scale``).
    scale : float
        Multiplier of ``randn``/``uniform``, upper bound of ``int``, the value of ``const``.
    seed : int
        Seed of the values.
    layout : str
        ``"C"``, ``"F"`` (Fortran order), ``"strided"`` (every other element of a wider
        buffer), ``"negative"`` (negative strides; a permuted view for tensors),
        ``"broadcast"`` (zero strides on every axis but a short last one: a large declared
        shape allocates almost nothing) or ``"permuted"`` (channels-last style view).
    special : tuple of (int, float)
        ``(flat_index, value)`` pairs written after filling (NaN, inf, huge values).
    torch : bool
        Build a ``torch.Tensor`` instead of an ndarray.
    """

    shape: tuple
    dtype: str = "float32"
    fill: str = "randn"
    scale: float = 1.0
    seed: int = 0
    layout: str = "C"
    special: tuple = ()
    torch: bool = False


@dataclass(frozen=True)
class Call:
    """One fuzz example: ``target`` is a key of :data:`tests.fuzz.targets.TARGETS`."""

    target: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


def parse(text: str):
    """Rebuild a spec from its ``repr`` (``nan``/``inf`` are understood)."""
    return eval(text, {"Arr": Arr, "Call": Call, "nan": math.nan, "inf": math.inf})


def _base_shape(a: Arr) -> tuple:
    """Allocated shape of a broadcast array: its last axis when that is small, else one element."""
    shape = tuple(int(s) for s in a.shape)
    if shape and shape[-1] <= 1 << 16:
        return tuple(1 for _ in shape[:-1]) + shape[-1:]
    return tuple(1 for _ in shape)


def _values(a: Arr) -> np.ndarray:
    """The logical values, C-contiguous, in float64/complex/bool/int of the target dtype."""
    shape = tuple(int(s) for s in a.shape)
    if a.layout == "broadcast":
        shape = _base_shape(a)
    rng = np.random.default_rng(a.seed)
    n = math.prod(shape)
    if a.fill == "uniform":
        v = rng.random(n) * a.scale
    elif a.fill == "int":
        v = rng.integers(0, max(int(min(a.scale, 2**62)), 0) + 1, n).astype(np.float64)
    elif a.fill == "zeros":
        v = np.zeros(n)
    elif a.fill == "ones":
        v = np.ones(n)
    elif a.fill == "const":
        v = np.full(n, a.scale)
    else:
        v = rng.standard_normal(n) * a.scale
    for index, value in a.special:
        if n:
            v[int(index) % n] = value
    return v.reshape(shape)


def _cast(v: np.ndarray, dtype: str) -> np.ndarray:
    if dtype in ("bfloat16", "object"):
        base = v.astype(np.float32 if dtype == "bfloat16" else np.float64)
        return base.astype(object) if dtype == "object" else base
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return v > 0.5 if v.size else v.astype(bool)
    if dt.kind == "c":
        return (v + 0.5j * v).astype(dt)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        with np.errstate(invalid="ignore"):
            w = np.nan_to_num(v, nan=0, posinf=info.max, neginf=info.min)
            return np.clip(np.round(w), info.min, info.max).astype(dt)
    with np.errstate(over="ignore"):
        return v.astype(dt)


def _layout(v: np.ndarray, a: Arr) -> np.ndarray:
    if a.layout == "broadcast":
        return np.broadcast_to(v, tuple(int(s) for s in a.shape))
    if a.layout == "F":
        return np.asfortranarray(v)
    if a.layout == "strided" and v.ndim:
        buf = np.zeros(v.shape[:-1] + (2 * v.shape[-1],), dtype=v.dtype)
        buf[..., ::2] = v
        return buf[..., ::2]
    if a.layout == "negative" and not a.torch:
        return np.flip(np.flip(v).copy())
    if a.layout in ("permuted", "negative") and v.ndim >= 2:
        # channels-last for "permuted" (axis 1 innermost), reversed axes for tensor "negative"
        order = (tuple(range(v.ndim - 1, -1, -1)) if a.layout == "negative"
                 else (0,) + tuple(range(2, v.ndim)) + (1,))
        inverse = tuple(np.argsort(order))
        return np.ascontiguousarray(v.transpose(order)).transpose(inverse)
    return np.ascontiguousarray(v)


def _to_torch(v: np.ndarray, a: Arr):
    import torch
    t = torch.from_numpy(v if v.flags.writeable else v.copy())
    if a.dtype == "bfloat16":
        t = t.to(torch.bfloat16)
    if a.layout == "broadcast":
        t = t.expand(tuple(int(s) for s in a.shape))
    return t


def build_array(a: Arr):
    """Materialise one :class:`Arr` (in the worker)."""
    v = _cast(_values(a), a.dtype)
    if a.torch:
        return _to_torch(v if a.layout == "broadcast" else _layout(v, a), a)
    return _layout(v, a)


def materialize(obj):
    """Replace every :class:`Arr` inside tuples, lists and dicts by its array."""
    if isinstance(obj, Arr):
        return build_array(obj)
    if isinstance(obj, tuple):
        return tuple(materialize(x) for x in obj)
    if isinstance(obj, list):
        return [materialize(x) for x in obj]
    if isinstance(obj, dict):
        return {k: materialize(x) for k, x in obj.items()}
    return obj


FLOAT32_MAX = 3.4028234663852886e38


def _finite_number(x) -> bool:
    if isinstance(x, float):
        return abs(x) <= FLOAT32_MAX
    return True


def is_finite_spec(obj) -> bool:
    """True when the spec's inputs are moderate, so that its float outputs must be finite.

    Moderate: arrays without NaN/inf/±1e38 entries and with values up to 1e30 in magnitude
    (float16 arrays up to its range), numbers finite in float32.  Overflow from values near
    the float32 limit is legitimate, a NaN from moderate input is not.
    """
    if isinstance(obj, Arr):
        limit = 6e4 if obj.dtype == "float16" else 1e30
        return abs(obj.scale) <= limit and not obj.special
    if isinstance(obj, (tuple, list)):
        return all(is_finite_spec(x) for x in obj)
    if isinstance(obj, dict):
        return all(is_finite_spec(x) for x in obj.values())
    if isinstance(obj, Call):
        return is_finite_spec(obj.args) and is_finite_spec(obj.kwargs)
    return _finite_number(obj)
