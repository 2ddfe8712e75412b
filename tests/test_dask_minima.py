"""segengine.dask regional_minima_markers / rank_table / relabel_sequential: equal, for any
chunking, to scikit-image 0.26's whole-array markers of an unseeded watershed,
``ndi.label(local_minima(image, connectivity) & mask, structure)``."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from tests.dask_fixtures import *  # noqa: F401,F403

da = pytest.importorskip("dask.array")
pytest.importorskip("skimage")
from skimage.morphology import local_minima  # noqa: E402

from segengine.dask._minima import (  # noqa: E402
    rank_table,
    regional_minima_markers,
    relabel_sequential,
)


def oracle(image, connectivity, mask=None):
    """Whole-array labels as scikit-image's watershed makes its markers."""
    img = np.asarray(image)
    if img.dtype == np.bool_:
        img = img.astype(np.uint8)
    elif img.dtype == np.float16:
        img = img.astype(np.float32)
    minima = local_minima(img, connectivity=connectivity)
    if mask is not None:
        minima &= np.asarray(mask, dtype=bool)
    return ndi.label(minima, structure=ndi.generate_binary_structure(img.ndim, connectivity))[0]


def oracle_ids(labels):
    """1 + the smallest raveled index of each label, painted on its pixels."""
    flat = labels.ravel()
    idx = np.flatnonzero(flat)
    first = np.full(flat.max(initial=0) + 1, -1, dtype=np.int64)
    first[flat[idx][::-1]] = idx[::-1]  # last write wins: the smallest index
    out = np.where(flat > 0, first[flat] + 1, 0)
    return out.reshape(labels.shape)


def check(image, chunks, connectivity, mask=None, scheduler="synchronous"):
    """Compare ids and sequential labels with the oracle; return the expected labels."""
    x = da.from_array(image, chunks=chunks)
    ids = regional_minima_markers(x, mask=mask, connectivity=connectivity)
    assert ids.dtype == np.int64 and ids.chunks == x.chunks
    seq = relabel_sequential(ids, rank_table(ids))
    got_ids, got = compute(da.stack([ids, seq.astype(np.int64)]), scheduler)  # noqa: F405
    expected = oracle(image, connectivity, mask)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got_ids, oracle_ids(expected))
    return expected


# ----------------------------------------------------------------------------- random images

@pytest.mark.parametrize("chunks", [(3, 5), ((3, 7, 5, 8), (4, 9, 18)), (7, 7), (23, 31)])
@pytest.mark.parametrize("connectivity", [1, 2])
def test_random_float_2d(chunks, connectivity):
    img = np.random.default_rng(1).random((23, 31))
    assert check(img, chunks, connectivity).max() > 20


@pytest.mark.parametrize("chunks, connectivity", [
    ((3, 4, 5), 1), ((3, 4, 5), 3), (((1, 4, 6), (13,), (2, 7)), 2), ((11, 13, 9), 3)])
def test_random_float_3d(chunks, connectivity):
    img = np.random.default_rng(2).random((11, 13, 9)).astype(np.float32)
    assert check(img, chunks, connectivity).max() > 10


UNEVEN = ((5, 1, 6), (4, 7), (3, 3, 4))


@pytest.mark.parametrize("chunks, connectivity, masked", [
    ((3, 3, 3), 1, False), ((3, 3, 3), 2, True), ((3, 3, 3), 3, False),
    (UNEVEN, 1, True), (UNEVEN, 2, False), (UNEVEN, 3, True), ((6, 11, 5), 2, True)])
def test_quantised_plateaus_3d(chunks, connectivity, masked):
    """Three grey levels: plateaus of every size cross faces, edges and corners, merge and
    drain through other blocks."""
    rng = np.random.default_rng(3)
    img = rng.integers(0, 3, size=(12, 11, 10)).astype(np.uint8)
    mask = rng.random(img.shape) < 0.85 if masked else None
    expected = check(img, chunks, connectivity, mask)
    assert expected.max() >= 2 and np.bincount(expected.ravel())[1:].max() > 50


@pytest.mark.parametrize("seed", range(4))
def test_random_chunkings_2d(seed):
    """Smoothed, quantised images: large plateaus; random uneven chunkings and masks."""
    rng = np.random.default_rng(10 + seed)
    shape = tuple(rng.integers(9, 30, size=2))
    img = np.round(ndi.gaussian_filter(rng.random(shape), 1.5) * 12).astype(np.int16)
    chunks = tuple(tuple(np.diff(np.unique(np.r_[0, rng.integers(1, s, 3), s]))) for s in shape)
    mask = rng.random(shape) < 0.9 if seed % 2 else None
    check(img, chunks, int(rng.integers(1, 3)), mask)


