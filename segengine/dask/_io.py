"""Reading and writing arrays on disk for ``segengine.dask``: zarr stores, ``.npy`` and TIFF.

Outputs are written so that a half-written one never looks complete. :func:`save_array`
writes into a temporary sibling (``OUT.partial-<random>``) whose zarr attributes say
``segengine_complete: false``; only when every chunk is stored does it set the attribute to
``true`` and rename the store to ``OUT``. A run that is killed leaves at most the
``.partial-`` sibling, which :func:`open_array` refuses, and no ``OUT``. ``.npy`` and TIFF
outputs (small arrays only) are computed in memory, written to a temporary sibling file and
renamed with :func:`os.replace`.

Paths are local filesystem paths. Under ``dask.distributed`` the workers write their chunks
straight into the store, so the path must be one that every worker sees (any local path for
a ``LocalCluster``; a shared filesystem for a real cluster).
"""

from __future__ import annotations

import math
import os
import secrets
import shutil

import numpy as np

from segengine.dask._progress import compute_with_progress

__all__ = ["open_array", "save_array", "is_complete", "check_output", "COMPLETE_ATTR", "SMALL_FILE_LIMIT"]

#: zarr attribute that :func:`save_array` sets to ``True`` once every chunk is written.
COMPLETE_ATTR = "segengine_complete"
#: Largest ``.npy`` output and TIFF input/output (bytes) handled in memory.
SMALL_FILE_LIMIT = 2 * 2**30
PARTIAL_TAG = ".partial-"
_OLD_TAG = ".replaced-"
_ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")
_TIFF_SUFFIXES = (".tif", ".tiff")


# --------------------------------------------------------------------------- formats

def _fspath(path, name: str) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`{name}` must be a path (str or os.PathLike), got {type(path).__name__}")
    path = os.fspath(path)
    if "://" in path:
        raise ValueError(f"`{name}` must be a local filesystem path, got the URL {path!r}")
    return path.rstrip("/\\") or path


def _is_zarr_dir(path: str) -> bool:
    return os.path.isdir(path) and any(os.path.exists(os.path.join(path, m)) for m in _ZARR_MARKERS)


def _output_format(path: str) -> str:
    """'zarr', 'npy' or 'tiff' from an output path's suffix."""
    lower = path.lower()
    if lower.endswith(".zarr"):
        return "zarr"
    if lower.endswith(".npy"):
        return "npy"
    if lower.endswith(_TIFF_SUFFIXES):
        return "tiff"
    raise ValueError(f"output {path!r}: the name must end with .zarr, .npy, .tif or .tiff")


def _input_format(path: str) -> str:
    if _is_zarr_dir(path):
        return "zarr"
    lower = path.lower()
    if os.path.isfile(path) and lower.endswith(".npy"):
        return "npy"
    if os.path.isfile(path) and lower.endswith(_TIFF_SUFFIXES):
        return "tiff"
    if not os.path.exists(path):
        leftovers = _partial_siblings(path)
        hint = (f"; an interrupted run left {leftovers[0]!r} (incomplete, not readable)"
                if leftovers else "")
        raise FileNotFoundError(f"input {path!r} does not exist{hint}")
    if os.path.isdir(path):
        raise ValueError(f"input {path!r} is a directory but not a zarr store "
                         f"(no {', '.join(_ZARR_MARKERS)})")
    raise ValueError(f"input {path!r}: unsupported format (expected a zarr store, .npy, .tif or .tiff)")


def _partial_siblings(path: str) -> list[str]:
    folder, base = os.path.split(os.path.abspath(path))
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(os.path.join(folder, n) for n in names if n.startswith(base + PARTIAL_TAG))


def _tifffile():
    try:
        import tifffile
    except ImportError as exc:
        raise ImportError("reading and writing TIFF needs the tifffile package "
                          f"(pip install tifffile; it comes with scikit-image) ({exc})") from exc
    return tifffile


def _zarr():
    try:
        import zarr
    except ImportError as exc:  # pragma: no cover - zarr is part of the dask extra
        raise ImportError(f"zarr stores need zarr: pip install 'segengine[dask]' ({exc})") from exc
    return zarr


def _check_small(nbytes: int, what: str, limit: int | None):
    limit = SMALL_FILE_LIMIT if limit is None else limit
    if nbytes > limit:
        raise ValueError(f"{what} is {nbytes / 2**20:.0f} MiB, more than the {limit / 2**20:.0f} MiB "
                         f"handled in memory for .npy/TIFF; use a .zarr store instead")


# --------------------------------------------------------------------------- reading

class _NpyBlocks:
    """Array-like over a ``.npy`` file that memory-maps it afresh for each block, so that a
    dask graph holds the path (small to send to workers), never the data."""

    def __init__(self, path: str):
        mm = np.load(path, mmap_mode="r")
        self.path, self.shape, self.dtype, self.ndim = path, mm.shape, mm.dtype, mm.ndim
        del mm

    def __getitem__(self, key):
        return np.array(np.load(self.path, mmap_mode="r")[key], copy=True)


