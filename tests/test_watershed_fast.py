"""segengine.watershed(..., tie_order="fast"): the exact mode's output whenever no two
markers of different labels share a value, its own reference (segengine._reference) on
ties, deterministic for 1/2/3 threads, and its argument checks."""

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

import segengine
from segengine._reference.watershed import watershed_fast_reference

# images of at least 2**15 pixels run the parallel parts (csrc/cpu/watershed_fast.cpp)
BIG2 = (181, 197)
BIG3 = (33, 35, 37)


def distinct_markers(rng, shape, k, labels=None):
    """k markers at distinct positions; labels 1..labels (default: 1..k)."""
    m = np.zeros(shape, np.int32)
    idx = rng.choice(m.size, size=min(k, m.size), replace=False)
    m.flat[idx] = rng.integers(1, (labels or k) + 1, size=idx.size) if labels else \
        np.arange(1, idx.size + 1)
    return m


def fast(image, markers, **kw):
    return segengine.watershed(image, markers, tie_order="fast", **kw)


# ------------------------------------------------------------------------ the contract

@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shape", [BIG2, BIG3, (1, 257), (7, 1, 9), (64, 63)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_distinct_values_equal_exact(seed, shape, dtype):
    """Distinct values: fronts never meet on equal values, so fast == exact, for face and
    full connectivity, with and without a mask, many seeds."""
    rng = np.random.default_rng(seed)
    img = rng.permutation(np.prod(shape)).reshape(shape).astype(dtype)  # distinct, exact
    img = img / img.size if seed % 2 else img - img.size / 2  # negative values too
    markers = distinct_markers(rng, shape, int(rng.integers(2, 200)), labels=int(rng.integers(2, 9)))
    mask = rng.random(shape) > 0.3
    for conn in (1, len(shape)):
        for mk in (None, mask):
            exact = segengine.watershed(img, markers, connectivity=conn, mask=mk)
            got = fast(img, markers, connectivity=conn, mask=mk)
            assert got.dtype == exact.dtype
            np.testing.assert_array_equal(got, exact)


@pytest.mark.parametrize("dtype, shift", [(np.int32, 0), (np.uint32, 0), (np.int64, 0), (np.int64, 20),
                                          (np.uint64, 33), (np.float64, 0), (np.float32, 0)])
def test_distinct_wide_values_equal_exact(dtype, shift):
    """More than 2**16 distinct values (sorted, not counted), spread over 31 bits (times
    2**shift: low bits that no value changes): the sorted levels' buckets of about 8192 codes
    take the wide-key split (more than 22 varying bits) or, the low bits set aside, the
    two-pass radix; 1 and 2 threads."""
    rng = np.random.default_rng(shift + 3)
    shape = (263, 301)  # 79163 pixels
    # spatially smooth (so that the order of nearby values decides the result), distinct
    smooth = ndi.gaussian_filter(rng.random(shape), 4).ravel()
    rank = np.argsort(np.argsort(smooth, kind="stable"), kind="stable").astype(np.int64)
    vals = rank * 2**13 + rng.integers(0, 2**13, size=rank.size)
    if np.issubdtype(dtype, np.signedinteger) or dtype == np.float64:
        vals -= 2**29
    img = (vals.astype(dtype) * dtype(2) ** shift if shift else vals.astype(dtype)).reshape(shape)
    markers = distinct_markers(rng, shape, 200, labels=5)
    expected = segengine.watershed(img, markers)
    for t in (1, 2):
        np.testing.assert_array_equal(fast(img, markers, num_threads=t), expected)


@pytest.mark.parametrize("seed", range(4))
def test_random_floats_equal_exact(seed):
    """Random floats (distinct with probability 1), smoothed volumes, many seeds."""
    rng = np.random.default_rng(seed)
    for img in (rng.random(BIG2), ndi.gaussian_filter(rng.random(BIG3), 1.5).astype(np.float32)):
        markers = distinct_markers(rng, img.shape, 300)
        for conn in (1, img.ndim):
            np.testing.assert_array_equal(fast(img, markers, connectivity=conn),
                                          segengine.watershed(img, markers, connectivity=conn))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32,
                                   np.uint64, np.int64, np.float32, np.float64])
