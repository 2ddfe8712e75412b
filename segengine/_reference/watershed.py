"""Slow, obviously-correct watershed in pure Python/NumPy (test oracle).

It spells out scikit-image 0.26's flooding rules one pixel at a time, on coordinates
(no padding, no raveled offsets, no bucket queue):

* markers enter a binary min-heap in raster order with key (value, age=0);
* a popped pixel looks at its neighbours in footprint order (sorted by distance, stable);
  each unlabelled in-mask neighbour is pushed with the next age and the value
  ``max(image[nb] (+ compactness * |nb - seed|), popped value)``;
* standard mode labels at push time; compact / watershed-line modes label at pop time
  (a line pixel is one whose in-mask neighbours carry another label when it is popped);
* ``watershed_fast_reference``: segengine's ``tie_order="fast"`` rule, the same standard
  flood with every key unique: markers get ages 0, 1, 2, ... in raster order, so any
  priority queue (here heapq) pops in the same (value, age) order;
* ``watershed_parallel_reference``: segengine's ``tie_order="parallel"`` rule: every
  pixel's key (priority, distance along its level) by a Dijkstra from the markers, then
  each pixel labelled from its neighbour of smallest key, the first in footprint order;
* ties between equal keys (only markers share age 0) are resolved by the heap's layout,
  so the heap below follows scikit-image's exact push (sift-up) and pop (last item to the
  root, sift down preferring the left child) rules.
"""

from __future__ import annotations

import heapq
import math

import numpy as np
from scipy import ndimage as ndi

__all__ = ["watershed_reference", "watershed_fast_reference", "watershed_parallel_reference",
           "local_minima_reference"]


class _Heap:
    """Binary min-heap of (value, age, payload) with explicit sift rules."""

    def __init__(self):
        self.a = []

    @staticmethod
    def _less(x, y):
        if x[0] != y[0]:
            return x[0] < y[0]
        return x[1] < y[1]

    def push(self, item):
        a = self.a
        a.append(item)
        c = len(a) - 1
        while c > 0:
            p = (c + 1) // 2 - 1
            if self._less(a[c], a[p]):
                a[c], a[p] = a[p], a[c]
                c = p
            else:
                break

    def pop(self):
        a = self.a
        top = a[0]
        last = a.pop()
        if not a:
            return top
        a[0] = last
        i = 0
        n = len(a)
        while True:
            left, right = 2 * i + 1, 2 * i + 2
            smallest = i
            if left < n:
                if self._less(a[left], a[i]):
                    smallest = left
                if right < n and self._less(a[right], a[smallest]):
                    smallest = right
            if smallest == i:
                break
            a[i], a[smallest] = a[smallest], a[i]
            i = smallest
        return top

    def __len__(self):
        return len(self.a)


def _offsets(footprint, center):
    fp = np.asarray(footprint, dtype=bool)
    entries = [tuple(int(i) - int(c) for i, c in zip(idx, center)) for idx in np.ndindex(fp.shape) if fp[idx]]
    entries.sort(key=lambda v: math.sqrt(sum(x * x for x in v)))  # stable
    return entries[1:]  # the first one is the centre (distance 0)


def _neighbours(p, offsets, shape):
    for d in offsets:
        q = tuple(a + b for a, b in zip(p, d))
        if all(0 <= x < s for x, s in zip(q, shape)):
            yield q


def local_minima_reference(image, connectivity=1):
    """Boolean map of plateaus with no lower neighbour (a plateau at the global maximum
    that touches the border is excluded), as skimage.morphology.local_minima."""
    image = np.asarray(image)
    fp = ndi.generate_binary_structure(image.ndim, connectivity)
    offsets = _offsets(fp, (1,) * image.ndim)
    gmax = image.max()
    seen = np.zeros(image.shape, bool)
    out = np.zeros(image.shape, bool)
    for p in np.ndindex(image.shape):
        if seen[p]:
            continue
        v = image[p]
        plateau, stack, is_min = [p], [p], True
        seen[p] = True
        while stack:
            c = stack.pop()
            n_in = 0
            for q in _neighbours(c, offsets, image.shape):
                n_in += 1
                if image[q] == v and not seen[q]:
                    seen[q] = True
                    plateau.append(q)
                    stack.append(q)
                elif image[q] < v:
                    is_min = False
            if n_in < len(offsets) and v == gmax:
                is_min = False
        if is_min:
            for q in plateau:
                out[q] = True
    return out


