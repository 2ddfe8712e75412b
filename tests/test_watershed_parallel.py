"""segengine.watershed(..., tie_order="parallel"): its reference rule
(segengine._reference.watershed_parallel_reference) on random images with ties, masks,
footprints and every dtype; the same labels for any thread count (any cut into blocks); the
exact mode's output on images of distinct values; real images; argument checks."""

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

import segengine
from segengine._reference.watershed import watershed_parallel_reference

# images of at least 2**15 pixels are cut into one block per thread
# (csrc/cpu/watershed_parallel.cpp); blocks have at least 2**14 pixels
BIG2 = (181, 197)
BIG3 = (33, 35, 37)
DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64,
          np.float32, np.float64]


def markers_at(rng, shape, k, labels=None, dtype=np.int32):
    """k markers at distinct positions, labelled 1..k (or drawn from 1..labels)."""
    m = np.zeros(shape, dtype)
    idx = rng.choice(m.size, size=min(k, m.size), replace=False)
    m.flat[idx] = rng.integers(1, labels + 1, size=idx.size) if labels else np.arange(1, idx.size + 1)
    return m


def par(image, markers, **kw):
    return segengine.watershed(image, markers, tie_order="parallel", **kw)


# ------------------------------------------------------------------------ the rule

@pytest.mark.parametrize("seed", range(12))
def test_small_images_match_reference(seed):
    """Few grey levels (plateaus, ties between fronts), masks, both connectivities, 1-3-D,
    every dtype, labels of any sign."""
    rng = np.random.default_rng(seed)
    for trial in range(12):
        nd = int(rng.integers(1, 4))
        shape = tuple(int(s) for s in rng.integers(1, (60, 24, 9)[nd - 1], nd))
        dtype = DTYPES[int(rng.integers(len(DTYPES)))]
        img = rng.integers(0, int(rng.choice([2, 4, 30])), shape).astype(dtype)
        markers = np.zeros(shape, np.int64)
        for _ in range(int(rng.integers(1, 6))):
            markers[tuple(int(rng.integers(s)) for s in shape)] = int(rng.integers(-4, 5)) or 9
        mask = rng.random(shape) > 0.25 if trial % 3 == 0 else None
        conn = int(rng.integers(1, nd + 1))
        expected = watershed_parallel_reference(img, markers, conn, mask)
        for t in (1, 2):
            np.testing.assert_array_equal(par(img, markers, connectivity=conn, mask=mask, num_threads=t),
                                          expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape", [BIG2, BIG3])
def test_blocks_match_reference(dtype, shape):
    """Images cut into blocks: ties across faces, masks, regions whose only marker is in
    another block, both connectivities; 1-4 threads give the reference's labels."""
    rng = np.random.default_rng(1)
    img = rng.integers(0, 12, size=shape).astype(dtype)
    markers = markers_at(rng, shape, 40, labels=6)
    mask = rng.random(shape) > 0.15
    for kw in ({"connectivity": 1}, {"connectivity": len(shape), "mask": mask}):
        expected = watershed_parallel_reference(img, markers, kw["connectivity"], kw.get("mask"))
        for t in (1, 2, 3, 4):
            np.testing.assert_array_equal(par(img, markers, num_threads=t, **kw), expected)


def test_one_marker_far_from_every_block():
    """A single marker in the last plane floods the whole image through every face."""
    rng = np.random.default_rng(2)
    img = ndi.gaussian_filter(rng.random(BIG2), 3)
    markers = np.zeros(BIG2, np.int32)
    markers[-1, 5] = 3
    for t in (1, 2, 4):
        out = par(img, markers, num_threads=t)
        assert (out == 3).all()


def test_footprint_reaching_two_planes_matches_reference():
    """A footprint that reaches two planes across a face, with an offset."""
    rng = np.random.default_rng(3)
    shape = (240, 150)
    img = rng.integers(0, 6, size=shape).astype(np.float32)
    markers = markers_at(rng, shape, 30, labels=5)
    fp = np.zeros((5, 3), bool)
    fp[0, 1] = fp[4, 1] = fp[2, 0] = fp[2, 2] = fp[1, 1] = True
    expected = watershed_parallel_reference(img, markers, fp, offset=(2, 1))
    for t in (1, 2, 3):
        np.testing.assert_array_equal(par(img, markers, connectivity=fp, offset=(2, 1), num_threads=t),
                                      expected)


@pytest.mark.parametrize("rows", [1, 2, 3, 5])
def test_fewer_planes_than_threads(rows):
    """Images too thin to cut: one block whatever the thread count."""
    rng = np.random.default_rng(rows)
    shape = (rows, 40000 // rows)
    img = rng.integers(0, 5, size=shape).astype(np.uint8)
    markers = markers_at(rng, shape, 20, labels=3)
    expected = par(img, markers, num_threads=1)
    for t in (2, 4):
        np.testing.assert_array_equal(par(img, markers, num_threads=t), expected)
    crop = (slice(None), slice(0, 300))
    np.testing.assert_array_equal(par(img[crop], markers[crop]),
                                  watershed_parallel_reference(img[crop], markers[crop]))


# ------------------------------------------------------------------------ exact on distinct values

@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shape", [BIG2, BIG3, (1, 257), (64, 63)])
def test_distinct_values_equal_exact(seed, shape):
    """Distinct values: no two neighbours of different labels share a key, so the parallel
    result is scikit-image's (the exact mode's), for 1 and 2 threads."""
    rng = np.random.default_rng(seed)
    img = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64)
    markers = markers_at(rng, shape, int(rng.integers(2, 200)), labels=int(rng.integers(2, 9)))
    mask = rng.random(shape) > 0.3
    for conn in (1, len(shape)):
        for mk in (None, mask):
            exact = segengine.watershed(img, markers, connectivity=conn, mask=mk)
            for t in (1, 2):
                np.testing.assert_array_equal(par(img, markers, connectivity=conn, mask=mk, num_threads=t),
                                              exact)


def _smooth_ranks(rng, shape, levels):
    """Dense ranks 0..levels-1 of a smooth random image (ties where levels < size)."""
    smooth = ndi.gaussian_filter(rng.random(shape), 3).ravel()
    rank = np.argsort(np.argsort(smooth, kind="stable"), kind="stable")
    return (rank * levels // rank.size).reshape(shape)


@pytest.mark.parametrize("case", ["f64 of float32", "f64 of float32, both signs", "f64 wide", "f64 few",
                                  "i64 both signs", "u64 times 2**33", "f64 span 2**32-1", "f64 span 2**32"])
def test_64bit_values_match_an_order_equivalent_image(case):
    """64-bit images (compared as float64) whose values' bits end in common zeros and whose
    codes span less than 2**32 above them (float32 values stored as float64, small
    integers) take 64-bit keys, the others 128-bit ones; either way the result is that of
    the same order of values as float32 ranks (ties included), with 1 and 2 blocks."""
    rng = np.random.default_rng(len(case))
    shape = (40, 37, 43)  # 63640 pixels: two blocks with two threads
    r = _smooth_ranks(rng, shape, 5000 if case == "f64 few" else 60000)
    top = r == r.max()
    # neighbouring ranks one unit apart in the lowest bit a code keeps
    if case.startswith("f64 of float32"):
        f32 = (np.uint32(0x3F000000) + r.astype(np.uint32)).view(np.float32)
        img = (f32 if case == "f64 of float32" else f32 - np.float32(1.3)).astype(np.float64)
    elif case in ("f64 wide", "f64 few"):
        img = np.sqrt(r.astype(np.float64) + 2.0)  # full 52-bit mantissas
    elif case == "i64 both signs":
        img = r.astype(np.int64) - 30000
    elif case == "u64 times 2**33":
        img = r.astype(np.uint64) << np.uint64(33)
    else:  # bits 1.0 + k << 20, k = 0, 1, ... and 2**32 - 1 (64-bit keys) or 2**32 (128-bit)
        k = r.astype(np.uint64)
        k[top] = 2**32 - 1 if case.endswith("-1") else 2**32
        img = (np.uint64(0x3FF0000000000000) + (k << np.uint64(20))).view(np.float64)
    ranks = np.unique(img, return_inverse=True)[1].reshape(shape).astype(np.float32)
    assert np.unique(ranks).size == np.unique(img).size
    markers = markers_at(rng, shape, 600)
    for conn in (1, 3):
        expected = par(ranks, markers, connectivity=conn, num_threads=1)
        for t in (1, 2):
            np.testing.assert_array_equal(par(img, markers, connectivity=conn, num_threads=t), expected)


@pytest.mark.parametrize("case", ["inf", "zeros", "signed zeros", "huge", "tiny", "subnormals", "int64 extremes",
                                  "uint64 max"])
def test_64bit_extreme_values_match_an_order_equivalent_image(case):
    """Infinities, all-zero and signed-zero images, values near the float64 limits and the
    64-bit integers' extremes (compared as float64) decide the key width as any other
    values: the result is that of their float32 ranks, with 1 and 2 blocks."""
    rng = np.random.default_rng(5)
    shape = (40, 37, 43)
    base = ndi.gaussian_filter(rng.random(shape), 2).astype(np.float32)
    if case == "inf":
        img = base.astype(np.float64)
        img[5:8] = np.inf
        img[20:22, :5] = -np.inf
    elif case == "zeros":
        img = np.zeros(shape)
    elif case == "signed zeros":
        img = np.zeros(shape)
        img[::2] = -0.0
        img[5:9, 3:30] = 1.0
    elif case == "huge":
        img = base.astype(np.float64) * 1e300
    elif case == "tiny":
        img = (base.astype(np.float64) - 0.5) * 1e-300
    elif case == "subnormals":  # codes near 2**63 on both sides; only the negatives' bits end in a one
        k = (base.ravel().argsort().argsort() % 40000).astype(np.uint64).reshape(shape)
        img = np.where(base > 0.5, k << np.uint64(8), (np.uint64(1) << np.uint64(63)) | (2 * k + 1)).view(np.float64)
    elif case == "int64 extremes":
        img = np.where(base > 0.5, np.iinfo(np.int64).max, np.iinfo(np.int64).min + (base * 1000).astype(np.int64))
    else:
        img = np.where(base > 0.5, np.iinfo(np.uint64).max, (base * 1000).astype(np.uint64))
    ranks = np.unique(img.astype(np.float64), return_inverse=True)[1].reshape(shape).astype(np.float32)
    markers = markers_at(rng, shape, 300)
    expected = par(ranks, markers, num_threads=1)
    for t in (1, 2):
        np.testing.assert_array_equal(par(img, markers, num_threads=t), expected)


def test_smoothed_volume_equals_exact():
    rng = np.random.default_rng(7)
    img = ndi.gaussian_filter(rng.random((48, 40, 44)), 2).astype(np.float32)
    markers = markers_at(rng, img.shape, 60)
    exact = segengine.watershed(img, markers)
    for t in (1, 2, 3):
        np.testing.assert_array_equal(par(img, markers, num_threads=t), exact)


# ------------------------------------------------------------------------ real images

def test_coins_and_distance_transform():
    """scikit-image's coins tutorial (tied marker regions) and a distance-transform image
    (plateaus): the reference's labels on crops, a small differing fraction from the exact
    mode at full size, the same labels for 1 and 2 threads."""
    pytest.importorskip("skimage")
    from skimage import data, filters
    coins = data.coins()
    el = filters.sobel(coins.astype(np.float64) / 255)
    markers = np.zeros(coins.shape, np.int32)
    markers[coins < 30] = 1
    markers[coins > 150] = 2
    fg = coins > 100
    dist = ndi.distance_transform_edt(fg)
    peaks = (dist == ndi.maximum_filter(dist, 9)) & fg
    dmarkers = ndi.label(peaks)[0]
    for img, mk, mask in ((el, markers, None), (-dist, dmarkers, fg)):
        one = par(img, mk, mask=mask, num_threads=1)
        np.testing.assert_array_equal(par(img, mk, mask=mask, num_threads=2), one)
        assert np.mean(one != segengine.watershed(img, mk, mask=mask)) < 0.02
        crop = (slice(100, 180), slice(40, 150))
        np.testing.assert_array_equal(
            par(img[crop], mk[crop], mask=None if mask is None else mask[crop]),
            watershed_parallel_reference(img[crop], mk[crop], mask=None if mask is None else mask[crop]))


# ------------------------------------------------------------------------ inputs

def test_batch_tensor_and_label_dtypes():
    rng = np.random.default_rng(5)
    imgs = rng.integers(0, 9, (3,) + BIG2).astype(np.float32)
    markers = np.stack([markers_at(rng, BIG2, 50, labels=4, dtype=np.int64) for _ in range(3)])
    per_item = np.stack([par(imgs[b], markers[b]) for b in range(3)])
    for t in (1, 2, 3):
        np.testing.assert_array_equal(
            segengine.watershed_batch(imgs, markers, tie_order="parallel", num_threads=t), per_item)
        np.testing.assert_array_equal(
            segengine.watershed_batch(imgs[:1], markers[:1], tie_order="parallel", num_threads=t),
            per_item[:1])
    got = par(torch.from_numpy(imgs[0]), torch.from_numpy(markers[0]))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.int64
    np.testing.assert_array_equal(got.numpy(), per_item[0])
    # labels far apart (they travel outside the cell words) and negative ones
    wide = markers[0] * (2**40) - 7 * (markers[0] != 0)
    np.testing.assert_array_equal(par(imgs[0], wide, num_threads=2),
                                  np.where(per_item[0] == 0, 0, per_item[0] * (2**40) - 7))


def test_local_minima_markers_and_unreached_pixels():
    rng = np.random.default_rng(6)
    img = rng.integers(0, 7, BIG2).astype(np.uint8)
    np.testing.assert_array_equal(par(img, None, num_threads=2), par(img, None, num_threads=1))
    # a mask wall cuts off the lower half: its pixels stay 0
    mask = np.ones(BIG2, bool)
    mask[90] = False
    markers = np.zeros(BIG2, np.int32)
    markers[3, 3] = 1
    out = par(img, markers, mask=mask, num_threads=2)
    assert (out[:90] == 1).all() and (out[90:] == 0).all()


def test_empty_nan_and_unsupported_modes():
    assert par(np.zeros((0, 5)), np.zeros((0, 5), np.int32)).shape == (0, 5)
    img = np.zeros(BIG2)
    img[100, 100] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        par(img, np.ones(BIG2, np.int32), num_threads=2)
    for kw in ({"compactness": 0.1}, {"watershed_line": True}):
        with pytest.raises(ValueError, match="parallel"):
            par(np.zeros((4, 4)), np.ones((4, 4), np.int32), **kw)
    with pytest.raises(ValueError, match="'exact', 'fast' or 'parallel'"):
        segengine.watershed(np.zeros((4, 4)), np.ones((4, 4), np.int32), tie_order="Parallel")