def _zarr_complete_flag(path: str, component=None):
    """The completeness attribute of a zarr store (and of the array at ``component``):
    ``False`` when any of them says incomplete, ``True`` when one says complete, else None."""
    zarr = _zarr()
    root = zarr.open(path, mode="r")
    flags = [root.attrs.get(COMPLETE_ATTR)]
    if component is not None and isinstance(root, zarr.Group):
        flags.append(root[component].attrs.get(COMPLETE_ATTR))
    if any(f is not None and f is not True for f in flags):
        return False
    return True if any(f is True for f in flags) else None


def _open_zarr(path: str, chunks, component):
    import dask.array as da

    zarr = _zarr()
    if PARTIAL_TAG in os.path.basename(path):
        raise ValueError(f"{path!r} is the temporary output of an interrupted run (incomplete); "
                         "run again to produce the complete output")
    root = zarr.open(path, mode="r")
    if isinstance(root, zarr.Group):
        arrays = sorted(name for name, _ in root.arrays())
        if component is None:
            raise ValueError(f"{path!r} is a zarr group; name the array to read (component=...) "
                             f"among {arrays}")
        try:
            node = root[component]
        except KeyError:
            raise ValueError(f"{path!r} has no array {component!r}; arrays: {arrays}") from None
        if not isinstance(node, zarr.Array):
            raise ValueError(f"{path!r}: {component!r} is a group, not an array")
    elif component is not None:
        raise ValueError(f"{path!r} is a zarr array, not a group: component={component!r} "
                         "cannot be used")
    if _zarr_complete_flag(path, component) is False:
        raise ValueError(f"{path!r} is incomplete: a previous run was interrupted while writing "
                         f"it ({COMPLETE_ATTR} is not true); write it again")
    return da.from_zarr(path, component=component, chunks=chunks)


def open_array(path, chunks=None, component=None):
    """Open an array on disk as a lazy dask array.

    Parameters
    ----------
    path : str or os.PathLike
        A zarr store (a directory in zarr format 2 or 3), a ``.npy`` file (memory-mapped, read
        block by block) or a ``.tif``/``.tiff`` file (read whole; small inputs only). The
        format is recognised by the contents of a directory and the suffix of a file.
    chunks : int, tuple, dict or "auto", optional
        Dask chunks. None: the store's own chunks for zarr, ``"auto"`` otherwise.
    component : str, optional
        The array inside a zarr group (for example ``"raw"`` or ``"volumes/raw"``).

    Returns
    -------
    dask.array.Array

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist (the message names a ``.partial-`` leftover if one is there).
    ValueError
        An unsupported format; a zarr group without ``component``; a zarr output left
        incomplete by an interrupted run (its ``segengine_complete`` attribute is false, or it
        is the ``.partial-`` temporary of one); a TIFF larger than ``SMALL_FILE_LIMIT`` (2 GiB).
    ImportError
        A TIFF file and no tifffile.

    Notes
    -----
    Stores written by other tools (without the ``segengine_complete`` attribute) are read as
    they are.
    """
    import dask.array as da

    path = _fspath(path, "path")
    kind = _input_format(path)
    if kind == "zarr":
        return _open_zarr(path, chunks, component)
    if component is not None:
        raise ValueError(f"component={component!r} applies to zarr stores only, not {path!r}")
    if kind == "npy":
        blocks = _NpyBlocks(path)
        return da.from_array(blocks, chunks="auto" if chunks is None else chunks,
                             meta=np.empty((0,) * blocks.ndim, blocks.dtype),
                             name=f"open-npy-{secrets.token_hex(8)}")
    tifffile = _tifffile()
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        _check_small(math.prod(series.shape) * np.dtype(series.dtype).itemsize, f"TIFF {path!r}", None)
        data = series.asarray()
    return da.from_array(data, chunks="auto" if chunks is None else chunks)


def is_complete(path, component=None) -> bool:
    """Whether ``path`` holds an output that :func:`save_array` finished writing.

    A zarr store counts as complete when its (or ``component``'s) ``segengine_complete``
    attribute is true; a ``.npy``/TIFF file when it exists under its final name and its header
    reads (those are renamed into place only once written). Missing paths, ``.partial-``
    temporaries and stores written by other tools give False.

    Parameters
    ----------
    path : str or os.PathLike
        A zarr store, ``.npy`` or TIFF file.
    component : str, optional
        The array inside a zarr group.

    Returns
    -------
    bool
    """
    path = _fspath(path, "path")
    if PARTIAL_TAG in os.path.basename(path) or not os.path.exists(path):
        return False
    try:
        if _is_zarr_dir(path):
            return _zarr_complete_flag(path, component) is True
        lower = path.lower()
        if lower.endswith(".npy"):
            np.load(path, mmap_mode="r")
            return True
        if lower.endswith(_TIFF_SUFFIXES):
            with _tifffile().TiffFile(path) as tif:
                return len(tif.series) > 0
    except (OSError, ValueError, KeyError):
        return False
    return False


# --------------------------------------------------------------------------- writing

def _remove(path: str):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        try:
            os.remove(path)
        except OSError:
            pass


