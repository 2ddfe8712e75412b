"""What each fuzz target calls, and the contract its result must meet (runs in the worker).

A target is a function ``run(args, kwargs, finite)`` taking the materialised arguments of a
:class:`~tests.fuzz.spec.Call`; it calls the public API and raises :class:`Violation` when a
result breaks the contract (wrong shape/dtype, NaN from finite input).  Exceptions it lets
through are judged by :func:`allowed_exception`.  Program targets (a Graph, a DenseCRF, a
lattice) run a sequence of method calls, each of which must meet the contract on its own;
an allowed exception ends only that call, so later calls also probe the state it left.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["TARGETS", "Violation", "allowed_exception", "run_call"]

BASE_ALLOWED = (ValueError, TypeError, OverflowError, MemoryError, NotImplementedError)
# the drop-ins' peers (PyMaxflow, pydensecrf) raise these for bad ids / keys too
DROPIN_ALLOWED = BASE_ALLOWED + (IndexError, KeyError)
DROPIN_TARGETS = {"maxflow_graph", "fastmin", "densecrf_program", "densecrf_utils"}


class Violation(AssertionError):
    """A call returned, but its result breaks the contract."""


def allowed_exception(target: str, exc: BaseException) -> bool:
    """True when ``exc`` is an acceptable way for ``target`` to refuse its input.

    A plain ``RuntimeError`` (a C++ ``std::`` exception or a torch internal check leaking
    through) is never acceptable; subclasses that are also ValueErrors (``GraphError``) are.
    """
    allowed = DROPIN_ALLOWED if target in DROPIN_TARGETS else BASE_ALLOWED
    return isinstance(exc, allowed)


# ------------------------------------------------------------------------ output checks

def _as_numpy(x):
    if type(x).__module__.startswith("torch"):
        import torch
        x = x.detach()
        if x.dtype == torch.bfloat16:
            x = x.float()
        return x.cpu().numpy()
    return np.asarray(x)


def check_finite(value, finite: bool, what: str) -> None:
    """Every float in ``value`` (arrays, tensors, tuples, numbers) is finite, if ``finite``."""
    if not finite or value is None:
        return
    if isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            check_finite(v, finite, f"{what}[{i}]")
        return
    if isinstance(value, (bool, int, str)):
        return
    a = _as_numpy(value)
    if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
        raise Violation(f"{what}: non-finite output from finite input "
                        f"({int(np.size(a) - np.isfinite(a).sum())} of {a.size} values)")


def _shape(x) -> tuple:
    """Shape of an array, tensor or nested list (without copying a tensor)."""
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def check_shape(value, shape, what: str) -> None:
    if tuple(value.shape) != tuple(shape):
        raise Violation(f"{what}: shape {tuple(value.shape)}, expected {tuple(shape)}")


def check_same_kind(out, inp, what: str) -> None:
    """numpy in gives numpy out; tensor in gives tensor out."""
    import torch
    if isinstance(inp, torch.Tensor) != isinstance(out, torch.Tensor):
        raise Violation(f"{what}: returned {type(out).__name__} for a {type(inp).__name__} input")


def check_labels(labels, low, high, what: str) -> None:
    a = _as_numpy(labels)
    if a.size and (a.min() < low or a.max() >= high):
        raise Violation(f"{what}: labels outside [{low}, {high}): min {a.min()}, max {a.max()}")


# ------------------------------------------------------------------------ single calls

def _upsample_argmax(args, kwargs, finite):
    import segengine
    out = segengine.upsample_argmax(*args, **kwargs)
    labels = out[0] if kwargs.get("return_confidence") else out
    logits = args[0]
    check_same_kind(labels, logits, "labels")
    if labels.ndim != 3 or labels.shape[0] != _shape(logits)[0]:
        raise Violation(f"labels shape {tuple(labels.shape)} for logits {_shape(logits)}")
    if str(labels.dtype) not in ("int64", "torch.int64"):
        raise Violation(f"labels dtype {labels.dtype}")
    if finite:
        check_labels(labels, 0, _shape(logits)[1], "labels")
    check_finite(out, finite, "upsample_argmax")


def _grad_leaf(x, backward):
    """A float tensor that requires grad when the call will run backward, else ``x``."""
    import torch
    if backward and isinstance(x, torch.Tensor) and x.dtype.is_floating_point:
        return x.detach().clone().requires_grad_(True)
    return x


def _upsample_cross_entropy(args, kwargs, finite):
    import torch
    import segengine
    backward = kwargs.pop("backward", False)
    logits = _grad_leaf(args[0], backward)
    loss = segengine.upsample_cross_entropy(logits, *args[1:], **kwargs)
    if finite and not _peer_cross_entropy_is_finite(logits, args[1:], kwargs):
        finite = False  # e.g. "mean" over all-ignored targets: F.cross_entropy gives NaN too
    check_finite(loss, finite, "loss")
    if backward and isinstance(loss, torch.Tensor) and loss.requires_grad:
        loss.sum().backward()
        check_finite(logits.grad, finite, "grad")
        check_shape(logits.grad, logits.shape, "grad")


def _peer_cross_entropy_is_finite(logits, rest, kwargs) -> bool:
    """Whether ``F.cross_entropy(F.interpolate(...))``, in float64 and then cast to the logits'
    dtype as the op's loss is, is finite here (True when too big to try)."""
    import torch
    import torch.nn.functional as F
    target = rest[0] if rest else kwargs.get("target")
    x = torch.as_tensor(logits).detach().double()
    t = torch.as_tensor(target).long()
    if x.numel() * t.numel() > 1 << 22 or x.dim() != 4 or t.dim() != 3:
        return True
    weight = kwargs.get("weight", rest[1] if len(rest) > 1 else None)
    up = F.interpolate(x, size=tuple(t.shape[-2:]), mode="bilinear",
                       align_corners=bool(kwargs.get("align_corners", False)))
    loss = F.cross_entropy(up, t, weight=None if weight is None else torch.as_tensor(weight).double(),
                           ignore_index=kwargs.get("ignore_index", -100),
                           reduction=kwargs.get("reduction", "mean"),
                           label_smoothing=kwargs.get("label_smoothing", 0.0))
    out_dtype = torch.as_tensor(logits).dtype  # the loss comes back in the logits' dtype
    return bool(torch.isfinite(loss.to(out_dtype if out_dtype.is_floating_point else torch.float64)).all())


