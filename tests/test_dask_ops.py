"""segengine.dask: graphcut, alpha_expansion, upsample_argmax, dense_crf, confusion_matrix
and mean_iou against the single-process ops, under the synchronous, threaded and
distributed schedulers."""

import warnings

import numpy as np
import pytest
import torch

import segengine
import segengine.metrics as smetrics
from tests.dask_fixtures import *  # noqa: F401,F403  (dask_client, scheduler, compute)
from tests.dask_fixtures import compute

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

sdask = pytest.importorskip("segengine.dask")

BATCH_CHUNKS = [1, 2, (2, 3, 1)]   # one item per block, two, uneven (B = 6)


def _tripwire(a, chunks):
    """``a`` as a dask array whose blocks raise when computed: proves laziness."""
    def boom(block):
        raise RuntimeError("a block was computed")
    return da.from_array(a, chunks=chunks).map_blocks(boom, dtype=a.dtype,
                                                      meta=np.empty((0,) * a.ndim, a.dtype))


def _smooth(rng, shape, sigma=2.0):
    from scipy.ndimage import gaussian_filter
    x = rng.normal(size=shape)
    return gaussian_filter(x, [0, 0] + [sigma] * (len(shape) - 2))


# --------------------------------------------------------------------------- graphcut

def _graphcut_ref(u, pairwise=1.0, image=None, **kw):
    pw = torch.from_numpy(pairwise) if isinstance(pairwise, np.ndarray) else pairwise
    img = None if image is None else torch.from_numpy(image)
    return segengine.graphcut(torch.from_numpy(u), pw, image=img, **kw).numpy()


def test_graphcut_schedulers(scheduler, rng):
    u = _smooth(rng, (6, 2, 23, 31)).astype(np.float32) * 3
    img = rng.integers(0, 256, (6, 3, 23, 31), dtype=np.uint8)
    out = sdask.graphcut(da.from_array(u, chunks=(2, 2, 23, 31)), 0.7, image=img, connectivity=8,
                         num_threads=1)
    ref = _graphcut_ref(u, 0.7, img, connectivity=8)
    assert out.dtype == np.float32 and out.shape == (6, 23, 31)
    got = compute(out, scheduler)
    np.testing.assert_array_equal(got, ref)
    assert 0 < got.mean() < 1


@pytest.mark.parametrize("batch_chunks", BATCH_CHUNKS)
def test_graphcut_chunkings(batch_chunks, rng):
    u = _smooth(rng, (6, 2, 9, 11, 13))        # 3-D, float64, odd sizes
    pw = rng.uniform(0, 1.5, (6, 3, 9, 11, 13))
    ud = da.from_array(u, chunks=(batch_chunks, 1, 4, 11, 5))   # spatial chunks: rechunked
    out = sdask.graphcut(ud, pw)
    assert out.dtype == np.float64
    assert out.chunks[0] == ud.chunks[0] and all(len(c) == 1 for c in out.chunks[1:])
    np.testing.assert_array_equal(out.compute(scheduler="threads"), _graphcut_ref(u, pw))


def test_graphcut_numpy_and_lazy(rng):
    u = rng.normal(size=(4, 2, 10, 12)).astype(np.float32)
    np.testing.assert_array_equal(sdask.graphcut(u, 0.3, beta=0.01).compute(scheduler="synchronous"),
                                  _graphcut_ref(u, 0.3, beta=0.01))
    out = sdask.graphcut(_tripwire(u, (2, 2, 10, 12)), 0.3)
    assert out.shape == (4, 10, 12) and out.dtype == np.float32
    with pytest.raises(RuntimeError, match="a block was computed"):
        out.compute(scheduler="synchronous")