def test_uncontested_markers_equal_exact(dtype):
    """Plateaus and ties, but every marker value used by one label only: still == exact."""
    rng = np.random.default_rng(1)
    img = rng.integers(0, 40, size=BIG2).astype(dtype)
    markers = np.zeros(BIG2, np.int32)
    for lab in range(1, 6):  # label `lab` only on pixels of value 5*lab
        idx = np.flatnonzero(img == 5 * lab)
        markers.flat[rng.choice(idx, size=min(30, idx.size), replace=False)] = lab
    for conn in (1, 2):
        np.testing.assert_array_equal(fast(img, markers, connectivity=conn),
                                      segengine.watershed(img, markers, connectivity=conn))


@pytest.mark.parametrize("seed", range(40))
def test_matches_reference_on_ties(seed):
    """Few grey levels (markers of different labels tie): the tie rule's own reference."""
    rng = np.random.default_rng(seed)
    ndim = int(rng.integers(1, 4))
    shape = tuple(int(s) for s in rng.integers(1, 14 if ndim < 3 else 7, size=ndim))
    dtype = [np.uint8, np.int16, np.float32, np.float64, np.int64, np.bool_][seed % 6]
    img = rng.integers(0, 4, size=shape).astype(dtype)
    markers = distinct_markers(rng, shape, int(rng.integers(1, 10)), labels=3)
    mask = rng.random(shape) > 0.2 if seed % 3 else None
    conn = int(rng.integers(1, ndim + 1))
    got = fast(img, markers, connectivity=conn, mask=mask)
    np.testing.assert_array_equal(got, watershed_fast_reference(img, markers, conn, mask))


@pytest.mark.parametrize("seed", range(5))
def test_local_minima_and_seed_count_match_reference(seed):
    from segengine.ops._watershed_inputs import regular_seeds
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 6, size=(12, 15)).astype(np.float32)
    np.testing.assert_array_equal(fast(img, None, connectivity=2),
                                  watershed_fast_reference(img, None, 2))
    np.testing.assert_array_equal(fast(img, 9),
                                  watershed_fast_reference(img, regular_seeds(img.shape, 9)))


def test_footprint_and_offset_match_reference():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 5, size=(10, 12)).astype(np.uint8)
    markers = distinct_markers(rng, img.shape, 6, labels=3)
    fp = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], bool)
    for off in (None, (0, 1)):
        np.testing.assert_array_equal(
            fast(img, markers, connectivity=fp, offset=off),
            watershed_fast_reference(img, markers, fp, offset=off))


def test_negative_zero_ties_with_zero():
    img = np.array([[-0.0, 0.0, 1.0, 0.0]])
    markers = np.array([[0, 1, 0, 2]])
    np.testing.assert_array_equal(fast(img, markers), watershed_fast_reference(img, markers))


def test_infinities():
    img = np.array([[np.inf, -np.inf, 0.0, np.inf, 5.0]])
    markers = np.array([[0, 1, 0, 0, 2]])
    np.testing.assert_array_equal(fast(img, markers), segengine.watershed(img, markers))


# ------------------------------------------------------------------------ determinism