def _dense_crf(args, kwargs, finite):
    import segengine
    q = segengine.dense_crf(*args, **kwargs)
    check_same_kind(q, args[0], "dense_crf")
    check_shape(q, _shape(args[0]), "dense_crf")
    check_finite(q, finite, "dense_crf")
    a = _as_numpy(q)
    if finite and a.size and (a.min() < -1e-6 or a.max() > 1 + 1e-5):
        raise Violation(f"dense_crf: probabilities outside [0, 1] ({a.min()}, {a.max()})")


def _permutohedral_filter(args, kwargs, finite):
    import segengine
    out = segengine.permutohedral_filter(*args, **kwargs)
    check_shape(out, _shape(args[0]), "permutohedral_filter")
    check_finite(out, finite, "permutohedral_filter")


def _bilateral_filter(args, kwargs, finite):
    import segengine
    out = segengine.bilateral_filter(*args, **kwargs)
    check_shape(out, _shape(args[0]), "bilateral_filter")
    check_finite(out, finite, "bilateral_filter")


def _graphcut(args, kwargs, finite):
    import torch
    import segengine
    backward = kwargs.pop("backward", False)
    unary = _grad_leaf(args[0], backward)
    labels = segengine.graphcut(unary, *args[1:], **kwargs)
    check_shape(labels, _shape(unary)[:1] + _shape(unary)[2:], "graphcut")
    if finite:
        check_labels(labels, 0, 2, "graphcut")
    if isinstance(unary, np.ndarray) and not isinstance(labels, np.ndarray):
        raise AssertionError(f"graphcut: numpy in gave {type(labels).__name__} out")
    if backward and isinstance(labels, torch.Tensor) and labels.requires_grad:
        labels.sum().backward()
        check_finite(unary.grad, finite, "graphcut grad")


def _multilabel(name):
    def run(args, kwargs, finite):
        import segengine
        labels, energy = getattr(segengine, name)(*args, **kwargs)
        unary = args[0]
        check_shape(labels, _shape(unary)[1:], name)
        check_labels(labels, 0, _shape(unary)[0], name)
        check_finite(energy, finite, f"{name} energy")
    return run