def test_graphcut_errors(rng):
    u = rng.normal(size=(3, 2, 8, 9)).astype(np.float32)
    with pytest.raises(TypeError, match="`unary` must be a dask array or a numpy array"):
        sdask.graphcut(torch.from_numpy(u))
    with pytest.raises(TypeError, match="`unary` must be a dask array or a numpy array"):
        sdask.graphcut(u.tolist())
    with pytest.raises(TypeError, match="floating-point"):
        sdask.graphcut(u.astype(np.int32))
    with pytest.raises(ValueError, match=r"`unary` must have shape \[B, 2, H, W\]"):
        sdask.graphcut(u[:, :1])
    with pytest.raises(ValueError, match=r"`pairwise` must have shape \[3, 2, 8, 9\]"):
        sdask.graphcut(u, rng.random((3, 4, 8, 9)))
    with pytest.raises(ValueError, match=r"`image` must have shape \[B, C', \*spatial\]"):
        sdask.graphcut(u, image=rng.random((2, 3, 8, 9)))
    with pytest.raises(TypeError, match="`image` must be a dask array"):
        sdask.graphcut(u, image=torch.zeros(3, 3, 8, 9))
    with pytest.raises(ValueError, match="blackbox_lambda"):
        sdask.graphcut(u, blackbox_lambda=-1.0)
    with pytest.raises(ValueError, match="num_threads"):
        sdask.graphcut(u, num_threads=0)
    with pytest.raises(ValueError, match="connectivity"):
        sdask.graphcut(u, connectivity=6)
    bad = u.copy()
    bad[1, 0, 2, 2] = np.nan     # a value check: raises from the block when computed
    out = sdask.graphcut(da.from_array(bad, chunks=(1, 2, 8, 9)))
    with pytest.raises(ValueError, match="NaN or infinity"):
        out.compute(scheduler="synchronous")


# --------------------------------------------------------------------------- alpha-expansion

def _expansion_ref(U, pairwise=1.0, edges=None, init=None, **kw):
    res = [segengine.alpha_expansion(U[i], pairwise, edge_weights=None if edges is None else edges[i],
                                     init=None if init is None else init[i], **kw)
           for i in range(U.shape[0])]
    return np.stack([r[0] for r in res]), np.array([r[1] for r in res])


def test_alpha_expansion_schedulers(scheduler, rng):
    U = (_smooth(rng, (6, 4, 15, 19)) * 5).astype(np.float32)
    labels, energy = sdask.alpha_expansion(da.from_array(U, chunks=(2, 4, 15, 19)), 0.6,
                                           num_threads=1)
    assert labels.dtype == np.int64 and labels.shape == (6, 15, 19)
    assert energy.dtype == np.float64 and energy.shape == (6,)
    rl, re = _expansion_ref(U, 0.6, num_threads=1)
    gl, ge = dask.compute(labels, energy, scheduler=scheduler)
    np.testing.assert_array_equal(gl, rl)
    np.testing.assert_array_equal(ge, re)
    assert len(np.unique(gl)) == 4


@pytest.mark.parametrize("batch_chunks", BATCH_CHUNKS)
def test_alpha_expansion_chunkings(batch_chunks, rng):
    C = 5
    U = rng.integers(0, 20, (6, C, 7, 9, 11)).astype(np.int64)     # 3-D, integer costs
    V = np.abs(np.arange(C)[:, None] - np.arange(C)[None, :]).clip(max=2) * 3   # truncated linear
    edges = rng.integers(0, 3, (6, 3, 7, 9, 11))
    init = rng.integers(0, C, (6, 7, 9, 11))
    Ud = da.from_array(U, chunks=(batch_chunks, 2, 7, 4, 11))
    labels, energy = sdask.alpha_expansion(Ud, V, edge_weights=edges, init=init,
                                           label_order=[3, 1, 0, 4, 2], max_cycles=3)
    assert labels.chunks[0] == Ud.chunks[0]
    rl, re = _expansion_ref(U, V, edges, init, label_order=[3, 1, 0, 4, 2], max_cycles=3)
    gl, ge = dask.compute(labels, energy, scheduler="threads")
    np.testing.assert_array_equal(gl, rl)
    np.testing.assert_array_equal(ge, re)


