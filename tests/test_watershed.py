"""segengine.watershed / watershed_batch: identical to scikit-image 0.26 and to the reference."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

import segengine
import segengine.ops.watershed  # noqa: F401  (registers segengine::watershed)
from segengine._reference.watershed import local_minima_reference, watershed_reference

skimage = pytest.importorskip("skimage")
from skimage import data, filters  # noqa: E402
from skimage.morphology import local_minima  # noqa: E402
from skimage.segmentation import watershed as sk_watershed  # noqa: E402

INT_DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64]
FLOAT_DTYPES = [np.float16, np.float32, np.float64]
MARKER_DTYPES = [np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
                 np.uint64]


def assert_same(expected, got):
    assert isinstance(got, np.ndarray)
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def both(image, markers=None, **kw):
    """Run skimage and segengine, assert identical output, return it."""
    expected = sk_watershed(image, markers, **kw)
    got = segengine.watershed(image, markers, **kw)
    assert_same(expected, got)
    return got


def random_markers(rng, shape, k, labels=(1, 2, 3, 4)):
    m = np.zeros(shape, np.int32)
    idx = rng.choice(m.size, size=min(k, m.size), replace=False)
    m.flat[idx] = rng.choice(labels, size=idx.size)
    return m


def smooth_volume(rng, shape, sigma=2.0):
    return ndi.gaussian_filter(rng.random(shape), sigma)


@pytest.fixture(scope="module")
def coins_case():
    coins = data.coins()
    elevation = filters.sobel(coins.astype(np.float64) / 255)
    markers = np.zeros(coins.shape, np.int32)
    markers[coins < 30] = 1
    markers[coins > 150] = 2
    return coins, elevation, markers


# ------------------------------------------------------------------------ real images

def test_coins_float_elevation(coins_case):
    _, elevation, markers = coins_case
    out = both(elevation, markers)
    assert set(np.unique(out)) == {1, 2}


def test_coins_uint8_elevation_ties(coins_case):
    _, elevation, markers = coins_case
    el8 = np.round(elevation / elevation.max() * 255).astype(np.uint8)  # many equal-valued markers
    both(el8, markers)
    both(el8, markers, connectivity=2)
    both(el8, markers, watershed_line=True)


def test_coins_raw_uint8_markers_none_and_int(coins_case):
    coins, _, _ = coins_case
    both(coins, None)
    both(coins, 200)
    both(coins, 37, connectivity=2)


def test_cell_distance_markers():
    cell = data.cell()
    binary = cell > filters.threshold_otsu(cell)
    distance = ndi.distance_transform_edt(binary)
    peaks = (distance == ndi.maximum_filter(distance, size=15)) & binary
    markers = ndi.label(peaks)[0]
    both(-distance, markers, mask=binary)
    both(cell, markers)
    both(cell.astype(np.float32), markers, compactness=0.001)


def test_3d_smoothed_noise(rng):
    vol = smooth_volume(rng, (24, 28, 20))
    markers = random_markers(rng, vol.shape, 30, labels=range(1, 31))
    for conn in (1, 2, 3):
        both(vol, markers, connectivity=conn)
    both((vol * 255).astype(np.uint8), markers, connectivity=3)
    both(vol, None)
    both(vol, markers, compactness=0.5)
    both(vol.astype(np.float32), markers, watershed_line=True)


# ------------------------------------------------------------------------ options

@pytest.mark.parametrize("ndim,conn", [(1, 1), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3), (4, 2)])
def test_every_connectivity(rng, ndim, conn):
    shape = (7, 6, 5, 4)[:ndim]
    img = rng.integers(0, 4, size=shape).astype(np.uint8)
    markers = random_markers(rng, shape, 5)
    both(img, markers, connectivity=conn)
    both(img.astype(np.float64), markers, connectivity=conn, watershed_line=True)
    both(img, None, connectivity=conn)


def test_footprint_connectivity_and_offset(rng):
    img = rng.integers(0, 5, size=(15, 17)).astype(np.float32)
    markers = random_markers(rng, img.shape, 8)
    fp = np.array([[0, 1, 0], [1, 1, 1], [1, 0, 1]], bool)
    both(img, markers, connectivity=fp)
    both(img, markers, connectivity=np.ones((5, 5), bool))
    both(img, markers, connectivity=np.ones((3, 3), bool), offset=(1, 1))
    both(img, markers, connectivity=fp, watershed_line=True)


def test_mask(rng):
    img = rng.random((40, 50))
    mask = rng.random(img.shape) > 0.3
    markers = random_markers(rng, img.shape, 20)
    out = both(img, markers, mask=mask)
    assert np.all(out[~mask] == 0)
    both(img, None, mask=mask)
    both(img, 25, mask=mask)
    both(img, markers, mask=mask.astype(np.uint8), watershed_line=True)


@pytest.mark.parametrize("compactness", [1e-4, 0.01, 1.0, 100.0])
def test_compactness(rng, compactness):
    img = filters.sobel(rng.random((48, 40)))
    both(img, 20, compactness=compactness)
    both((img * 200).astype(np.uint8), 20, compactness=compactness)
    both(img, 20, compactness=compactness, watershed_line=True)  # lines ignored when compact


def test_negative_compactness_is_plain(rng):
    img = rng.integers(0, 3, size=(20, 20)).astype(np.uint8)
    markers = random_markers(rng, img.shape, 6)
    both(img, markers, compactness=-1.0)
    np.testing.assert_array_equal(segengine.watershed(img, markers, compactness=-1.0),
                                  segengine.watershed(img, markers))


def test_watershed_line(rng):
    img = rng.random((30, 30))
    markers = random_markers(rng, img.shape, 10)
    out = both(img, markers, watershed_line=True)
    assert (out == 0).any()
    both(img, markers, watershed_line=True, connectivity=2)


# ------------------------------------------------------------------------ ties, plateaus

def test_plateau_split_between_markers():
    img = np.zeros((5, 9), np.uint8)
    markers = np.zeros_like(img, dtype=np.int32)
    markers[2, 0] = 1
    markers[2, 8] = 2
    out = both(img, markers)
    assert (out[:, :4] == 1).all() and (out[:, 5:] == 2).all()


def test_equal_valued_markers_of_different_labels(rng):
    # Many markers of different labels on the same grey levels: the tie order comes from
    # the heap layout and must match scikit-image's.
    for _ in range(10):
        img = rng.integers(0, 3, size=(25, 31)).astype(np.uint8)
        markers = random_markers(rng, img.shape, 60, labels=range(1, 9))
        both(img, markers)
        both(img, markers, connectivity=2)
        both(img.astype(np.float32), markers)
        both(img, markers, watershed_line=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint32, np.int64])
def test_plateaus_after_last_contested_level(rng, dtype):
    # Markers of different labels tie only on low levels (or nowhere): past them the kernel
    # leaves the exact heap for a faster queue, which must keep the insertion order on plateaus.
    for _ in range(6):
        img = rng.integers(0, 6, size=(30, 34)).astype(dtype)
        img = ndi.uniform_filter(img.astype(np.float64), 3).round(1).astype(dtype)
        markers = ndi.label(img <= np.percentile(img, 8))[0].astype(np.int32)
        both(img, markers)
        both(img, markers, connectivity=2)
        single = (markers > 0).astype(np.int32) * 3
        single[0, 0] = 7  # one other label on a unique spot
        both(img, single)
        unique = np.zeros(img.shape, np.int32)
        flat = rng.choice(img.size, 12, replace=False)
        unique.flat[flat] = np.arange(1, 13)
        both(np.arange(img.size, dtype=np.float64).reshape(img.shape) % 7 + img, unique)


def test_wide_heap_items(rng):
    # Images past 2**32 pixels use 24-byte heap items: force that path on small images
    # (packed_limit=0, an explicit argument of the kernel; no global state).
    from segengine.ops import _watershed_inputs as inputs
    from segengine.ops.watershed import flood_arrays

    def wide(img, markers, mask=None):
        fp, off = inputs.footprint(img.ndim, 1, None)
        got = flood_arrays(inputs.image_view(img), markers, None, fp, off, 0.0,
                           inputs.mask_array(mask, img.shape), 0.0, False, packed_limit=0)
        assert_same(sk_watershed(img, markers, mask=mask), got)

    for dtype in (np.float32, np.int32, np.float64, np.int64):
        img = rng.integers(0, 4, size=(22, 25)).astype(dtype)
        markers = random_markers(rng, img.shape, 30, labels=range(1, 6))
        wide(img, markers)
        wide(img, markers, mask=rng.random(img.shape) > 0.2)
        wide(img, ndi.label(img == 0)[0].astype(np.int32))


def test_clamped_cost_fair_split():
    # skimage 0.26 raises a pushed value to the popped one: equal seeds share the valley
    img = np.array([[5, 0, 0, 0, 0, 0, 5]], dtype=np.float64)
    markers = np.array([[1, 0, 0, 0, 0, 0, 2]])
    np.testing.assert_array_equal(both(img, markers), [[1, 1, 1, 1, 2, 2, 2]])


def test_negative_labels_kept(rng):
    img = rng.random((20, 20))
    markers = random_markers(rng, img.shape, 8, labels=(-5, -1, 3, 7))
    out = both(img, markers)
    assert set(np.unique(out)) <= {-5, -1, 3, 7}
    assert (out < 0).any()


def test_constant_image_markers_none():
    both(np.ones((6, 7)), None)  # no local minimum at the global maximum touching the border
    both(np.zeros((6, 7), np.uint8), None, connectivity=2)


# ------------------------------------------------------------------------ dtypes

@pytest.mark.parametrize("dtype", INT_DTYPES + FLOAT_DTYPES + [np.bool_])
def test_image_dtypes(rng, dtype):
    base = rng.integers(0, 7, size=(23, 19))
    if dtype == np.bool_:
        img = base > 3
    elif np.dtype(dtype).kind == "i":
        img = (base - 3).astype(dtype)
    else:
        img = base.astype(dtype)
    markers = random_markers(rng, img.shape, 9)
    both(img, markers)
    both(img, markers, connectivity=2, watershed_line=True)
    both(img, markers, compactness=0.3)
    if dtype not in (np.float16, np.bool_):  # skimage's local_minima rejects these
        both(img, None)
    else:
        ref = watershed_reference(img.astype(np.float64) if dtype == np.float16 else img.astype(np.uint8), None)
        assert_same(ref, segengine.watershed(img, None))


@pytest.mark.parametrize("dtype", MARKER_DTYPES)
def test_marker_dtypes(rng, dtype):
    img = rng.random((17, 21))
    if dtype == np.bool_:
        markers = np.zeros(img.shape, bool)
        markers[::5, ::6] = True
    else:
        info = np.iinfo(dtype)
        markers = np.zeros(img.shape, dtype)
        markers[::5, ::6] = np.array([1, info.max, 2, info.max - 1], dtype=dtype)[
            np.arange(markers[::5, ::6].size) % 4].reshape(markers[::5, ::6].shape)
    both(img, markers)
    both(img, markers, watershed_line=True)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_most_negative_label_with_mask(rng, dtype):
    # the kernel marks masked-out pixels with the dtype's minimum unless a marker uses it
    img = rng.integers(0, 4, size=(20, 23)).astype(np.uint8)
    mask = rng.random(img.shape) > 0.25
    markers = random_markers(rng, img.shape, 10).astype(dtype)
    both(img, markers, mask=mask)
    markers[markers == 2] = np.iinfo(dtype).min
    out = both(img, markers, mask=mask)
    assert (out == np.iinfo(dtype).min).any()
    both(img.astype(np.float32), markers, mask=mask)


def test_int64_beyond_2_53_compared_as_float64():
    big = 2 ** 60
    img = np.array([[big, big + 1, big + 3, big + 2, big]], dtype=np.int64)
    markers = np.array([[1, 0, 0, 0, 2]])
    # big+1 .. big+3 round to the same float64: ties resolved by insertion order, as skimage
    both(img, markers)
    both(img.astype(np.uint64), markers)


def test_infinities_allowed():
    img = np.array([[0.0, np.inf, -np.inf, 1.0, np.inf]])
    both(img, np.array([[1, 0, 0, 0, 2]]))


# ------------------------------------------------------------------------ layouts

def test_non_contiguous_inputs(rng):
    base = rng.random((40, 60))
    markers = random_markers(rng, (60, 40), 12).T  # transposed, F-ordered
    img = base[:, ::-1]
    assert not img.flags.c_contiguous
    mask = (rng.random((80, 60)) > 0.2)[::2]
    both(img, markers, mask=mask)
    both(np.asfortranarray(img), np.asfortranarray(markers))


def test_list_inputs():
    img = [[0, 1, 2, 1, 0]]
    out = both(np.array(img), [[1, 0, 0, 0, 2]])
    assert_same(out, segengine.watershed(img, [[1, 0, 0, 0, 2]]))


def test_empty_images():
    for shape in [(0,), (0, 5), (3, 0, 2)]:
        both(np.zeros(shape), np.zeros(shape, np.int64))
        assert segengine.watershed(np.zeros(shape), None).shape == shape


# ------------------------------------------------------------------------ reference

@pytest.mark.parametrize("seed", range(4))
def test_matches_reference(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(3, 12, size=int(rng.integers(1, 4))))
    img = rng.integers(0, 4, size=shape).astype(np.float64)
    markers = random_markers(rng, shape, 5)
    mask = rng.random(shape) > 0.2
    for kw in [{}, {"watershed_line": True}, {"compactness": 0.5}, {"connectivity": len(shape)}]:
        expected = watershed_reference(img, markers, mask=mask, **kw)
        assert_same(expected, segengine.watershed(img, markers, mask=mask, **kw))
    assert_same(watershed_reference(img, None), segengine.watershed(img, None))


def test_reference_local_minima_matches_skimage(rng):
    img = rng.integers(0, 4, size=(15, 13))
    for conn in (1, 2):
        np.testing.assert_array_equal(local_minima_reference(img, conn), local_minima(img, connectivity=conn))


# ------------------------------------------------------------------------ batch

def test_batch_matches_single(rng):
    imgs = rng.integers(0, 5, size=(5, 20, 24)).astype(np.uint8)
    markers = np.stack([random_markers(rng, imgs.shape[1:], 12) for _ in range(5)])
    masks = rng.random(imgs.shape) > 0.1
    for kw in [{}, {"watershed_line": True}, {"compactness": 0.1}, {"connectivity": 2}]:
        out = segengine.watershed_batch(imgs, markers, mask=masks, num_threads=2, **kw)
        for b in range(5):
            assert_same(sk_watershed(imgs[b], markers[b], mask=masks[b], **kw), out[b])
    for markers_arg in (None, 7):
        out = segengine.watershed_batch(imgs, markers_arg, mask=masks[0], num_threads=1)
        for b in range(5):
            assert_same(sk_watershed(imgs[b], markers_arg, mask=masks[0]), out[b])


def test_batch_threads_deterministic(rng):
    imgs = rng.random((6, 16, 16)).astype(np.float32)
    a = segengine.watershed_batch(imgs, None, num_threads=1)
    b = segengine.watershed_batch(imgs, None, num_threads=3)
    c = segengine.watershed_batch(torch.from_numpy(imgs), None)
    assert_same(a, b)
    assert isinstance(c, torch.Tensor)
    np.testing.assert_array_equal(c.numpy(), a)


def test_batch_bad_input(rng):
    with pytest.raises(ValueError, match="images"):
        segengine.watershed_batch(np.zeros(5), None)
    with pytest.raises(ValueError, match="markers"):
        segengine.watershed_batch(np.zeros((2, 4, 4)), np.zeros((2, 4, 5), int))
    with pytest.raises(ValueError, match="num_threads"):
        segengine.watershed_batch(np.zeros((2, 4, 4)), None, num_threads=0)
    bad = np.zeros((3, 4, 4))
    bad[2, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        segengine.watershed_batch(bad, None, num_threads=2)


# ------------------------------------------------------------------------ torch

def test_torch_tensors(device, rng):
    img = rng.random((20, 22)).astype(np.float32)
    markers = random_markers(rng, img.shape, 8).astype(np.int64)
    expected = sk_watershed(img, markers)
    out = segengine.watershed(torch.from_numpy(img).to(device), torch.from_numpy(markers).to(device))
    assert isinstance(out, torch.Tensor)
    assert out.device.type == device.type and out.dtype == torch.int64
    np.testing.assert_array_equal(out.cpu().numpy(), expected)
    # non-contiguous tensor, bfloat16 / half images, mask tensor
    t = torch.from_numpy(np.ascontiguousarray(img.T)).to(device).t()
    np.testing.assert_array_equal(segengine.watershed(t, markers).cpu().numpy(), expected)
    half = torch.from_numpy(img).half()
    np.testing.assert_array_equal(segengine.watershed(half.to(device), markers).cpu().numpy(),
                                  sk_watershed(half.numpy(), markers))
    mask = torch.from_numpy(img > 0.2).to(device)
    np.testing.assert_array_equal(segengine.watershed(torch.from_numpy(img), markers, mask=mask).numpy(),
                                  sk_watershed(img, markers, mask=img > 0.2))


def test_cuda_tensor_roundtrip_when_available(rng):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    img = torch.rand(16, 16, device="cuda")
    out = segengine.watershed(img, None)
    assert out.device.type == "cuda"
    np.testing.assert_array_equal(out.cpu().numpy(), sk_watershed(img.cpu().numpy(), None))


# ------------------------------------------------------------------------ errors

def test_bad_inputs():
    img = np.zeros((4, 5))
    with pytest.raises(ValueError, match=r"markers.*shape"):
        segengine.watershed(img, np.zeros((4, 4), int))
    with pytest.raises(TypeError, match="markers"):
        segengine.watershed(img, np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"mask.*shape"):
        segengine.watershed(img, None, mask=np.ones((5, 4), bool))
    for conn in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="connectivity"):
            segengine.watershed(img, None, connectivity=conn)
    with pytest.raises(TypeError, match="connectivity"):
        segengine.watershed(img, None, connectivity="full")
    with pytest.raises(ValueError, match="connectivity"):
        segengine.watershed(img, np.zeros((4, 5), int), connectivity=np.ones((3, 3, 3)))
    with pytest.raises(ValueError, match="centre"):
        segengine.watershed(img, np.zeros((4, 5), int), connectivity=np.ones((2, 3)))
    with pytest.raises(ValueError, match="offset"):
        segengine.watershed(img, np.zeros((4, 5), int), offset=(1, 1, 1))
    with pytest.raises(ValueError, match="integer `connectivity`"):
        segengine.watershed(img, None, connectivity=np.ones((3, 3)))
    nan = img.copy()
    nan[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        segengine.watershed(nan, np.ones((4, 5), int))
    with pytest.raises(ValueError, match="NaN"):
        segengine.watershed(nan.astype(np.float32), None)
    with pytest.raises(TypeError, match="image"):
        segengine.watershed(img.astype(np.complex64), None)
    with pytest.raises(ValueError, match="image"):
        segengine.watershed(np.float64(3.0), None)
    with pytest.raises(ValueError, match="compactness"):
        segengine.watershed(img, 3, compactness=np.inf)
    with pytest.raises(ValueError, match="markers"):
        segengine.watershed(img, 0)
    with pytest.raises(ValueError, match="mask"):
        segengine.watershed(img, 3, mask=np.zeros((4, 5), bool))


# ------------------------------------------------------------------------ properties

@st.composite
def cases(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 9), min_size=ndim, max_size=ndim)))
    size = int(np.prod(shape))
    levels = draw(st.integers(1, 6))
    values = draw(st.lists(st.integers(0, levels - 1), min_size=size, max_size=size))
    img = np.array(values, dtype=np.uint8).reshape(shape)
    labels = draw(st.lists(st.integers(-2, 4), min_size=size, max_size=size))
    keep = draw(st.lists(st.booleans(), min_size=size, max_size=size))
    markers = np.where(np.array(keep).reshape(shape) & (draw(st.integers(0, 3)) > 0),
                       np.array(labels).reshape(shape), 0).astype(np.int32)
    mask = None
    if draw(st.booleans()):
        mask = np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size))).reshape(shape)
    conn = draw(st.integers(1, ndim))
    dtype = draw(st.sampled_from([np.uint8, np.int16, np.float32, np.float64]))
    return img.astype(dtype), markers, mask, conn


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.booleans(), st.sampled_from([0.0, 0.0, 0.7]))
def test_property_equals_skimage(case, line, compactness):
    img, markers, mask, conn = case
    both(img, markers, connectivity=conn, mask=mask, watershed_line=line, compactness=compactness)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_property_labels_cover_reachable_pixels(case):
    img, markers, mask, conn = case
    out = segengine.watershed(img, markers, connectivity=conn, mask=mask)
    inside = np.ones(img.shape, bool) if mask is None else mask
    seeds = (markers != 0) & inside
    # every output label is a marker label
    assert set(np.unique(out[out != 0])) <= set(np.unique(markers[seeds]))
    # every in-mask pixel connected to a marker through the mask is labelled, nothing else is
    comp, _ = ndi.label(inside, structure=ndi.generate_binary_structure(img.ndim, conn))
    reachable = np.isin(comp, np.unique(comp[seeds])) & inside & (comp > 0)
    np.testing.assert_array_equal(out != 0, reachable)


def test_demo_writes_pngs(tmp_path):
    from segengine.demo import load_image
    from segengine.demos import watershed as demo

    rows = demo.run(load_image(), tmp_path, "cpu")
    assert len(rows) == 2 and all(t >= 0 for _, t in rows)
    for name in ("watershed_before.png", "watershed_after.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_custom_op_opcheck_and_fake(rng):
    img = torch.from_numpy(rng.random((9, 11)).astype(np.float32))
    markers = torch.from_numpy(random_markers(rng, (9, 11), 4))
    fp = torch.from_numpy(ndi.generate_binary_structure(2, 1))
    mask = torch.from_numpy(rng.random((9, 11)) > 0.1)
    op = torch.ops.segengine.watershed.default
    for args in [(img, markers, None, fp, [1, 1], 0.0, 0.0, False),
                 (img, markers, mask, fp, [1, 1], 0.0, 0.5, False),
                 (img, None, None, fp, [1, 1], 1.0, 0.0, True)]:
        torch.library.opcheck(op, args)
    np.testing.assert_array_equal(op(img, markers, None, fp, [1, 1], 0.0, 0.0, False).numpy(),
                                  sk_watershed(img.numpy(), markers.numpy()))
    from torch._subclasses.fake_tensor import FakeTensorMode
    m16 = markers.to(torch.int16)
    with FakeTensorMode() as mode:
        out = op(mode.from_tensor(img), mode.from_tensor(m16), None,
                 mode.from_tensor(fp), [1, 1], 0.0, 0.0, False)
    assert out.shape == img.shape and out.dtype == torch.int16


@pytest.mark.parametrize("dtype", [np.float64, np.int32])
def test_markers_shape_checked_before_dtype(dtype):
    """scikit-image's test_incorrect_markers_shape: a wrong shape is a ValueError whatever
    the markers' dtype (float markers of the right shape stay a TypeError)."""
    image = np.ones((5, 6))
    with pytest.raises(ValueError, match="same shape"):
        segengine.watershed(image, np.ones((5, 7), dtype=dtype))
    with pytest.raises(ValueError, match="same shape"):
        segengine.watershed_batch(image[None], np.ones((1, 5, 7), dtype=dtype))
    if dtype == np.float64:
        with pytest.raises(TypeError, match="integer"):
            segengine.watershed(image, np.ones((5, 6), dtype=dtype))