def _fastmin(args, kwargs, finite):
    from segengine.maxflow import fastmin
    method = kwargs.pop("method")
    labels = getattr(fastmin, method)(*args, **kwargs)
    unary = np.asarray(args[0])
    check_shape(labels, unary.shape[:-1], method)
    check_labels(labels, 0, unary.shape[-1], method)


def _watershed(args, kwargs, finite):
    import segengine
    out = segengine.watershed(*args, **kwargs)
    check_same_kind(out, args[0], "watershed")
    check_shape(out, _shape(args[0]), "watershed")


def _watershed_batch(args, kwargs, finite):
    import segengine
    out = segengine.watershed_batch(*args, **kwargs)
    check_shape(out, _shape(args[0]), "watershed_batch")


def _metrics(args, kwargs, finite):
    from segengine import metrics
    fn = kwargs.pop("fn")
    out = getattr(metrics, fn)(*args, **kwargs)
    if fn == "confusion_matrix":
        a = _as_numpy(out)
        if a.dtype.kind not in "iu" or (a.size and a.min() < 0):
            raise Violation(f"confusion_matrix: dtype {a.dtype}, min {a.min() if a.size else None}")


def _densecrf_utils(args, kwargs, finite):
    from segengine.densecrf import utils
    fn = kwargs.pop("fn")
    out = getattr(utils, fn)(*args, **kwargs)
    check_finite(out, finite, fn)


# ------------------------------------------------------------------------ programs

def _substitute(value, env):
    if isinstance(value, str) and value.startswith("$"):
        return env.get(value)
    if isinstance(value, tuple):
        return tuple(_substitute(v, env) for v in value)
    if isinstance(value, dict):
        return {k: _substitute(v, env) for k, v in value.items()}
    return value