def test_alpha_expansion_solves_once_and_lazy(rng, monkeypatch):
    U = rng.normal(size=(5, 3, 8, 10))
    calls = []
    real = segengine.alpha_expansion

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    labels, energy = sdask.alpha_expansion(U, 0.5)    # numpy input is wrapped
    monkeypatch.setattr(segengine, "alpha_expansion", counted)
    gl, ge = dask.compute(labels, energy, scheduler="synchronous")
    assert len(calls) == 5          # one solve per item for both outputs
    rl, re = _expansion_ref(U, 0.5)
    np.testing.assert_array_equal(gl, rl)
    np.testing.assert_array_equal(ge, re)
    monkeypatch.undo()
    lab, en = sdask.alpha_expansion(_tripwire(U, (2, 3, 8, 10)), 0.5)
    assert lab.shape == (5, 8, 10) and en.shape == (5,)
    with pytest.raises(RuntimeError, match="a block was computed"):
        en.compute(scheduler="synchronous")


def test_alpha_expansion_errors(rng):
    U = rng.normal(size=(3, 4, 6, 7))
    with pytest.raises(TypeError, match="`unary` must be a dask array or a numpy array"):
        sdask.alpha_expansion(torch.from_numpy(U))
    with pytest.raises(ValueError, match=r"`unary` must have shape \[B, C, H, W\]"):
        sdask.alpha_expansion(U[0])
    with pytest.raises(TypeError, match="`pairwise` must be a number or a numpy"):
        sdask.alpha_expansion(U, da.ones((4, 4)))
    with pytest.raises(ValueError, match=r"pairwise must be a scalar \(Potts\) or a \[C, C\]"):
        sdask.alpha_expansion(U, np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"`edge_weights` must have shape \[3, 2, 6, 7\]"):
        sdask.alpha_expansion(U, edge_weights=np.ones((3, 4, 6, 7)))
    with pytest.raises(ValueError, match=r"`init` must have shape \[3, 6, 7\]"):
        sdask.alpha_expansion(U, init=np.zeros((3, 6, 8), np.int64))
    with pytest.raises(TypeError, match="`init` must be an integer array"):
        sdask.alpha_expansion(U, init=np.zeros((3, 6, 7)))
    with pytest.raises(ValueError, match="label_order entries"):
        sdask.alpha_expansion(U, label_order=[0, 7])
    with pytest.raises(ValueError, match="max_cycles"):
        sdask.alpha_expansion(U, max_cycles=-2)
    init = np.zeros((3, 6, 7), np.int64)
    init[2, 0, 0] = 9              # a value check: raises from the block when computed
    labels, _ = sdask.alpha_expansion(U, init=init)
    with pytest.raises(ValueError, match=r"init labels must lie in \[0, 3\]"):
        labels.compute(scheduler="synchronous")


# --------------------------------------------------------------------------- upsample_argmax

def test_upsample_argmax_schedulers(scheduler, rng):
    lg = rng.normal(size=(6, 5, 9, 11)).astype(np.float32)
    out = sdask.upsample_argmax(da.from_array(lg, chunks=(2, 2, 9, 6)), size=(37, 41), num_threads=1)
    assert out.dtype == np.int64 and out.shape == (6, 37, 41)
    np.testing.assert_array_equal(compute(out, scheduler), segengine.upsample_argmax(lg, size=(37, 41)))


@pytest.mark.parametrize("batch_chunks", BATCH_CHUNKS)
@pytest.mark.parametrize("align_corners", [False, True])
def test_upsample_argmax_chunkings(batch_chunks, align_corners, rng):
    lg = rng.normal(size=(6, 4, 7, 13))          # float64
    lab, conf = sdask.upsample_argmax(da.from_array(lg, chunks=(batch_chunks, 4, 7, 13)),
                                      scale_factor=(2.5, 3.0), align_corners=align_corners,
                                      return_confidence=True)
    assert lab.chunks[0] == da.from_array(lg, chunks=(batch_chunks, 4, 7, 13)).chunks[0]
    assert lab.shape == (6, 17, 39) and conf.dtype == np.float32
    rl, rc = segengine.upsample_argmax(lg, scale_factor=(2.5, 3.0), align_corners=align_corners,
                                       return_confidence=True)
    gl, gc = dask.compute(lab, conf, scheduler="threads")
    np.testing.assert_array_equal(gl, rl)
    np.testing.assert_array_equal(gc, rc)


