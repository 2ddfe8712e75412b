"""Per-block numpy kernels of :func:`segengine.dask.regional_minima_markers` (no dask here):
pass 1 (plateau pieces of one block), pass 2 (the pairs across one block face), the global
join, and pass 3 (the ids of one block). See :mod:`segengine.dask._minima` for the method."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from segengine.dask._common import block_halo, block_origin, inner_slices


# ----------------------------------------------------------------------------- pass 1: one block

def _kernel_values(block):
    """The block in a dtype that ``scipy.ndimage`` filters read, order kept exactly."""
    if block.dtype == np.bool_:
        return block.view(np.uint8)
    if block.dtype.kind == "f" and block.dtype.itemsize < 4:
        return block.astype(np.float32)
    if not block.dtype.isnative:
        return block.astype(block.dtype.newbyteorder("="))
    return block


def _shifted(start, size, extent, offset):
    """Slices (into the block, into the array holding it) pairing each block pixel with its
    neighbour at ``offset`` where that neighbour exists. The block occupies
    ``[start, start + size)`` of an array of shape ``extent``."""
    dst, src = [], []
    for h, b, e, o in zip(start, size, extent, offset):
        lo, hi = max(0, -h - o), min(b, e - h - o)
        dst.append(slice(lo, max(lo, hi)))
        src.append(slice(lo + h + o, max(lo, hi) + h + o))
    return tuple(dst), tuple(src)


def _drains(val, low, cand, nz, offsets):
    """Candidate pixels (of ``nz``, flat) with an equal-valued neighbour inside the block that
    has a strictly lower neighbour: their piece is not a whole plateau."""
    if nz.size * 4 < val.size:  # sparse candidates (the usual case for float images)
        coords = np.unravel_index(nz, val.shape)
        vflat, lflat = val.reshape(-1), low.reshape(-1)
        mine = vflat[nz]
        out = np.zeros(nz.size, dtype=bool)
        for off in offsets:
            nb = [c + o for c, o in zip(coords, off)]
            ok = np.logical_and.reduce([(c >= 0) & (c < b) for c, b in zip(nb, val.shape)])
            q = np.ravel_multi_index(tuple(c[ok] for c in nb), val.shape)
            out[ok] |= (vflat[q] == mine[ok]) & lflat[q]
        return out
    out = np.zeros(val.shape, dtype=bool)
    zero = (0,) * val.ndim
    for off in offsets:
        dst, src = _shifted(zero, val.shape, val.shape, off)
        out[dst] |= cand[dst] & low[src] & (val[src] == val[dst])
    return out.reshape(-1)[nz]


def _labelled(cand, nz, structure, block_shape, origin, shape):
    """``ndi.label`` of a candidate mask, as (label of each pixel of ``nz``, global id of each
    label); labels come in raster order of their first pixel, the smallest raveled index."""
    lab, n = ndi.label(cand, structure)
    lab_nz = lab.reshape(-1)[nz]
    new = np.empty(lab_nz.size, dtype=bool)
    new[:1] = True
    np.greater(lab_nz[1:], np.maximum.accumulate(lab_nz)[:-1], out=new[1:])
    coords = np.unravel_index(nz[new], block_shape)
    ids = 1 + np.ravel_multi_index(tuple(c + o for c, o in zip(coords, origin)), shape)
    assert ids.size == n
    return lab_nz, ids, new


def _components(img_ov, mask, structure, shape, block_info, depth):
    """Plateau pieces of one block, sparse: ``(nz, lab, pid, nzm, labm, mid, m_to_p)`` -- the
    raveled block indices of the candidate pixels, their piece label (1..n), the piece ids
    (negative: the piece leaks inside the block); the same for the masked pieces, and the
    piece label of each masked piece."""
    halo = block_halo(block_info, depth)
    origin = block_origin(block_info)
    img = _kernel_values(img_ov)
    inner = inner_slices(halo)
    val = img[inner]
    if val.dtype.kind == "f" and np.isnan(val).any():
        raise ValueError("`image` contains NaN; regional minima are undefined there")
    offsets = np.argwhere(structure) - 1
    offsets = offsets[np.any(offsets != 0, axis=1)]
    start = tuple(b for b, _ in halo)
    low = np.zeros(val.shape, dtype=bool)
    for off in offsets:  # neighbours beyond the array edge do not exist ('none' boundary)
        dst, src = _shifted(start, val.shape, img.shape, off)
        low[dst] |= img[src] < val[dst]
    cand = ~low
    nz = np.flatnonzero(cand)
    lab, pid, _ = _labelled(cand, nz, structure, val.shape, origin, shape)
    leak = np.zeros(pid.size + 1, dtype=bool)
    leak[lab[_drains(val, low, cand, nz, offsets)]] = True
    pid = np.where(leak[1:], -pid, pid)
    if mask is None:
        return nz, lab, pid, nz, lab, np.abs(pid), np.arange(1, pid.size + 1)
    inside = mask.reshape(-1)[nz]
    nzm = nz[inside]
    cm = np.zeros(val.shape, dtype=bool)
    cm.reshape(-1)[nzm] = True
    labm, mid, first = _labelled(cm, nzm, structure, val.shape, origin, shape)
    return nz, lab, pid, nzm, labm, mid, lab[inside][first]


def pieces_block(img_ov, mask=None, *, structure, shape, depth, block_info=None):
    """Pass 1 for the face tables: per pixel (piece id signed by its leak, masked id), 0 off
    the candidates."""
    nz, lab, pid, nzm, labm, mid, _ = _components(img_ov, mask, structure, shape, block_info, depth)
    inner = inner_slices(block_halo(block_info, depth))
    out = np.zeros(_inner_shape(img_ov, block_info, depth), dtype=pieces_dtype(img_ov.dtype))
    out["v"] = _kernel_values(img_ov[inner])
    flat = out.reshape(-1)
    flat["p"][nz] = pid[lab - 1]
    flat["m"][nzm] = mid[labm - 1]
    return out


def pieces_dtype(dtype):
    """Pass 1 output per pixel: plateau piece id (negative: leaks), masked piece id, value."""
    value = _kernel_values(np.empty(0, dtype)).dtype
    return np.dtype([("p", np.int64), ("m", np.int64), ("v", value)])


def _inner_shape(img_ov, block_info, depth):
    return tuple(e - b - a for e, (b, a) in zip(img_ov.shape, block_halo(block_info, depth)))


def _lookup(keys, values, x, default):
    """``values[keys == x]`` where ``x`` is in the sorted ``keys``, else ``default``."""
    pos = np.searchsorted(keys, x)
    known = pos < keys.size
    known[known] = keys[pos[known]] == x[known]
    out = default.copy()
    out[known] = values[pos[known]]
    return out


def ids_block(img_ov, *rest, structure, shape, depth, block_info=None):
    """Pass 3: the global id of each masked piece that belongs to a regional minimum."""
    mask, table = rest if len(rest) == 2 else (None, rest[0])
    p_ids, p_min, m_ids, m_root, constant = table.item()
    out = np.zeros(_inner_shape(img_ov, block_info, depth), dtype=np.int64)
    if constant:
        return out
    _, _, pid, nzm, labm, mid, m_to_p = _components(img_ov, mask, structure, shape, block_info,
                                                     depth)
    piece = pid[m_to_p - 1]
    is_min = _lookup(p_ids, p_min, np.abs(piece), piece > 0)
    value = np.where(is_min, _lookup(m_ids, m_root, mid, mid), 0)
    out.reshape(-1)[nzm] = value[labm - 1]
    return out


# ----------------------------------------------------------------------------- pass 2: faces

def _pair_slices(offset, axis):
    """(p slices, q slices) of the neighbour pairs q = p + offset across ``axis`` in a slab."""
    sp, sq = [], []
    for j, o in enumerate(offset):
        if j == axis:
            sp.append(slice(0, 1))
            sq.append(slice(1, 2))
        elif o == 0:
            sp.append(slice(None))
            sq.append(slice(None))
        elif o > 0:
            sp.append(slice(0, -1))
            sq.append(slice(1, None))
        else:
            sp.append(slice(1, None))
            sq.append(slice(0, -1))
    return tuple(sp), tuple(sq)


def _unique_pairs(a, b):
    """Distinct unordered pairs, as an (K, 2) int64 array (1-D uniques only: fast)."""
    a, b = np.minimum(a, b), np.maximum(a, b)
    ua, ia = np.unique(a, return_inverse=True)
    ub, ib = np.unique(b, return_inverse=True)
    key = np.unique(ia.astype(np.int64) * max(ub.size, 1) + ib)
    return np.stack([ua[key // max(ub.size, 1)], ub[key % max(ub.size, 1)]], axis=1)


def join_links(links):
    """The face tables of one axis joined: a 0-d object array holding one table."""
    links = list(links.ravel())
    out = np.empty((), dtype=object)
    out[()] = tuple(np.concatenate([t[k] for t in links]) for k in range(3))
    return out


def slab_links(slab, axis, structure):
    """Face table of one block face, from the slab made of the block's last layer and the
    next block's first layer along ``axis``, extended by one pixel forward along the other
    axes. Every pair of neighbours in different blocks lies in one such slab: that of the
    face it crosses, in the block holding the pair's elementwise smallest coordinates along
    the other axes. Returns a 1-element object array holding ``(piece pairs, leaking pieces,
    masked pairs)``, int64."""
    offsets = np.argwhere(structure) - 1
    p_pairs, leaks, m_pairs = [], [], []
    pa, ma, iv = slab["p"], slab["m"], slab["v"]
    for off in offsets[offsets[:, axis] == 1]:
        sp, sq = _pair_slices(off, axis)
        ap, aq = pa[sp].ravel(), pa[sq].ravel()
        cp, cq = ap != 0, aq != 0
        both = cp & cq  # adjacent candidates are equal-valued: same plateau
        p_pairs.append((np.abs(ap[both]), np.abs(aq[both])))
        leaks.append(-ap[both & (ap < 0)])
        leaks.append(-aq[both & (aq < 0)])
        one = cp != cq
        if one.any():  # equal-valued non-candidate: the plateau drains through it
            one &= iv[sp].ravel() == iv[sq].ravel()
            leaks.append(np.abs(np.where(cp, ap, aq)[one]))
        mp, mq = ma[sp].ravel(), ma[sq].ravel()
        mb = (mp != 0) & (mq != 0)
        m_pairs.append((mp[mb], mq[mb]))
    empty = np.empty(0, dtype=np.int64)
    cat = lambda pairs, k: np.concatenate([empty] + [p[k] for p in pairs])  # noqa: E731
    out = np.empty((1,) * slab.ndim, dtype=object)
    out.flat[0] = (_unique_pairs(cat(p_pairs, 0), cat(p_pairs, 1)),
                   np.unique(np.concatenate([empty] + leaks)),
                   _unique_pairs(cat(m_pairs, 0), cat(m_pairs, 1)))
    return out


# ----------------------------------------------------------------------------- global join

def _components_of(pairs, extra=None):
    """Sorted node ids and their connected-component index."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nodes = np.unique(pairs if extra is None else np.concatenate([pairs.ravel(), extra]))
    if nodes.size == 0:
        return nodes, np.empty(0, dtype=np.int64)
    i, j = np.searchsorted(nodes, pairs[:, 0]), np.searchsorted(nodes, pairs[:, 1])
    graph = coo_matrix((np.ones(i.size, dtype=np.int8), (i, j)), shape=(nodes.size,) * 2)
    _, comp = connected_components(graph, directed=False)
    return nodes, comp


def resolve(gmin, gmax, *faces):
    """Global table ``(p_ids, p_is_min, m_ids, m_root, constant)`` from the face tables."""
    links = [f.item() for f in faces]
    p_pairs = np.concatenate([np.empty((0, 2), np.int64)] + [t[0] for t in links])
    leaks = np.concatenate([np.empty(0, np.int64)] + [t[1] for t in links])
    m_pairs = np.concatenate([np.empty((0, 2), np.int64)] + [t[2] for t in links])
    p_ids, comp = _components_of(p_pairs, leaks)
    leaky = np.zeros(comp.max(initial=-1) + 1, dtype=bool)
    leaky[comp[np.searchsorted(p_ids, leaks)]] = True
    p_min = ~leaky[comp]
    m_ids, comp = _components_of(m_pairs)
    _, first = np.unique(comp, return_index=True)  # m_ids ascending: first = smallest id
    m_root = m_ids[first][comp]
    out = np.empty((), dtype=object)
    out[()] = (p_ids, p_min, m_ids, m_root, bool(gmin == gmax))
    return out
