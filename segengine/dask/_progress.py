"""Compute a dask collection under a chosen scheduler, optionally with a progress bar on stderr."""

from __future__ import annotations

import contextlib
import sys

__all__ = ["compute_with_progress", "as_client"]


def as_client(scheduler):
    """The ``distributed.Client`` that ``scheduler`` designates, or None for a local scheduler.

    None designates the default Client when one is set (dask's own rule), a string a local
    scheduler ("threads", "synchronous", "processes"), a Client itself.
    """
    if isinstance(scheduler, str):
        return None
    if scheduler is None:
        if "distributed" not in sys.modules:
            return None
        import distributed
        try:
            return distributed.default_client()
        except ValueError:
            return None
    import distributed
    if isinstance(scheduler, distributed.Client):
        return scheduler
    raise TypeError(f"`scheduler` must be None, a scheduler name or a distributed.Client, "
                    f"got {type(scheduler).__name__}")


def compute_with_progress(obj, scheduler=None, progress=False):
    """``obj.compute()`` on ``scheduler``; with ``progress``, a text progress bar on stderr.

    Local schedulers get :class:`dask.diagnostics.ProgressBar`; a Client gets
    :func:`distributed.progress` (its text bar, moved from stdout to stderr). On any
    exception, KeyboardInterrupt included, the Client's futures are cancelled before the
    exception propagates, so no worker keeps writing.
    """
    import dask

    client = as_client(scheduler)
    if client is None:
        ctx = contextlib.nullcontext()
        if progress:
            from dask.diagnostics import ProgressBar
            ctx = ProgressBar(out=sys.stderr)
        with ctx:
            return dask.compute(obj, scheduler=scheduler)[0]

    import distributed

    future = client.compute(obj)
    try:
        if progress:
            with contextlib.redirect_stdout(sys.stderr):
                distributed.progress(future, notebook=False, scheduler=client.scheduler.address)
        return future.result()
    except BaseException:
        future.cancel()
        raise