def run_program(obj_factory, ops, target, check_result=None):
    """Apply ``ops`` (``(method, args, kwargs)`` triples) to the object made by ``obj_factory``.

    String arguments ``"$ids"`` (the last ids returned by ``add_nodes``/``add_grid_nodes``)
    and ``"$Q"`` (the last marginals returned by an inference call) refer to earlier results.
    Returns the list of outcomes per call (``"ok"`` or the exception's type name); a call
    raising a non-allowed exception or whose result fails ``check_result`` raises.
    """
    obj = obj_factory()
    outcomes = []
    env = {}
    for k, (method, args, kwargs) in enumerate(ops):
        args, kwargs = _substitute(args, env), _substitute(kwargs, env)
        try:
            if method == "copy":
                obj = obj.copy()
                result = None
            else:
                result = getattr(obj, method)(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - judged right here
            if not allowed_exception(target, exc):
                exc.add_note(f"in call {k}: {method}")
                raise
            outcomes.append(type(exc).__name__)
            continue
        if check_result is not None:
            check_result(method, args, result, k)
        if method in ("add_nodes", "add_grid_nodes"):
            env["$ids"] = result
        elif method in ("inference", "startInference"):
            env["$Q"] = result[0] if isinstance(result, tuple) else result
        outcomes.append("ok")
    return outcomes


def _maxflow_graph(args, kwargs, finite):
    from segengine import maxflow
    kind, ops = args
    factory = {"float": maxflow.Graph[float], "int": maxflow.Graph[int],
               "float32": maxflow.GraphFloat32, "int32": maxflow.GraphInt32}[kind]

    def check(method, margs, result, k):
        if method == "maxflow":
            if not isinstance(result, (int, float, np.number)) or not math.isfinite(float(result)):
                raise Violation(f"[call {k}] maxflow returned {result!r}")
        elif method == "get_segment" and result not in (0, 1):
            raise Violation(f"[call {k}] get_segment returned {result!r}")
        elif method in ("get_grid_segments", "get_segments"):
            a = np.asarray(result)
            if a.dtype != bool and not np.isin(a, (0, 1)).all():
                raise Violation(f"[call {k}] {method} returned values {np.unique(a)[:5]}")

    run_program(factory, ops, "maxflow_graph", check)


def _densecrf_program(args, kwargs, finite):
    from segengine import densecrf
    ctor, ctor_args, ops = args

    def check(method, margs, result, k):
        if method in ("inference", "startInference"):
            q = result[0] if method == "startInference" else result
            check_finite(q, finite, f"[call {k}] {method}")
        elif method == "klDivergence":
            check_finite(result, finite, f"[call {k}] klDivergence")

    run_program(lambda: getattr(densecrf, ctor)(*ctor_args), ops, "densecrf_program", check)


def _lattice_program(args, kwargs, finite):
    import segengine
    features, ops = args

    def check(method, margs, result, k):
        check_finite(result, finite, f"[call {k}] {method}")

    run_program(lambda: segengine.PermutohedralLattice(features, **kwargs), ops,
                "lattice_program", check)


def _confusion_program(args, kwargs, finite):
    from segengine import metrics
    ctor_args, ops = args
    run_program(lambda: metrics.ConfusionMatrix(*ctor_args), ops, "confusion_program")


def _nn_densecrf(args, kwargs, finite):
    import torch
    import segengine.nn
    ctor_kwargs, logits, image, backward = args
    layer = segengine.nn.DenseCRF(**ctor_kwargs)
    if backward and isinstance(logits, torch.Tensor) and logits.dtype.is_floating_point:
        logits = logits.detach().clone().requires_grad_(True)
    out = layer(logits, image)
    check_finite(out, finite, "nn.DenseCRF")
    check_shape(out, _shape(logits), "nn.DenseCRF")
    if backward and out.requires_grad:
        out.sum().backward()
        check_finite(logits.grad if logits.requires_grad else None, finite, "nn.DenseCRF grad")
        for name, p in layer.named_parameters():
            check_finite(p.grad, finite, f"nn.DenseCRF {name}.grad")


def _selftest(args, kwargs, finite):
    """Misbehaves on purpose, so the tests can check the harness reports each failure kind."""
    import ctypes
    import os
    import time
    mode = args[0]
    if mode == "segfault":
        ctypes.string_at(0)
    elif mode == "abort":
        os.abort()
    elif mode == "hang":
        time.sleep(3600)
    elif mode == "runtime_error":
        raise RuntimeError("std::bad_array_new_length")
    elif mode == "nan":
        check_finite(np.array([np.nan]), finite, "selftest")
    elif mode == "value_error":
        raise ValueError("refused")


TARGETS = {
    "_selftest": _selftest,
    "upsample_argmax": _upsample_argmax,
    "upsample_cross_entropy": _upsample_cross_entropy,
    "dense_crf": _dense_crf,
    "lattice_program": _lattice_program,
    "permutohedral_filter": _permutohedral_filter,
    "bilateral_filter": _bilateral_filter,
    "densecrf_program": _densecrf_program,
    "densecrf_utils": _densecrf_utils,
    "nn_densecrf": _nn_densecrf,
    "graphcut": _graphcut,
    "alpha_expansion": _multilabel("alpha_expansion"),
    "alpha_beta_swap": _multilabel("alpha_beta_swap"),
    "maxflow_graph": _maxflow_graph,
    "fastmin": _fastmin,
    "watershed": _watershed,
    "watershed_batch": _watershed_batch,
    "metrics": _metrics,
    "confusion_program": _confusion_program,
}


def run_call(call, materialize, is_finite_spec):
    """Run one :class:`~tests.fuzz.spec.Call`; returns ``("ok", detail)``,
    ``("raised", type, message, allowed)`` or ``("violation", message)``."""
    import traceback
    finite = is_finite_spec(call)
    try:
        args = materialize(call.args)
        kwargs = materialize(dict(call.kwargs))
    except Exception:  # noqa: BLE001 - a harness problem, not a finding
        return ("harness", traceback.format_exc(limit=4))
    try:
        TARGETS[call.target](args, kwargs, finite)
    except Violation as v:
        return ("violation", str(v))
    except BaseException as exc:  # noqa: BLE001 - judged here
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        tb = traceback.format_exc(limit=-3)
        message = " ".join([str(exc)[:500]] + list(getattr(exc, "__notes__", [])))
        return ("raised", f"{type(exc).__module__}.{type(exc).__qualname__}", message,
                allowed_exception(call.target, exc), tb)
    return ("ok", None)