@pytest.mark.parametrize("chunks", [1, 2, 5, 37])
def test_1d(chunks):
    img = np.random.default_rng(4).integers(0, 4, size=37).astype(np.int32)
    assert check(img, chunks, 1).max() > 3


# ----------------------------------------------------------------------------- constructed plateaus

def test_background_plateau_spans_all_blocks():
    img = np.zeros((20, 24), dtype=np.uint8)
    img[2:18:4, 3:22:5] = 7  # bumps; the zero background is one plateau over every block
    img[9, 9] = 0
    expected = check(img, (3, 5), 1)
    assert expected.max() == 1 and np.count_nonzero(expected) == np.count_nonzero(img == 0)


def test_plateau_drains_in_a_far_block():
    img = np.full((24, 24), 5, dtype=np.uint8)
    img[1:23:3, 2:22:4] = 9
    img[23, 23] = 4  # the only way down, in the last block
    expected = check(img, (4, 4), 1)
    assert np.count_nonzero(expected) == 1 and expected[23, 23] == 1
    img[23, 23] = 5  # no way down: the whole 5-plateau is the minimum
    expected = check(img, (4, 4), 1)
    assert expected.max() == 1 and np.count_nonzero(expected) == np.count_nonzero(img == 5)


def test_drain_only_across_a_block_corner():
    """A plateau filling one block whose only lower neighbour is diagonal, in the block across
    the corner: a minimum with face neighbours only, not with diagonal ones."""
    img = np.full((8, 8), 9, dtype=np.uint8)
    img[:4, :4] = 3
    img[4, 4] = 1
    assert check(img, 4, 1).max() == 2
    assert check(img, 4, 2).max() == 1
    vol = np.full((6, 6, 6), 9, dtype=np.uint8)
    vol[:3, :3, :3] = 3
    vol[3, 3, 3] = 1
    assert check(vol, 3, 2).max() == 2
    assert check(vol, 3, 3).max() == 1


def test_pieces_joined_only_across_a_corner():
    img = np.full((8, 8), 5, dtype=np.uint8)
    img[3, 3] = img[4, 4] = 0
    assert check(img, 4, 1).max() == 2
    expected = check(img, 4, 2)
    assert expected.max() == 1 and expected[4, 4] == 1


def test_mask_splits_a_plateau():
    img = np.zeros((16, 16), dtype=np.uint8)
    img[3, 3] = 1
    mask = np.ones(img.shape, dtype=bool)
    mask[:, 7] = False  # two halves
    mask[11, :7] = False  # the left half in two
    expected = check(img, (5, 3), 1, mask)
    assert expected.max() == 3
    ids = regional_minima_markers(img, mask=mask).compute()
    assert ids[0, 0] == 1 and ids[0, 8] == 9 and ids[12, 0] == 12 * 16 + 1


def test_mask_as_ints_and_other_chunks():
    rng = np.random.default_rng(5)
    img = rng.integers(0, 3, size=(15, 14)).astype(np.uint8)
    mask = rng.integers(0, 3, size=img.shape).astype(np.int64)  # nonzero = inside
    ids = regional_minima_markers(da.from_array(img, chunks=4), mask=da.from_array(mask, chunks=6))
    got = relabel_sequential(ids, rank_table(ids)).compute()
    np.testing.assert_array_equal(got, oracle(img, 1, mask != 0))


@pytest.mark.parametrize("value", [0, 7])
def test_constant_image_has_no_minima(value):
    """scikit-image's rule: a plateau at the global maximum touching the border is not a
    minimum, and a constant image is exactly that."""
    img = np.full((9, 10), value, dtype=np.uint8)
    assert check(img, 4, 1).max() == 0
    assert check(np.ones((3, 4), dtype=bool), 2, 2).max() == 0
    assert check(np.array([5.0]), 1, 1).max() == 0


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint16, np.int64, np.float16, np.float64])
def test_dtypes(dtype):
    rng = np.random.default_rng(6)
    if dtype == np.bool_:
        img = rng.random((13, 12)) < 0.6
    else:
        info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(dtype)
        levels = np.array([info.min, info.min + 1, 0, 1, info.max], dtype=dtype)
        img = levels[rng.integers(0, 5, size=(13, 12))]
    check(img, (4, 5), 2)


