"""Helpers shared by the op wrappers: array/tensor conversion, thread counts, errors."""

from __future__ import annotations

import numbers

import numpy as np
import torch

def as_tensor(x, name: str) -> tuple[torch.Tensor, bool]:
    """Return ``(tensor, was_numpy)``. numpy arrays must be numeric; they are wrapped
    without a copy when already C-contiguous, native-endian and writeable."""
    if isinstance(x, torch.Tensor):
        return x, False
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{name} must have a numeric dtype, got {x.dtype}")
        if x.dtype.byteorder == ">":
            x = x.astype(x.dtype.newbyteorder("="))
        x = np.ascontiguousarray(x) if x.ndim else x.copy()  # ascontiguousarray makes 0-d 1-d
        if not x.flags.writeable:
            x = x.copy()
        return torch.from_numpy(x), True
    raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


def to_output(t: torch.Tensor, was_numpy: bool):
    """Give back numpy when the input was numpy."""
    return t.cpu().numpy() if was_numpy else t


def check_threads(num_threads) -> None:
    """The one check of every op's ``num_threads``: None or an integer >= 1.

    Raises TypeError for anything that is not None or an integer (``2.7``, ``"2"``, True;
    numpy integers are accepted) and ValueError for integers below 1."""
    if num_threads is None:
        return
    if isinstance(num_threads, bool) or not isinstance(num_threads, numbers.Integral):
        raise TypeError(f"num_threads must be None or an integer >= 1, got {num_threads!r} "
                        f"({type(num_threads).__name__})")
    if num_threads < 1:
        raise ValueError(f"num_threads must be None or an integer >= 1, got {num_threads!r}")


def resolve_threads(num_threads) -> int:
    """``None`` means ``torch.get_num_threads()``; otherwise an int >= 1 (see check_threads)."""
    check_threads(num_threads)
    if num_threads is None:
        return torch.get_num_threads()
    return int(num_threads)


def check_ndim(t: torch.Tensor, name: str, ndims, layout: str) -> None:
    ndims = (ndims,) if isinstance(ndims, int) else tuple(ndims)
    if t.dim() not in ndims:
        raise ValueError(f"{name} must be {layout} ({' or '.join(map(str, ndims))}-D), "
                         f"got shape {tuple(t.shape)}")


def check_float(t: torch.Tensor, name: str) -> None:
    if t.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise TypeError(f"{name} must be a floating-point tensor (float16, bfloat16, float32 "
                        f"or float64), got {t.dtype}")


def check_nonempty(t: torch.Tensor, name: str) -> None:
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(t.shape)}")


def op_threads(num_threads) -> int:
    """Validated thread count for a custom-op argument: 0 stands for None, resolved when the
    kernel runs (``torch.get_num_threads()`` cannot be traced by torch.compile)."""
    return 0 if num_threads is None else resolve_threads(num_threads)


def run_threads(n: int) -> int:
    """Thread count inside an op implementation: 0 means ``torch.get_num_threads()``."""
    return n if n > 0 else torch.get_num_threads()


def all_finite(t: torch.Tensor) -> bool:
    """Whether every element of ``t`` is finite (integer tensors: always).

    CPU tensors are checked through numpy (zero-copy view): the first use of torch's own
    reduction kernels in a process costs about 4 MB of resident memory, which a script's
    first call would pay for a check."""
    if not (t.dtype.is_floating_point or t.dtype.is_complex):
        return True
    if t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64):
        return bool(np.isfinite(t.detach().numpy()).all())
    return bool(torch.isfinite(t).all())