def test_upsample_argmax_numpy_lazy_errors(rng):
    lg = rng.normal(size=(3, 4, 5, 6)).astype(np.float16)
    np.testing.assert_array_equal(sdask.upsample_argmax(lg, size=12).compute(scheduler="synchronous"),
                                  segengine.upsample_argmax(lg, size=12))
    out = sdask.upsample_argmax(_tripwire(lg, (1, 4, 5, 6)), size=(8, 9))
    assert out.shape == (3, 8, 9) and out.dtype == np.int64
    with pytest.raises(RuntimeError, match="a block was computed"):
        out.compute(scheduler="synchronous")
    with pytest.raises(TypeError, match="`logits` must be a dask array or a numpy array"):
        sdask.upsample_argmax(torch.from_numpy(lg), size=4)
    with pytest.raises(TypeError, match="floating-point"):
        sdask.upsample_argmax(lg.astype(np.int16), size=4)
    with pytest.raises(ValueError, match=r"`logits` must be \[B, C, h, w\]"):
        sdask.upsample_argmax(lg[0], size=4)
    with pytest.raises(ValueError, match="exactly one of size or scale_factor"):
        sdask.upsample_argmax(lg, size=4, scale_factor=2)
    with pytest.raises(ValueError, match="num_threads"):
        sdask.upsample_argmax(lg, size=4, num_threads=0)
    with pytest.raises(ValueError, match="must not be empty"):
        sdask.upsample_argmax(lg[:, :0], size=4)


# --------------------------------------------------------------------------- dense_crf

def _crf_inputs(rng, B, C, spatial, K=3):
    """Logits from a blurred noisy one-hot of blobs, and an image that follows the blobs."""
    from scipy.ndimage import gaussian_filter
    seg = _smooth(rng, (B, C) + spatial, 3.0).argmax(1)
    onehot = (seg[:, None] == np.arange(C)[None, :, *([None] * len(spatial))]).astype(np.float32)
    logits = 3 * (gaussian_filter(onehot, [0, 0] + [1.5] * len(spatial))
                  + rng.normal(0, 0.5, onehot.shape)).astype(np.float32)
    palette = rng.integers(0, 256, (C, K))
    image = np.moveaxis(palette[seg], -1, 1) + rng.normal(0, 12, (B, K) + spatial)
    return logits, np.clip(image, 0, 255).astype(np.uint8)


SMALL_CRF = dict(gaussian_sxy=2, bilateral_sxy=6, bilateral_srgb=13, iterations=4)


def test_dense_crf_batch_exact(scheduler, rng):
    logits, image = _crf_inputs(rng, 6, 4, (64, 80))
    out = sdask.dense_crf(da.from_array(logits, chunks=(2, 2, 64, 80)), image, num_threads=1,
                          **SMALL_CRF)
    assert out.dtype == np.float32 and out.shape == logits.shape
    np.testing.assert_array_equal(compute(out, scheduler), segengine.dense_crf(logits, image, **SMALL_CRF))


@pytest.mark.parametrize("batch_chunks", BATCH_CHUNKS)
def test_dense_crf_batch_chunkings(batch_chunks, rng):
    logits, image = _crf_inputs(rng, 6, 3, (31, 37))
    image = image.astype(np.float64)
    out = sdask.dense_crf(da.from_array(logits, chunks=(batch_chunks, 3, 31, 37)),
                          da.from_array(image, chunks=(3, 1, 31, 37)), normalization="after",
                          gaussian_compat=np.array([-1.0, -2.0, -3.0]), **SMALL_CRF)
    ref = segengine.dense_crf(logits, image, normalization="after",
                              gaussian_compat=np.array([-1.0, -2.0, -3.0]), **SMALL_CRF)
    np.testing.assert_array_equal(out.compute(scheduler="threads"), ref)