def test_top_value_plateau_drains():
    """A plateau at the dtype's largest value (the sentinel of the leak search) still drains."""
    img = np.full((6, 6), np.inf)
    img[0, 0], img[5, 5] = 1.0, 0.0
    img[2, 2] = np.inf
    check(img, 3, 1)
    img8 = np.full((6, 7), 255, dtype=np.uint8)
    img8[1, 1] = 3
    check(img8, (2, 3), 2)


# ----------------------------------------------------------------------------- schedulers

def test_schedulers(scheduler):
    rng = np.random.default_rng(7)
    img = rng.integers(0, 3, size=(10, 9, 8)).astype(np.uint8)
    mask = rng.random(img.shape) < 0.9
    check(img, ((3, 4, 3), (5, 4), (2, 6)), 2, mask, scheduler=scheduler)


# ----------------------------------------------------------------------------- laziness

def _boom(block):
    raise RuntimeError("computed")


def test_graph_construction_computes_nothing():
    x = da.zeros((12, 10), chunks=4).map_blocks(_boom, dtype=np.float32)
    m = da.ones((12, 10), chunks=4, dtype=bool).map_blocks(_boom, dtype=bool)
    ids = regional_minima_markers(x, mask=m, connectivity=2)
    out = relabel_sequential(ids, rank_table(ids))
    with pytest.raises(RuntimeError, match="computed"):
        out.compute(scheduler="synchronous")


# ----------------------------------------------------------------------------- numbering helpers

def test_rank_table_and_relabel():
    labels = np.array([[0, 40, 40, 7], [7, 0, 1000, 3]], dtype=np.int64)
    x = da.from_array(labels, chunks=(1, 3))
    table = rank_table(x)
    np.testing.assert_array_equal(table.compute(), [3, 7, 40, 1000])
    expected = np.array([[0, 3, 3, 2], [2, 0, 4, 1]])
    for t in (table, table.compute(), table.to_delayed().ravel()[0]):
        got = relabel_sequential(x, t, dtype=np.uint8).compute()
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, expected)


def test_relabel_errors():
    x = da.from_array(np.array([0, 5, 9]), chunks=2)
    with pytest.raises(ValueError, match="label 9 is not in `table`"):
        relabel_sequential(x, np.array([5, 7])).compute()
    with pytest.raises(ValueError, match="do not fit in dtype int8"):
        relabel_sequential(x, np.arange(1, 300), dtype=np.int8).compute()
    with pytest.raises(ValueError, match="sorted"):
        relabel_sequential(x, np.array([9, 5]))
    with pytest.raises(ValueError, match="1-D"):
        relabel_sequential(x, np.array([[5, 9]]))
    with pytest.raises(TypeError, match="integer dtype"):
        relabel_sequential(x, np.array([5.0, 9.0]))
    with pytest.raises(TypeError, match="`table` must be"):
        relabel_sequential(x, [5, 9])
    with pytest.raises(TypeError, match="`dtype` must be an integer dtype"):
        relabel_sequential(x, np.array([5, 9]), dtype=np.float32)
    with pytest.raises(TypeError, match="`labels` must have an integer dtype"):
        relabel_sequential(x.astype(float), np.array([5, 9]))
    with pytest.raises(TypeError, match="`markers` must have an integer dtype"):
        rank_table(x.astype(float))


# ----------------------------------------------------------------------------- bad input

def test_bad_input():
    img = np.zeros((4, 5))
    with pytest.raises(TypeError, match="`image` must be a dask array or a numpy array"):
        regional_minima_markers(img.tolist())
    with pytest.raises(TypeError, match="`image` must have a boolean, integer or float dtype"):
        regional_minima_markers(img.astype(complex))
    with pytest.raises(ValueError, match="at least one dimension"):
        regional_minima_markers(np.array(1.0))
    with pytest.raises(ValueError, match=r"`mask` shape \(5, 4\) does not match `image` sha"):
        regional_minima_markers(img, mask=np.ones((5, 4), dtype=bool))
    with pytest.raises(TypeError, match="`mask` must be a dask array or a numpy array"):
        regional_minima_markers(img, mask=[[True]])
    with pytest.raises(ValueError, match="`connectivity` must be >= 1"):
        regional_minima_markers(img, connectivity=0)
    for bad in (1.5, True, None):
        with pytest.raises(TypeError, match="`connectivity` must be an int"):
            regional_minima_markers(img, connectivity=bad)
    nan = img.copy()
    nan[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        regional_minima_markers(nan).compute()


def test_empty_and_unknown_chunks():
    assert regional_minima_markers(np.zeros((0, 3))).compute().shape == (0, 3)
    x = da.from_array(np.arange(6.0), chunks=2)
    x = x[x > 1]  # unknown chunk sizes
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        regional_minima_markers(x)