def test_watershed_line_no_exponential_blowup():
    """Line pixels used to pop once per copy in the heap, each pop pushing their neighbours
    again: 224 s on this 6x6x6 image with 26-connectivity (scikit-image has the same
    cascade). Run in a child process so that a regression fails instead of hanging."""
    import subprocess
    import sys
    code = ("import numpy as np, segengine\n"
            "from scipy import ndimage as ndi\n"
            "rng = np.random.default_rng(0)\n"
            "img = ndi.gaussian_filter(rng.random((6, 6, 6)), 1).astype(np.float32)\n"
            "for c in (2, 3):\n"
            "    segengine.watershed(img, connectivity=c, watershed_line=True)\n"
            "    segengine.watershed((img * 255).astype(np.uint8), connectivity=c, watershed_line=True)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("seed", range(4))
def test_watershed_line_3d_full_connectivity_matches_skimage(seed):
    """Small 3-D images where scikit-image's cascade stays cheap: identical output,
    contested equal-valued markers included (uint8, unseeded)."""
    skseg = pytest.importorskip("skimage.segmentation")
    from scipy import ndimage as ndi
    rng = np.random.default_rng(seed)
    img = ndi.gaussian_filter(rng.random((5, 4, 4)), 0.7)
    if seed % 2:
        img = (img * 12).astype(np.uint8)
    markers = None
    if seed >= 2:
        markers = np.zeros(img.shape, np.int32)
        markers[tuple(rng.integers(0, 4, (3, 5)))] = rng.integers(1, 4, 5)
    for conn in (2, 3):
        ref = skseg.watershed(img, markers, connectivity=conn, watershed_line=True)
        np.testing.assert_array_equal(segengine.watershed(img, markers, connectivity=conn, watershed_line=True), ref)