@pytest.mark.parametrize("tile, out_chunks", [((32, 40), ((32, 32), (40, 40))),
                                              ((22, 27), ((22, 22, 20), (27, 27, 26))),
                                              ((30, 80), ((30, 34), (80,)))])   # 4-px chunk merged
def test_dense_crf_tiles_2d(tile, out_chunks, rng):
    """One image in spatial tiles: default halo 3 * bilateral_sxy = 18 px."""
    logits, image = _crf_inputs(rng, 2, 4, (64, 80))
    ref = segengine.dense_crf(logits, image, **SMALL_CRF).argmax(1)
    out = sdask.dense_crf(da.from_array(logits, chunks=(1, 4) + tile), image, **SMALL_CRF)
    assert out.chunks[2:] == out_chunks
    q = out.compute(scheduler="threads")
    np.testing.assert_allclose(q.sum(1), 1, atol=1e-5)
    assert (q.argmax(1) == ref).mean() >= 0.995
    # an explicit depth equal to the rule gives the same graph result
    same = sdask.dense_crf(da.from_array(logits, chunks=(1, 4) + tile), image, depth=18, **SMALL_CRF)
    np.testing.assert_array_equal(same.compute(scheduler="synchronous"), q)
    # without a halo the tiles disagree more
    bare = sdask.dense_crf(da.from_array(logits, chunks=(1, 4) + tile), image, depth=0, **SMALL_CRF)
    assert (bare.compute(scheduler="threads").argmax(1) == ref).mean() < (q.argmax(1) == ref).mean()


def test_dense_crf_tiles_3d_spacing(rng):
    """A volume [1, C, D, H, W] in 3-D tiles; spacing (2, 1, 1) halves the halo along D."""
    logits, image = _crf_inputs(rng, 1, 3, (12, 24, 28), K=1)
    kw = dict(gaussian_sxy=2, bilateral_sxy=4, bilateral_srgb=13, iterations=3, spacing=(2.0, 1.0, 1.0))
    from segengine.dask._crf import default_crf_depth
    assert default_crf_depth(3, gaussian_sxy=2, bilateral_sxy=4, spacing=(2.0, 1.0, 1.0)) == (6, 12, 12)
    ref = segengine.dense_crf(logits, image, **kw).argmax(1)
    out = sdask.dense_crf(da.from_array(logits, chunks=(1, 3, 6, 12, 14)), image, **kw)
    assert (out.compute(scheduler="threads").argmax(1) == ref).mean() >= 0.995


@pytest.mark.parametrize("name, tile, C", [("astronaut", (256, 256), 5), ("coffee", (400, 300), 5),
                                           ("astronaut", (256, 256), 21)])
