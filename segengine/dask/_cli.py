"""What ``segengine watershed`` and ``segengine crf`` do once their arguments are parsed.

Three stages, each with its own exit code: the inputs are opened and the lazy result is
built (a bad argument, a missing or incomplete input, an existing output: exit 2, one line
on stderr), the scheduler is set up (an unreachable ``--scheduler``: exit 2), then the
result is computed and written with :func:`segengine.dask._io.save_array` (a failure: exit
1; Ctrl-C: exit 130). Success: exit 0. The parser itself lives in :mod:`segengine.cli`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

import numpy as np

from segengine.dask._io import check_output, open_array, save_array

__all__ = ["run", "InputError"]

_INPUT_ERRORS = (OSError, ValueError, TypeError, ImportError, KeyError)


class InputError(ValueError):
    """A bad argument or input, reported with exit code 2."""


def _say(args, message: str) -> None:
    print(f"segengine {args.command}: {message}", file=sys.stderr)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- inputs

def _chunks_for(chunks, ndim: int, path: str):
    """``--chunks`` as dask chunks for an array of ``ndim`` axes (None passes through)."""
    if chunks is None or isinstance(chunks, int):
        return chunks
    if len(chunks) != ndim:
        raise InputError(f"--chunks has {len(chunks)} values but {path!r} has {ndim} axes")
    return tuple(chunks)


def _open_first(path: str, chunks):
    x = open_array(path)
    chunks = _chunks_for(chunks, x.ndim, path)
    return x if chunks is None else x.rechunk(chunks)


def _open_like(path: str, like, whole_axis=None):
    """Open ``path`` chunked like ``like`` (``whole_axis`` in one chunk) when the shapes allow;
    otherwise as stored, and the op reports the mismatch."""
    x = open_array(path)
    if x.ndim != like.ndim:
        return x
    chunks = list(like.chunks)
    if whole_axis is not None:
        chunks[whole_axis] = (x.shape[whole_axis],)
    if all(sum(c) == s for c, s in zip(chunks, x.shape)):
        x = x.rechunk(tuple(chunks))
    return x


def _check_output(args) -> None:
    if os.path.lexists(args.out) and not args.overwrite:
        raise InputError(f"output {args.out!r} already exists (use --overwrite to replace it)")
    check_output(args.out, args.overwrite)
    if os.path.abspath(args.out) in {os.path.abspath(p) for p in _input_paths(args) if p}:
        raise InputError(f"output {args.out!r} is also an input")


def _input_paths(args):
    if args.command == "watershed":
        return [args.input, args.markers, args.mask]
    return [args.logits, args.image]


def _build_watershed(args):
    import segengine.dask as sd

    image = _open_first(args.input, args.chunks)
    markers = _open_like(args.markers, image) if args.markers else None
    mask = None
    if args.mask:
        mask = _open_like(args.mask, image)
        if mask.dtype != bool:
            mask = mask != 0
    spill = None
    if not getattr(args, "no_spill", False):
        spill = args.spill_dir or os.path.dirname(os.path.abspath(args.out))
    return sd.watershed(image, markers, connectivity=args.connectivity, mask=mask,
                        compactness=args.compactness, watershed_line=args.watershed_line,
                        depth=args.depth, passes=args.passes, spill=spill)


def label_dtype(num_classes: int):
    """dtype of ``--output labels``: uint8 up to 256 classes, int32 beyond."""
    return np.dtype(np.uint8) if num_classes <= 256 else np.dtype(np.int32)


def _build_crf(args):
    import segengine.dask as sd

    logits = _open_first(args.logits, args.chunks)
    image = _open_like(args.image, logits, whole_axis=1)
    q = sd.dense_crf(logits, image, probabilities=args.probabilities, iterations=args.iterations,
                     gaussian_sxy=args.gaussian_sxy, gaussian_compat=args.gaussian_compat,
                     bilateral_sxy=args.bilateral_sxy, bilateral_srgb=args.bilateral_srgb,
                     bilateral_compat=args.bilateral_compat, normalization=args.normalization,
                     spacing=args.spacing, depth=args.depth)
    if args.output == "probabilities":
        return q
    return q.argmax(axis=1).astype(label_dtype(q.shape[1]))


_BUILDERS = {"watershed": _build_watershed, "crf": _build_crf}


# --------------------------------------------------------------------------- where to run

def _memory_limit(args):
    if args.memory_limit is None:
        return "auto"
    if not args.workers:
        raise InputError("--memory-limit applies to --workers only")
    from dask.utils import parse_bytes
    try:
        return parse_bytes(args.memory_limit)
    except (ValueError, TypeError):
        raise InputError(f"--memory-limit: cannot read {args.memory_limit!r} as a size "
                         "(e.g. 2GiB, 500MB)") from None


def _start_scheduler(args, stack: contextlib.ExitStack, memory_limit):
    """The scheduler to compute on: a Client (``--scheduler``/``--workers``) or "threads"."""
    if args.scheduler:
        if args.threads_per_worker:
            raise InputError("--threads-per-worker does not apply to --scheduler (the cluster "
                             "decides)")
        import distributed
        client = stack.enter_context(distributed.Client(args.scheduler, timeout="30s",
                                                        set_as_default=False))
        _say(args, f"dashboard: {client.dashboard_link}")
        return client
    if args.workers:
        import distributed
        cluster = stack.enter_context(distributed.LocalCluster(
            n_workers=args.workers, threads_per_worker=args.threads_per_worker or 1,
            processes=True, host="127.0.0.1", memory_limit=memory_limit,
            dashboard_address=None, silence_logs=logging.ERROR))
        return stack.enter_context(distributed.Client(cluster, set_as_default=False))
    if args.threads_per_worker:
        import dask
        stack.enter_context(dask.config.set(num_workers=args.threads_per_worker))
    return "threads"


# --------------------------------------------------------------------------- the run

def run(args) -> int:
    """Run a parsed ``watershed`` or ``crf`` command; returns the exit code."""
    try:
        _check_output(args)
        memory_limit = _memory_limit(args)
        result = _BUILDERS[args.command](args)
    except _INPUT_ERRORS as exc:
        _say(args, f"error: {_one_line(exc)}")
        return 2
    with contextlib.ExitStack() as stack:
        try:
            scheduler = _start_scheduler(args, stack, memory_limit)
        except _INPUT_ERRORS as exc:
            where = f"scheduler {args.scheduler}" if args.scheduler else "local cluster"
            _say(args, f"error: cannot start the {where}: {_one_line(exc)}")
            return 2
        try:
            save_array(result, args.out, overwrite=args.overwrite, scheduler=scheduler,
                       progress=not args.no_progress)
        except KeyboardInterrupt:
            _say(args, f"interrupted; {args.out!r} was not written")
            return 130
        except Exception as exc:
            _say(args, f"failed ({type(exc).__name__}): {_one_line(exc)}; {args.out!r} was not written")
            return 1
    _say(args, f"wrote {args.out} {tuple(result.shape)} {result.dtype}")
    return 0