def _flood_setup(image, markers, connectivity, mask, offset):
    """What both reference floods start from: float64 values, the shape, the neighbour
    offsets, a writable in-mask array, and the labels (markers inside the mask; local minima
    labelled as ``ndi.label`` when ``markers`` is None)."""
    image = np.asarray(image)
    values = image.astype(np.float64)
    shape = image.shape
    if np.isscalar(connectivity):
        fp = ndi.generate_binary_structure(image.ndim, connectivity)
    else:
        fp = np.asarray(connectivity, dtype=bool)
    center = tuple(s // 2 for s in fp.shape) if offset is None else tuple(offset)
    offsets = _offsets(fp, center)
    inside = np.ones(shape, bool) if mask is None else np.asarray(mask, bool).copy()
    if markers is None:
        mins = local_minima_reference(image, connectivity) & inside
        markers = ndi.label(mins, structure=ndi.generate_binary_structure(image.ndim, connectivity))[0]
    out = np.where(inside, np.asarray(markers), 0).astype(np.asarray(markers).dtype)
    return values, shape, offsets, inside, out


def watershed_reference(image, markers, connectivity=1, mask=None, compactness=0.0,
                        watershed_line=False, offset=None):
    """Reference watershed. ``markers``: integer array or None (local minima);
    ``connectivity``: int or footprint array. Returns labels with the markers' dtype."""
    values, shape, offsets, inside, out = _flood_setup(image, markers, connectivity, mask, offset)
    compact = compactness > 0
    heap = _Heap()
    for p in np.ndindex(shape):
        if out[p]:
            heap.push((values[p], 0, p, p))
    age = 1
    while len(heap):
        value, _, p, src = heap.pop()
        if compact or watershed_line:
            if out[p] and p != src:
                continue
            label = out[src]
            if compact:
                out[p] = label
            elif not inside[p]:
                pass  # already a line pixel
            elif any(inside[q] and out[q] and out[q] != label for q in _neighbours(p, offsets, shape)):
                inside[p] = False  # becomes a watershed line pixel
            else:
                out[p] = label
        for q in _neighbours(p, offsets, shape):
            if not inside[q] or out[q]:
                continue
            age += 1
            v = values[q]
            if compact:
                v = v + compactness * math.sqrt(sum(float(a - b) ** 2 for a, b in zip(q, src)))
            elif not watershed_line:
                out[q] = out[p]
            heap.push((max(v, value), age, q, src))
    return out


def watershed_fast_reference(image, markers, connectivity=1, mask=None, offset=None):
    """Reference of ``watershed(..., tie_order="fast")`` (standard mode only).

    Pixels leave a priority queue in order of (priority, arrival): markers (nonzero labels
    inside the mask) arrive first in raster order with their own value as priority; a
    popped pixel gives its label to each unlabelled in-mask neighbour (footprint order),
    which arrives with priority ``max(its value, the popped priority)``. Values are compared
    as float64 (-0.0 == 0.0). ``markers`` None: the local minima, labelled as in
    :func:`watershed_reference`. Returns labels with the markers' dtype.
    """
    values, shape, offsets, inside, out = _flood_setup(image, markers, connectivity, mask, offset)
    heap = []
    age = 0
    for p in np.ndindex(shape):
        if out[p]:
            heap.append((values[p] + 0.0, age, p))
            age += 1
    heapq.heapify(heap)
    while heap:
        value, _, p = heapq.heappop(heap)
        for q in _neighbours(p, offsets, shape):
            if not inside[q] or out[q]:
                continue
            out[q] = out[p]
            heapq.heappush(heap, (max(values[q] + 0.0, value), age, q))
            age += 1
    return out


def watershed_parallel_reference(image, markers, connectivity=1, mask=None, offset=None):
    """Reference of ``watershed(..., tie_order="parallel")`` (standard mode only).

    Keys (C, D), compared as tuples: a marker (nonzero label inside the mask) has (its value,
    0); any other in-mask pixel q, with (C, D) the smallest key among its neighbours, has
    ``(v_q, 1)`` when ``v_q > C`` and ``(C, D + 1)`` otherwise (found by a Dijkstra from the
    markers). Then, in increasing key order, each reached pixel that is not a marker takes the
    label of its neighbour of smallest key, the first in footprint order among equal keys.
    Values are compared as float64 (-0.0 == 0.0). ``markers`` None: the local minima, as in
    :func:`watershed_reference`. Returns labels with the markers' dtype.
    """
    values, shape, offsets, inside, out = _flood_setup(image, markers, connectivity, mask, offset)
    key = {}
    heap = []
    for p in np.ndindex(shape):
        if out[p]:
            key[p] = (values[p] + 0.0, 0)
            heap.append((key[p], p))
    heapq.heapify(heap)
    while heap:
        k, p = heapq.heappop(heap)
        if key[p] != k:
            continue
        for q in _neighbours(p, offsets, shape):
            if not inside[q] or out[q]:
                continue
            v = values[q] + 0.0
            nk = (v, 1) if v > k[0] else (k[0], k[1] + 1)
            if q not in key or nk < key[q]:
                key[q] = nk
                heapq.heappush(heap, (nk, q))
    for q in sorted((q for q in key if not out[q]), key=key.__getitem__):
        best = None
        for r in _neighbours(q, offsets, shape):
            if r in key and (best is None or key[r] < key[best]):
                best = r
        out[q] = out[best]
    return out