def test_dense_crf_realistic_agreement(name, tile, C):
    """A natural image, C intensity classes, logits a blurred noisy one-hot, pydensecrf's
    default kernels (halo 3 * 80 = 240 px), spatial tiles: argmax agreement with the whole
    image (measured 0.99954 / 0.99990 / 0.99886; before the tiles' lattices were put on the
    global coordinates: 0.99757 / 0.99762 / 0.9909)."""
    from scipy.ndimage import gaussian_filter
    skdata = pytest.importorskip("skimage.data")
    from skimage.color import rgb2gray
    img = getattr(skdata, name)()
    gray = rgb2gray(img)
    seg = np.digitize(gray, np.quantile(gray, np.linspace(0, 1, C + 1)[1:-1]))
    onehot = (seg[None] == np.arange(C)[:, None, None]).astype(np.float32)
    rng = np.random.default_rng(0)
    logits = (3 * (gaussian_filter(onehot, (0, 4, 4)) + rng.normal(0, 0.35, onehot.shape)))[None]
    logits = logits.astype(np.float32)
    image = np.ascontiguousarray(img.transpose(2, 0, 1)[None])
    ref = segengine.dense_crf(logits, image).argmax(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # chunks hold the full default halo
        out = sdask.dense_crf(da.from_array(logits, chunks=(1, C) + tile),
                              da.from_array(image, chunks=(1, 3) + tile))
    agree = (out.compute(scheduler="threads").argmax(1) == ref).mean()
    assert (logits.argmax(1) == ref).mean() < 0.8      # the CRF does change the labels
    assert agree >= 0.995, agree


def test_dense_crf_default_depth_rule():
    from segengine.dask._crf import default_crf_depth as rule
    assert rule(2) == (240, 240)                                   # 3 * bilateral_sxy 80
    assert rule(2, bilateral_compat=None) == (9, 9)                # 3 * gaussian_sxy 3
    assert rule(2, bilateral_compat=0, gaussian_compat=None) == (0, 0)
    assert rule(3, gaussian_sxy=5, bilateral_sxy=4, spacing=(4, 0.5, 1)) == (4, 30, 15)


def test_dense_crf_lazy_and_errors(rng):
    logits, image = _crf_inputs(rng, 2, 3, (16, 20))
    out = sdask.dense_crf(_tripwire(logits, (1, 3, 8, 10)), image, depth=3, **SMALL_CRF)
    assert out.shape == logits.shape and out.dtype == np.float32
    with pytest.raises(RuntimeError, match="a block was computed"):
        out.compute(scheduler="synchronous")
    with pytest.raises(TypeError, match="`logits` must be a dask array or a numpy array"):
        sdask.dense_crf(torch.from_numpy(logits), image)
    with pytest.raises(TypeError, match="`image` must be a dask array or a numpy array"):
        sdask.dense_crf(logits, image.tolist())
    with pytest.raises(TypeError, match="floating-point"):
        sdask.dense_crf(logits.astype(np.int32), image)
    with pytest.raises(ValueError, match=r"image must be \[B, K, 16, 20\] with B = 2"):
        sdask.dense_crf(logits, image[:, :, :15])
    with pytest.raises(ValueError, match="at least 2 classes"):
        sdask.dense_crf(logits[:, :1], image)
    with pytest.raises(ValueError, match="normalization must be one of"):
        sdask.dense_crf(logits, image, normalization="sometimes")
    with pytest.raises(ValueError, match="gaussian_compat as a vector must have length C = 3"):
        sdask.dense_crf(logits, image, gaussian_compat=np.ones(4))
    with pytest.raises(ValueError, match="spacing must have 2 values"):
        sdask.dense_crf(logits, image, spacing=(1.0, 1.0, 1.0))
    tiles = da.from_array(logits, chunks=(1, 3, 8, 10))
    with pytest.raises(ValueError, match="is larger than the chunk size"):
        sdask.dense_crf(tiles, image, depth=9, **SMALL_CRF)
    with pytest.raises(ValueError, match="one value per axis"):
        sdask.dense_crf(tiles, image, depth=(2, 2, 2), **SMALL_CRF)
    with pytest.warns(UserWarning, match="default halo of 18 pixels on spatial axis 0 is cut to the chunk size"):
        sdask.dense_crf(tiles, image, **SMALL_CRF)
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # batch chunks only: no halo, no warning
        sdask.dense_crf(da.from_array(logits, chunks=(1, 3, 16, 20)), image, **SMALL_CRF)
    bad = logits.copy()
    bad[1, 0, 3, 3] = np.inf
    with pytest.raises(ValueError, match="logits must be finite"):
        sdask.dense_crf(bad, image, **SMALL_CRF).compute(scheduler="synchronous")


# --------------------------------------------------------------------------- metrics

def _labels(rng, shape, C, ignore=None):
    t = rng.integers(0, C, shape)
    p = np.where(rng.random(shape) < 0.7, t, rng.integers(0, C, shape))
    if ignore is not None:
        t[rng.random(shape) < 0.1] = ignore
    return p, t


def test_confusion_matrix_schedulers(scheduler, rng):
    p, t = _labels(rng, (6, 33, 41), 7, ignore=255)
    cm = sdask.confusion_matrix(da.from_array(p, chunks=(2, 16, 20)), t, 7, ignore_index=255)
    assert cm.shape == (7, 7) and cm.dtype == np.int64
    ref = smetrics.confusion_matrix(p, t, 7, ignore_index=255)
    got = compute(cm, scheduler)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, ref)
    mi = sdask.mean_iou(da.from_array(p, chunks=(2, 16, 20)), t, 7, ignore_index=255)
    assert mi.shape == () and mi.dtype == np.float64
    assert float(compute(mi, scheduler)) == smetrics.mean_iou(p, t, 7, ignore_index=255)