@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape", [BIG2, BIG3])
def test_threads_identical(dtype, shape):
    """Parallel codes, flags and ranks: 1, 2 and 3 threads give the same labels (ties
    included: few grey levels)."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 50, size=shape).astype(dtype)
    markers = distinct_markers(rng, shape, 500, labels=7)
    mask = rng.random(shape) > 0.1
    for kw in ({}, {"mask": mask, "connectivity": len(shape)}):
        outs = [fast(img, markers, num_threads=t, **kw) for t in (1, 2, 3)]
        np.testing.assert_array_equal(outs[1], outs[0])
        np.testing.assert_array_equal(outs[2], outs[0])


def test_batch_of_one_and_many_threads():
    rng = np.random.default_rng(5)
    imgs = rng.random((3,) + BIG2).astype(np.float32)
    markers = np.stack([distinct_markers(rng, BIG2, 100) for _ in range(3)])
    per_item = np.stack([fast(imgs[b], markers[b]) for b in range(3)])
    for t in (1, 2, 3):
        np.testing.assert_array_equal(
            segengine.watershed_batch(imgs, markers, tie_order="fast", num_threads=t), per_item)
        np.testing.assert_array_equal(
            segengine.watershed_batch(imgs[:1], markers[:1], tie_order="fast", num_threads=t),
            per_item[:1])


# ------------------------------------------------------------------------ real images

def test_coins_differing_fraction():
    """Real image with tied marker regions (scikit-image's coins tutorial): fast differs from
    exact only where tied fronts meet (a small fraction), and equals its reference rule's
    result on a crop."""
    skimage = pytest.importorskip("skimage")
    from skimage import data, filters
    coins = data.coins()
    el = filters.sobel(coins.astype(np.float64) / 255)
    el8 = np.round(el / el.max() * 255).astype(np.uint8)
    markers = np.zeros(coins.shape, np.int32)
    markers[coins < 30] = 1
    markers[coins > 150] = 2
    for img in (el, el8):
        frac = np.mean(fast(img, markers) != segengine.watershed(img, markers))
        assert frac < 0.01
    crop = (slice(0, 60), slice(0, 80))
    np.testing.assert_array_equal(fast(el8[crop], markers[crop]),
                                  watershed_fast_reference(el8[crop], markers[crop]))
    # the float64 map at full size has ~35000 distinct values: its levels are counted per
    # value (few_levels), on 1 and 2 threads
    expected = watershed_fast_reference(el, markers)
    for t in (1, 2):
        np.testing.assert_array_equal(fast(el, markers, num_threads=t), expected)
    assert skimage is not None


# ------------------------------------------------------------------------ inputs

def test_tensor_in_tensor_out():
    rng = np.random.default_rng(2)
    img = rng.random((20, 30)).astype(np.float32)
    markers = distinct_markers(rng, img.shape, 8)
    expected = fast(img, markers)
    got = fast(torch.from_numpy(img), torch.from_numpy(markers))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.int32
    np.testing.assert_array_equal(got.numpy(), expected)
    assert isinstance(expected, np.ndarray)


def test_exact_is_default_and_unchanged():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 3, size=(30, 40)).astype(np.uint8)
    markers = distinct_markers(rng, img.shape, 20, labels=4)
    np.testing.assert_array_equal(segengine.watershed(img, markers),
                                  segengine.watershed(img, markers, tie_order="exact"))


def test_empty_image():
    out = fast(np.zeros((0, 5), np.float32), np.zeros((0, 5), np.int32))
    assert out.shape == (0, 5)


@pytest.mark.parametrize("tie_order", ["fastest", "", None, 1, "EXACT"])
def test_bad_tie_order(tie_order):
    img = np.zeros((4, 5))
    with pytest.raises(ValueError, match="tie_order"):
        segengine.watershed(img, np.ones((4, 5), int), tie_order=tie_order)
    with pytest.raises(ValueError, match="tie_order"):
        segengine.watershed_batch(img[None], None, tie_order=tie_order)
    with pytest.raises(ValueError, match="tie_order"):
        segengine.watershed(torch.from_numpy(img), None, tie_order=tie_order)


def test_fast_rejects_compact_and_lines():
    img = np.zeros((4, 5))
    with pytest.raises(ValueError, match="compactness"):
        fast(img, 3, compactness=0.1)
    with pytest.raises(ValueError, match="watershed_line"):
        fast(img, 3, watershed_line=True)
    with pytest.raises(ValueError, match="watershed_line"):
        segengine.watershed_batch(img[None], None, tie_order="fast", watershed_line=True)
    fast(img, 3, compactness=-1.0)  # <= 0: the standard watershed, allowed


def test_bad_num_threads():
    img = np.zeros((4, 5))
    with pytest.raises(ValueError, match="num_threads"):
        fast(img, 3, num_threads=0)
    with pytest.raises(TypeError, match="num_threads"):
        fast(img, 3, num_threads=1.5)


def test_nan_raises():
    img = np.zeros((200, 200), np.float32)
    img[100, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fast(img, 4, num_threads=2)


def test_kernels_take_strided_inputs():
    """The CPU kernels accept non-contiguous tensors (as a graph captured by torch.export may
    pass them) and give the answer of their contiguous copies. (The flood reads strided arrays
    itself: copying in the kernel would also materialise a broadcast input before the memory
    guard sees it.)"""
    import torch

    import segengine.ops.watershed  # noqa: F401  (defines the ops)

    rng = np.random.default_rng(3)
    img = torch.from_numpy(rng.random((24, 30)))
    markers = torch.zeros(24, 30, dtype=torch.int32)
    markers[3, 4], markers[20, 25], markers[12, 2] = 1, 2, 3
    footprint = torch.ones(3, 3, dtype=torch.bool)
    args = (footprint, [1, 1], 1.0, 0.0, False)
    ref = torch.ops.segengine.watershed(img, markers, None, *args)
    got = torch.ops.segengine.watershed(img.t().contiguous().t(), markers.t().contiguous().t(), None, *args)
    assert torch.equal(got, ref)
    ref_b = torch.ops.segengine.watershed_batch(img[None], markers[None], None, *args, None, 1)
    got_b = torch.ops.segengine.watershed_batch(img.t().contiguous().t()[None], markers.t().contiguous().t()[None],
                                                None, *args, None, 1)
    assert torch.equal(got_b, ref_b)


# ------------------------------------------------------------------------ level building
# (csrc/cpu/watershed_fast_levels.h: buckets of ~8192 pixels, levels of <= 16 pixels get
# their own slots, larger ones are counted; watershed_fast_flood.h)

def plateau_image(rng, shape, dtype):
    """Distinct values plus equal-valued runs of every size class: 2..16 pixels (own slots),
    17..400 (counted) and one value on ~10 % of the pixels, spread over many buckets."""
    n = int(np.prod(shape))
    vals = rng.permutation(n).astype(np.float64) / n - 0.5
    pos = rng.permutation(n)
    i = 0
    for size in [2, 3, 5, 16, 17, 40, 400] * 12 + [n // 10]:
        vals[pos[i:i + size]] = vals[pos[i]]
        i += size
    return vals.reshape(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plateaus_in_many_buckets_match_reference(dtype):
    rng = np.random.default_rng(7)
    shape = (260, 290)  # 75400 pixels: about 9 buckets
    img = plateau_image(rng, shape, dtype)
    markers = distinct_markers(rng, shape, 400, labels=5)
    mask = rng.random(shape) > 0.05
    np.testing.assert_array_equal(fast(img, markers, mask=mask),
                                  watershed_fast_reference(img, markers, 1, mask))


def test_plateaus_3d_full_connectivity_match_reference():
    rng = np.random.default_rng(8)
    shape = (34, 40, 44)  # 59840 pixels, 26 neighbours (the generic neighbour loop)
    img = plateau_image(rng, shape, np.float64)
    markers = distinct_markers(rng, shape, 300, labels=4).astype(np.int64)
    got = fast(img, markers, connectivity=3)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, watershed_fast_reference(img, markers, 3))


def test_huge_dynamic_range_equals_exact():
    """Distinct values over the whole float64 range (subnormals, +-inf, both zeros' code,
    1e-300..1e300): bucket lookups below/above the sampled splitters."""
    rng = np.random.default_rng(9)
    shape = (300, 310)
    n = shape[0] * shape[1]
    mag = 10.0 ** rng.uniform(-300, 300, n)
    vals = np.where(rng.random(n) < 0.5, -mag, mag)
    vals[:6] = [np.inf, -np.inf, 0.0, 5e-324, -5e-324, np.finfo(np.float64).max]
    img = rng.permutation(vals).reshape(shape)
    assert np.unique(img).size == n  # distinct
    markers = distinct_markers(rng, shape, 500, labels=9)
    for conn in (1, 2):
        np.testing.assert_array_equal(fast(img, markers, connectivity=conn),
                                      segengine.watershed(img, markers, connectivity=conn))


def test_negative_zero_in_large_image():
    """-0.0 and +0.0 are one level also when the image is sorted in buckets."""
    rng = np.random.default_rng(10)
    img = np.abs(rng.standard_normal((200, 200)))
    img[rng.random(img.shape) < 0.3] = 0.0
    neg = img.copy()
    neg[(img == 0) & (rng.random(img.shape) < 0.5)] = -0.0
    markers = distinct_markers(rng, img.shape, 300, labels=6)
    np.testing.assert_array_equal(fast(neg, markers), fast(img, markers))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint16])
def test_threads_identical_large_with_plateaus(dtype):
    """Many buckets, own-slot and counted levels, a mask: 1, 2 and 3 threads agree."""
    rng = np.random.default_rng(11)
    shape = (420, 390)
    img = plateau_image(rng, shape, np.float64)
    if np.issubdtype(dtype, np.integer):
        img = (img * 3000).astype(dtype)
    else:
        img = img.astype(dtype)
    markers = distinct_markers(rng, shape, 2000, labels=11)
    mask = rng.random(shape) > 0.1
    for kw in ({}, {"mask": mask, "connectivity": 2}):
        outs = [fast(img, markers, num_threads=t, **kw) for t in (1, 2, 3)]
        np.testing.assert_array_equal(outs[1], outs[0])
        np.testing.assert_array_equal(outs[2], outs[0])


def test_solid_marker_blocks_match_reference():
    """Markers whose neighbours are all labelled never enter the queue (they would label
    nothing): blocks of two labels side by side on few grey levels, as the reference."""
    rng = np.random.default_rng(12)
    img = rng.integers(0, 3, size=(40, 50)).astype(np.float64)
    markers = np.zeros(img.shape, np.int32)
    markers[5:15, 5:20] = 1
    markers[5:15, 20:30] = 2
    markers[25:35, 10:40] = rng.integers(1, 4, size=(10, 30))
    for conn in (1, 2):
        np.testing.assert_array_equal(fast(img, markers, connectivity=conn),
                                      watershed_fast_reference(img, markers, conn))


@pytest.mark.parametrize("dtype", [np.float64, np.uint8])
def test_masks_empty_and_sparse(dtype):
    """A mask with no pixel (nothing to sort or flood) and one with few pixels on a large
    image (few buckets from a sparse sample)."""
    rng = np.random.default_rng(13)
    img = (rng.random((250, 260)) * 200).astype(dtype)
    markers = distinct_markers(rng, img.shape, 300, labels=5)
    none = np.zeros(img.shape, bool)
    np.testing.assert_array_equal(fast(img, markers, mask=none, num_threads=2),
                                  np.zeros(img.shape, np.int32))
    sparse = rng.random(img.shape) < 0.02
    sparse[100:140, 100:140] = True
    np.testing.assert_array_equal(fast(img, markers, mask=sparse, num_threads=2),
                                  watershed_fast_reference(img, markers, 1, sparse))


@pytest.mark.parametrize("span", [2 ** 27 - 3, 2 ** 27 - 1, 2 ** 40])
@pytest.mark.parametrize("shape", [BIG2, (100, 130)])
def test_label_values_of_any_range(span, shape):
    """Labels travel in the flood's cell words when their range fits beside the flags
    (csrc/cpu/watershed_fast_flood.h: max - min < 2**27 - 2 with int32 cells) and are
    written directly otherwise; negative, huge and boundary ranges give the same regions as
    labels 1..k."""
    rng = np.random.default_rng(span % 97)
    img = plateau_image(rng, shape, np.float64)
    small = distinct_markers(rng, shape, 200, labels=5).astype(np.int64)
    lo = -(span // 3) - 7
    values = np.array([0, lo, lo + 1, lo + span // 2, lo + span - 1, lo + span], np.int64)
    mapped = values[small]
    expected = values[fast(img, small)]
    np.testing.assert_array_equal(fast(img, mapped), expected)
    mask = rng.random(shape) > 0.1
    np.testing.assert_array_equal(fast(img, mapped, mask=mask), values[fast(img, small, mask=mask)])
    if span < 2 ** 31:
        np.testing.assert_array_equal(fast(img, mapped.astype(np.int32)), expected.astype(np.int32))


# ------------------------------------------------------------------------ few distinct values
# (csrc/cpu/watershed_fast_levels.h few_levels: images of at most 2**16 distinct codes are
# counted per code instead of sorted; more per thread, more in the threads' union, or a
# thread whose first pixels are mostly distinct fall back to the sort)

def few_valued_image(rng, shape, k, dtype):
    """Values drawn from k distinct floats (a float copy of a k-level image)."""
    levels = np.sort(rng.random(k)) * 3 - 1
    return levels[rng.integers(0, k, size=shape)].astype(dtype)


@pytest.mark.parametrize("k", [1, 2, 7, 300, 5000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint64])
def test_few_distinct_values_match_reference(k, dtype):
    rng = np.random.default_rng(k)
    img = few_valued_image(rng, BIG2, k, np.float64)
    if np.issubdtype(dtype, np.integer):
        img = np.round((img + 1) * 1000).astype(dtype)
    else:
        img = img.astype(dtype)
    markers = distinct_markers(rng, BIG2, 150, labels=6)
    mask = rng.random(BIG2) > 0.1
    expected = watershed_fast_reference(img, markers, 1, mask)
    for t in (1, 2, 3):
        np.testing.assert_array_equal(fast(img, markers, mask=mask, num_threads=t), expected)


def _distinct_in_halves(per_half, shared, run=5):
    """Float image of two halves (the two threads' ranges) each holding `per_half` distinct
    values in runs of `run` equal pixels along the rows, so that no prefix of a half is
    mostly distinct (few_levels would give up early); the halves share none of their values
    (shared=False) or all of them (shared=True)."""
    half = np.repeat(np.arange(per_half, dtype=np.float64), run)
    other = half if shared else half + per_half
    vals = np.concatenate([half, other])
    return vals.reshape(2 * run, per_half)


@pytest.mark.parametrize("per_half,shared", [(40000, True), (2 ** 16, True), (40000, False),
                                             (2 ** 16 + 1, True)])
def test_distinct_counts_around_the_few_limit_equal_exact(per_half, shared):
    """Distinct values around 2**16: counted (40000 or exactly 2**16 shared by both threads),
    or the fallback to the sort when the threads' union is larger (40000 + 40000) or one
    thread's range alone is (2**16 + 1); 1 and 2 threads. Markers sit on distinct values, so
    the fast result equals the exact one."""
    rng = np.random.default_rng(per_half + shared)
    img = _distinct_in_halves(per_half, shared)
    markers = np.zeros(img.shape, np.int32)
    _, first = np.unique(img, return_index=True)
    idx = rng.choice(first, size=300, replace=False)  # one pixel per chosen value
    markers.flat[idx] = rng.integers(1, 9, size=idx.size)
    expected = segengine.watershed(img, markers)
    for t in (1, 2):
        np.testing.assert_array_equal(fast(img, markers, num_threads=t), expected)


def test_mostly_distinct_start_then_few_values():
    """A thread whose first pixels are mostly distinct gives up counting (the sort takes
    over); the result is the same."""
    rng = np.random.default_rng(11)
    img = few_valued_image(rng, BIG2, 50, np.float64)
    img.flat[:9000] = rng.random(9000) + 5
    markers = distinct_markers(rng, BIG2, 120, labels=5)
    expected = watershed_fast_reference(img, markers)
    for t in (1, 2):
        np.testing.assert_array_equal(fast(img, markers, num_threads=t), expected)