def _move_into_place(tmp: str, path: str, overwrite: bool):
    """Rename ``tmp`` to ``path``; an existing ``path`` (overwrite) is moved aside first and
    removed after, so that ``path`` is at every moment either the old or the new output."""
    old = None
    if os.path.lexists(path):
        if not overwrite:  # appeared while we were computing
            raise FileExistsError(f"output {path!r} already exists (use overwrite=True)")
        old = f"{path}{_OLD_TAG}{secrets.token_hex(4)}"
        os.rename(path, old)
    os.rename(tmp, path)
    if old is not None:
        _remove(old)


def _regular_chunks(x):
    """``x`` with zarr-compatible chunks: all equal along an axis except a smaller last one."""
    ok = all(len(set(c[:-1])) <= 1 and (len(c) < 2 or c[-1] <= c[0]) for c in x.chunks)
    return x if ok else x.rechunk(tuple(max(c) if c else 1 for c in x.chunks))


def _save_zarr(x, tmp, scheduler, progress, zarr_format):
    import dask.array as da

    zarr = _zarr()
    x = _regular_chunks(x)
    z = zarr.create_array(store=tmp, shape=x.shape, dtype=x.dtype,
                          chunks=tuple(max(c[0], 1) if c else 1 for c in x.chunks),
                          attributes={COMPLETE_ATTR: False}, zarr_format=zarr_format)
    # x's chunks are the store's chunks: each task writes whole zarr chunks, no lock needed
    stored = da.store(x, z, lock=False, compute=False)
    compute_with_progress(stored, scheduler=scheduler, progress=progress)
    zarr.open_array(tmp, mode="r+").attrs[COMPLETE_ATTR] = True  # written last


def _save_small(x, tmp, kind, scheduler, progress, max_bytes):
    _check_small(x.nbytes, f"output {x.shape} {x.dtype}", max_bytes)
    tifffile = _tifffile() if kind == "tiff" else None
    data = np.asarray(compute_with_progress(x, scheduler=scheduler, progress=progress))
    with open(tmp, "wb") as fh:
        if kind == "npy":
            np.save(fh, data)
        else:
            tifffile.imwrite(fh, data)
        fh.flush()
        os.fsync(fh.fileno())


def check_output(path, overwrite=False) -> str:
    """Check that :func:`save_array` can write ``path``; returns its format
    ("zarr", "npy" or "tiff").

    Raises
    ------
    ValueError
        An unsupported suffix.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    FileNotFoundError
        The folder of ``path`` does not exist.
    """
    path = _fspath(path, "path")
    kind = _output_format(path)
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"output {path!r} already exists (use overwrite=True)")
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise FileNotFoundError(f"the folder of output {path!r} does not exist")
    return kind


def save_array(x, path, overwrite=False, *, scheduler=None, progress=False, zarr_format=None,
               max_bytes=None):
    """Compute a dask array and write it to disk, never leaving a complete-looking half output.

    Parameters
    ----------
    x : dask.array.Array or numpy.ndarray
    path : str or os.PathLike
        ``*.zarr`` (a zarr store written chunk by chunk, chunks = ``x``'s chunks, made regular
        if they are not), or ``*.npy`` / ``*.tif`` / ``*.tiff`` (computed in memory, at most
        ``max_bytes``).
    overwrite : bool
        Replace an existing ``path``. The old output stays in place until the new one is
        complete.
    scheduler : None, str or distributed.Client
        Where to compute: None (dask's default, a default Client included), a scheduler name
        ("threads", "synchronous", "processes") or a Client.
    progress : bool
        Show a progress bar on stderr.
    zarr_format : {2, 3}, optional
        Zarr format of the store (default: zarr's default, 3).
    max_bytes : int, optional
        Size limit of ``.npy``/TIFF outputs (default ``SMALL_FILE_LIMIT``, 2 GiB).

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False (checked before computing anything).
    ValueError
        An unsupported suffix, an unknown shape (NaN chunks), a ``.npy``/TIFF output over the
        size limit.

    Notes
    -----
    The data goes to ``path + ".partial-<random>"`` first. A zarr store carries the attribute
    ``segengine_complete: false`` from its creation; it is set to true after the last chunk,
    then the store is renamed to ``path``. If the computation fails or is interrupted
    (exception, KeyboardInterrupt) the temporary is removed; if the process is killed it
    stays behind, marked incomplete, and ``path`` is not created.
    """
    from segengine.dask._common import as_dask_array

    x = as_dask_array(x, "x")
    path = _fspath(path, "path")
    kind = check_output(path, overwrite)
    if any(math.isnan(s) for s in x.shape):
        raise ValueError("cannot save an array of unknown shape (NaN chunks); call "
                         "x.compute_chunk_sizes() first")
    if kind != "zarr":
        _check_small(x.nbytes, f"output {x.shape} {x.dtype}", max_bytes)
    tmp = f"{path}{PARTIAL_TAG}{secrets.token_hex(4)}"
    try:
        if kind == "zarr":
            _save_zarr(x, tmp, scheduler, progress, zarr_format)
        else:
            _save_small(x, tmp, kind, scheduler, progress, max_bytes)
        _move_into_place(tmp, path, overwrite)
    except BaseException:
        _remove(tmp)
        raise