@pytest.mark.parametrize("chunks", [(1, 31, 7), (2, 10, 3), ((2, 3, 1), (5, 26), 7)])
@pytest.mark.parametrize("split_every", [None, 2])
def test_confusion_matrix_chunkings(chunks, split_every, rng):
    p, t = _labels(rng, (6, 31, 7), 4)
    p = p.astype(np.uint8)
    pd = da.from_array(p, chunks=chunks)
    td = da.from_array(t.astype(np.int32), chunks=(3, 31, 4))        # other chunks: matched
    cm = sdask.confusion_matrix(pd, td, 5, split_every=split_every)  # class 4 absent
    ref = smetrics.confusion_matrix(p, t.astype(np.int32), 5)
    np.testing.assert_array_equal(cm.compute(scheduler="threads"), ref)
    assert ref[4].sum() == 0 and ref.sum() == p.size
    mi = sdask.mean_iou(pd, td, 5, split_every=split_every).compute(scheduler="synchronous")
    assert mi == smetrics.mean_iou(p, t.astype(np.int32), 5)


def test_confusion_matrix_is_a_tree(rng):
    """64 blocks summed 4 at a time: no task of the reduction takes all block matrices."""
    p, t = _labels(rng, (16, 32, 32), 3)
    cm = sdask.confusion_matrix(da.from_array(p, chunks=(4, 8, 8)), da.from_array(t, chunks=(4, 8, 8)),
                                3, split_every=4)
    graph = dict(cm.__dask_graph__())
    assert len([k for k in graph if "sum" in str(k)]) > 2
    np.testing.assert_array_equal(cm.compute(scheduler="synchronous"), smetrics.confusion_matrix(p, t, 3))


def test_confusion_matrix_lazy_and_errors(rng):
    p, t = _labels(rng, (4, 10, 12), 3)
    cm = sdask.confusion_matrix(_tripwire(p, (2, 5, 12)), t, 3)
    assert cm.shape == (3, 3)
    with pytest.raises(RuntimeError, match="a block was computed"):
        cm.compute(scheduler="synchronous")
    with pytest.raises(TypeError, match="`pred` must be a dask array or a numpy array"):
        sdask.confusion_matrix(torch.from_numpy(p), t, 3)
    with pytest.raises(TypeError, match="`target` must be a dask array or a numpy array"):
        sdask.confusion_matrix(p, list(t), 3)
    with pytest.raises(TypeError, match="`pred` must hold integer labels"):
        sdask.confusion_matrix(p.astype(np.float32), t, 3)
    with pytest.raises(ValueError, match=r"`target` shape \(4, 10, 11\) does not match `pred` shape"):
        sdask.mean_iou(p, t[..., :11], 3)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        sdask.confusion_matrix(p, t, 0)
    with pytest.raises(TypeError, match="`ignore_index` must be None or an int"):
        sdask.confusion_matrix(p, t, 3, ignore_index=1.5)
    bad = t.copy()
    bad[3, 9, 11] = 3                # out of range: raises when computed
    cm = sdask.confusion_matrix(da.from_array(p, chunks=(2, 5, 6)), bad, 3)
    with pytest.raises(ValueError, match=r"target holds label 3, outside \[0, 3\)"):
        cm.compute(scheduler="synchronous")
    bad[3, 9, 11] = -1               # ignored when it is ignore_index
    got = sdask.confusion_matrix(p, bad, 3, ignore_index=-1).compute(scheduler="synchronous")
    np.testing.assert_array_equal(got, smetrics.confusion_matrix(p, bad, 3, ignore_index=-1))
