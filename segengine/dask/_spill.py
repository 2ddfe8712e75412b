"""Multi-pass blockwise methods whose intermediate results live in files, not in memory.

A method that floods every block several times, each pass reading its neighbours' previous
results, keeps every block's intermediate result alive in dask until the neighbours' next
pass has run; on a volume larger than the workers' memory, dask then spills them (and the
halo pieces cut from them) to disk through its own machinery, many times over. Here each
pass task writes its block's result to a ``.npy`` file in a folder and returns nothing;
the next pass's task reads its extended block from the neighbours' files (memory-mapped:
only the halo slabs are read). A task's memory is its extended block; what dask holds
between tasks is ``None``. The folder must be visible to every worker (local disk for a
LocalCluster, shared storage for a cluster); it is removed when the Python process that
built the graph exits. A recomputation rewrites the files, so a result can be computed
again, and a task lost with a worker is simply rerun.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import tempfile
import atexit
import uuid

import numpy as np

__all__ = ["SpillFolder"]


def _block_file(folder, tag, idx):
    return os.path.join(folder, f"{tag}-" + "-".join(map(str, idx)) + ".npy")


def _save(path, array):
    """Write ``array`` to ``path`` atomically (a retried task never leaves half a file)."""
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)
    os.replace(tmp, path)


def _write_block(block, *, folder, tag, idx):
    _save(_block_file(folder, tag, idx), block)


def _read_extended(folder, tag, idx, numblocks, depth):
    """The block ``idx`` of the array saved under ``tag`` extended by ``depth`` from the
    neighbours' files, and its ((before, after), ...) halo."""
    ndim = len(idx)
    centre = np.load(_block_file(folder, tag, idx), mmap_mode="r")
    halo = tuple((d if i > 0 else 0, d if i < n - 1 else 0) for i, n, d in zip(idx, numblocks, depth))
    shape = tuple(b + s + a for (b, a), s in zip(halo, centre.shape))
    out = np.empty(shape, dtype=centre.dtype)
    for off in itertools.product((-1, 0, 1), repeat=ndim):
        if any(o and not d for o, d in zip(off, depth)):
            continue
        j = tuple(i + o for i, o in zip(idx, off))
        if not all(0 <= jj < n for jj, n in zip(j, numblocks)):
            continue
        block = centre if not any(off) else np.load(_block_file(folder, tag, j), mmap_mode="r")
        src, dst = [], []
        for k, o in enumerate(off):
            b, n = halo[k][0], centre.shape[k]
            if o < 0:
                src.append(slice(block.shape[k] - depth[k], None))
                dst.append(slice(0, b))
            elif o > 0:
                src.append(slice(0, depth[k]))
                dst.append(slice(b + n, b + n + depth[k]))
            else:
                src.append(slice(None))
                dst.append(slice(b, b + n))
        out[tuple(dst)] = block[tuple(src)]
    return out, halo


def _pass_task(*_ready, func, folder, inputs, output, idx, numblocks, depth, kwargs):
    ext = [None if tag is None else _read_extended(folder, tag, idx, numblocks, depth)[0]
           for tag in inputs]
    halo = tuple((d if i > 0 else 0, d if i < n - 1 else 0) for i, n, d in zip(idx, numblocks, depth))
    _save(_block_file(folder, output, idx), func(*ext, halo=halo, **kwargs))


def _read_block(*_ready, folder, tag, idx, field=None):
    block = np.load(_block_file(folder, tag, idx))
    return block if field is None else np.ascontiguousarray(block[field])


class SpillFolder:
    """Builds the graph of passes that exchange their results through files in one folder.

    Parameters
    ----------
    like : dask array
        Gives the block structure (chunks) of every array involved.
    folder : str or None
        Parent directory for the working folder (None: ``tempfile.gettempdir()``); must be
        visible to every worker.
    """

    def __init__(self, like, folder=None):
        self.chunks = like.chunks
        self.numblocks = like.numblocks
        self.ndim = like.ndim
        self.path = tempfile.mkdtemp(prefix="segengine-dask-", dir=folder)
        atexit.register(shutil.rmtree, self.path, True)
        self.layers = {}       # name -> {key: task}
        self.deps = {}         # name -> set of collection names
        self.collections = []  # dask arrays whose graphs the tasks use
        self.last_task = {}    # tag -> name of the layer whose tasks write it
        self._n = 0

    def _name(self, what):
        self._n += 1
        return f"segengine-{what}-{self._n}-{uuid.uuid4().hex[:8]}"

    def store(self, x, tag):
        """Tasks writing every block of the dask array ``x`` to files under ``tag``."""
        name = self._name(f"save-{tag}")
        layer = {}
        for idx in np.ndindex(*self.numblocks):
            layer[(name,) + idx] = (functools.partial(_write_block, folder=self.path, tag=tag, idx=idx),
                                    (x.name,) + idx)
        self.layers[name] = layer
        self.deps[name] = set(x.__dask_layers__())
        self.collections.append(x)
        self.last_task[tag] = name

    def apply(self, func, inputs, output, depth, **kwargs):
        """Tasks ``func(*extended blocks of the inputs, halo=..., **kwargs)`` -> ``output``;
        ``inputs`` are tags (or None); each task waits for the writes of its neighbours."""
        name = self._name(f"pass-{output}")
        layer = {}
        writers = {self.last_task[t] for t in inputs if t is not None}
        for idx in np.ndindex(*self.numblocks):
            ready = []
            for off in itertools.product((-1, 0, 1), repeat=self.ndim):
                j = tuple(i + o for i, o in zip(idx, off))
                if all(0 <= jj < n for jj, n in zip(j, self.numblocks)):
                    ready += [(w,) + j for w in sorted(writers)]
            call = functools.partial(_pass_task, func=func, folder=self.path, inputs=list(inputs),
                                     output=output, idx=idx, numblocks=self.numblocks,
                                     depth=tuple(depth), kwargs=kwargs)
            layer[(name,) + idx] = (call, *ready)
        self.layers[name] = layer
        self.deps[name] = set(writers)
        self.last_task[output] = name

    def result(self, tag, dtype, field=None):
        """A dask array reading ``tag`` (one field of it) back, block by block."""
        import dask.array as da
        from dask.highlevelgraph import HighLevelGraph

        name = self._name(f"read-{tag}")
        writer = self.last_task[tag]
        layer = {(name,) + idx: (functools.partial(_read_block, folder=self.path, tag=tag, idx=idx,
                                                   field=field), (writer,) + idx)
                 for idx in np.ndindex(*self.numblocks)}
        layers = dict(self.layers)
        layers[name] = layer
        deps = {k: set(v) for k, v in self.deps.items()}
        deps[name] = {writer}
        for x in self.collections:
            for k, v in x.dask.layers.items():
                layers.setdefault(k, v)
            for k, v in x.dask.dependencies.items():
                deps.setdefault(k, set(v))
        graph = HighLevelGraph(layers, deps)
        return da.Array(graph, name, self.chunks, meta=np.empty((0,) * self.ndim, dtype=dtype))
