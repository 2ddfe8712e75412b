"""segengine.dense_crf: vs the NumPy reference, vs pydensecrf2, quality, volumes, ops, errors."""

import numpy as np
import pytest
import torch

import segengine
from segengine._reference.crf import reference_dense_crf_features, reference_meanfield
from segengine.ops.crf import compat_array

dcrf = pytest.importorskip("pydensecrf.densecrf")
skdata = pytest.importorskip("skimage.data")
sktransform = pytest.importorskip("skimage.transform")


def _image(name, H, W):
    if name == "random":
        return np.random.default_rng(3).integers(0, 256, (H, W, 3), dtype=np.uint8)
    img = getattr(skdata, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    return np.ascontiguousarray((sktransform.resize(img[..., :3], (H, W)) * 255).astype(np.uint8))


def _probs(rng, C, H, W, concentration=0.5):
    return rng.dirichlet(np.full(C, concentration), size=(H, W)).transpose(2, 0, 1).astype(np.float32)


def _pydensecrf(prob, img, iterations, gsxy, gcompat, bsxy, bsrgb, bcompat, norm):
    C, H, W = prob.shape
    code = {"symmetric": dcrf.NORMALIZE_SYMMETRIC, "after": dcrf.NORMALIZE_AFTER,
            "before": dcrf.NORMALIZE_BEFORE, "none": dcrf.NO_NORMALIZATION}[norm]
    d = dcrf.DenseCRF2D(W, H, C)
    U = np.ascontiguousarray(-np.log(np.clip(prob, 1e-5, 1.0)).reshape(C, -1).astype(np.float32))
    d.setUnaryEnergy(U)
    d.addPairwiseGaussian(gsxy, gcompat, normalization=code)
    d.addPairwiseBilateral(bsxy, bsrgb, img, bcompat, normalization=code)
    return np.array(d.inference(iterations)).reshape(C, H, W)


# (image, H, W, C, iterations, gsxy, gcompat, bsxy, bsrgb, bcompat, normalization)
def _cases():
    rng = np.random.default_rng(7)
    cases = [
        ("astronaut", 64, 80, 21, 5, 3, 3, 80, 13, 10, "symmetric"),
        ("coffee", 57, 75, 2, 10, 3, 3, 60, 10, 5, "symmetric"),   # N odd: pydensecrf's SSE padding
        ("chelsea", 60, 72, 5, 5, 2, 4, 50, 20, 8, "after"),
        ("random", 48, 52, 3, 5, 3, 3, 80, 13, 10, "before"),
        ("random", 37, 41, 3, 5, 3, 3, 80, 13, 10, "symmetric"),  # N % 4 = 1
        # no normalisation: K 1 is in the hundreds, so moderate weights keep mean field stable
        ("astronaut", 50, 60, 4, 5, 3, 0.05, 80, 13, 0.02, "none"),
        ("camera", 40, 48, 6, 5, 3, rng.uniform(-3, 1, 6).astype(np.float32), 40, 15,
         rng.uniform(-4, 4, (6, 6)).astype(np.float32), "symmetric"),   # diagonal + matrix compat
        ("random", 36, 44, 4, 3, 2, -np.eye(4, dtype=np.float32) * 3, 30, 20,
         np.array([-5, -1, -2, -8], np.float32), "after"),
    ]
    return cases


@pytest.mark.parametrize("case", _cases(), ids=lambda c: f"{c[0]}-C{c[3]}-{c[10]}")
def test_matches_pydensecrf(case):
    name, H, W, C, it, gsxy, gc, bsxy, bsrgb, bc, norm = case
    rng = np.random.default_rng(H * W + C)
    img = _image(name, H, W)
    prob = _probs(rng, C, H, W)
    expected = _pydensecrf(prob, img, it, gsxy, gc, bsxy, bsrgb, bc, norm)
    got = segengine.dense_crf(prob[None], img.transpose(2, 0, 1)[None], probabilities=True, iterations=it,
                              gaussian_sxy=gsxy, gaussian_compat=gc, bilateral_sxy=bsxy, bilateral_srgb=bsrgb,
                              bilateral_compat=bc, normalization=norm)[0]
    assert got.dtype == np.float32 and got.shape == (C, H, W)
    assert np.abs(got - expected).max() <= 1e-3
    assert (got.argmax(0) == expected.argmax(0)).mean() >= 0.999
    # the CRF did something (so the comparison is not the trivial softmax(-U) one)
    assert np.abs(expected - prob).max() > 0.05


_CHILD_CRF = """
import sys, numpy as np, torch, segengine
from segengine._reference.crf import reference_dense_crf_features, reference_meanfield
from segengine.ops.crf import compat_array
rng = np.random.default_rng(5)
H, W, C = 23, 31, 21
img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
prob = rng.dirichlet(np.full(C, 0.5), size=(H, W)).transpose(2, 0, 1).astype(np.float32)
got = segengine.dense_crf(torch.from_numpy(prob[None]), torch.from_numpy(img.transpose(2, 0, 1)[None]),
                          probabilities=True, iterations=5, bilateral_sxy=10)[0].numpy()
g, b = reference_dense_crf_features(img, 3, 10, 13)
U = -np.log(np.clip(prob, 1e-5, 1)).reshape(C, -1).T
ref = reference_meanfield(U, [(g, compat_array(3, C, "g"), "symmetric"),
                              (b, compat_array(10, C, "b"), "symmetric")], 5)
np.save(sys.argv[1], np.stack([got.reshape(C, -1).T, ref]))
from segengine._cy import _runtime
print(int(_runtime.build_facts()["run_time"]["avx2_fma"]))
"""


def test_baseline_and_fma_builds_agree(tmp_path):
    """The update passes and the unary conversion have an AVX2+FMA build chosen at run time;
    SEGENGINE_CPU_CAPABILITY=default makes a process take the baseline build instead (each
    child reports which it took). Both agree with the reference and with each other within
    float rounding (21 labels: the register-held update of 3 label vectors)."""
    import os
    import subprocess
    import sys
    from segengine._cy import _runtime
    out, took = {}, {}
    for name, cap in (("fma", None), ("default", "default")):
        env = {k: v for k, v in os.environ.items() if k != "SEGENGINE_CPU_CAPABILITY"}
        if cap:
            env["SEGENGINE_CPU_CAPABILITY"] = cap
        path = tmp_path / f"{name}.npy"
        run = subprocess.run([sys.executable, "-c", _CHILD_CRF, str(path)], env=env, check=True, timeout=300,
                             capture_output=True, text=True)
        took[name] = run.stdout.strip().splitlines()[-1] == "1"
        got, ref = np.load(path)
        np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)  # both measured 2.6e-6
        out[name] = got
    assert np.abs(out["fma"] - out["default"]).max() <= 1e-5
    assert not took["default"]
    f = _runtime.build_facts()
    assert took["fma"] == (f["cpu"].get("avx2", False) and f["cpu"].get("fma", False)
                           and any("dense CRF update passes" in d for d in f["dispatch"]))


def test_matches_reference_meanfield(rng):
    H, W, C = 14, 17, 4
    img = _image("astronaut", H, W)
    prob = _probs(rng, C, H, W)
    matrix = rng.uniform(-3, 3, (C, C)).astype(np.float32)
    for gc, bc, norm in ((3, 10, "symmetric"), (np.array([-1, -2, -3, -4], np.float32), matrix, "after")):
        got = segengine.dense_crf(torch.from_numpy(prob[None]), torch.from_numpy(img.transpose(2, 0, 1)[None]),
                                  probabilities=True, iterations=3, gaussian_compat=gc, bilateral_compat=bc,
                                  bilateral_sxy=10, normalization=norm)
        assert isinstance(got, torch.Tensor)
        g, b = reference_dense_crf_features(img, 3, 10, 13)
        U = -np.log(np.clip(prob, 1e-5, 1)).reshape(C, -1).T
        ref = reference_meanfield(U, [(g, compat_array(gc, C, "g"), norm), (b, compat_array(bc, C, "b"), norm)], 3)
        np.testing.assert_allclose(got[0].reshape(C, -1).T.numpy(), ref, atol=2e-6, rtol=0)


@pytest.mark.parametrize("C", [9, 37, 40, 67])
@pytest.mark.parametrize("probabilities", [False, True])
def test_many_classes_match_reference(rng, C, probabilities):
    """More than 32 classes: the unary is converted in groups of 32 channels and written out
    8 points by 8 channels through a register transpose (csrc/cpu/crf.cpp unary_rows_impl),
    padding included; 9 x 11 points end each block in a scalar tail."""
    H, W = 9, 11
    img = _image("astronaut", H, W)
    logits = rng.normal(0, 2, (C, H, W)).astype(np.float32)
    if probabilities:
        x = np.exp(logits - logits.max(0))
        x = (x / x.sum(0)).astype(np.float32)
        U = -np.log(np.clip(x, 1e-5, 1)).reshape(C, -1).T
    else:
        x = logits
        U = -logits.reshape(C, -1).T
    got = segengine.dense_crf(x[None], img.transpose(2, 0, 1)[None], probabilities=probabilities, iterations=2,
                              bilateral_sxy=10)
    g, b = reference_dense_crf_features(img, 3, 10, 13)
    ref = reference_meanfield(U.astype(np.float64), [(g, compat_array(3, C, "g"), "symmetric"),
                                                     (b, compat_array(10, C, "b"), "symmetric")], 2)
    np.testing.assert_allclose(got[0].reshape(C, -1).T, ref, atol=2e-6, rtol=0)


def test_logits_and_probabilities_agree(rng):
    H, W, C = 20, 24, 3
    logits = torch.randn(2, C, H, W) * 2
    img = torch.randint(0, 256, (2, 3, H, W), dtype=torch.uint8)
    a = segengine.dense_crf(logits, img)
    b = segengine.dense_crf(torch.softmax(logits, 1), img, probabilities=True)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
    torch.testing.assert_close(a.sum(1), torch.ones(2, H, W), atol=1e-5, rtol=0)
    q0 = segengine.dense_crf(logits, img, iterations=0)
    torch.testing.assert_close(q0, torch.softmax(logits, 1), atol=1e-6, rtol=0)
    # probabilities: Q0 = softmax(log(clip(p, 1e-5, 1))) (the C++ log and clip)
    p = torch.softmax(logits * 3, 1)
    clipped = p.clamp(1e-5, 1.0)
    q0 = segengine.dense_crf(p, img, probabilities=True, iterations=0)
    torch.testing.assert_close(q0, clipped / clipped.sum(1, keepdim=True), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("threads", [2, 5])
def test_batch_equals_single_images(seed, threads):
    # exactly: an image's points are cut into parts by its own size, whatever the batch. The
    # batch runs in chunks of images (small images: 1 part each, chunks of max(4, threads);
    # 97x101: 2 parts, chunks of 2 or 3), the Gaussian features passed once for all; N % 4
    # != 0 adds pydensecrf's ghost point, 16x20 does not
    H, W, C = [(18, 21, 5), (16, 20, 3), (97, 101, 4)][seed % 3]
    B = 6 if seed < 3 else 3
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, C, H, W, generator=g)
    img = torch.rand(B, 3, H, W, generator=g) * 255  # float image in 0..255
    batched = segengine.dense_crf(logits, img, num_threads=threads)
    for b in range(B):
        single = segengine.dense_crf(logits[b:b + 1], img[b:b + 1], num_threads=1)
        assert torch.equal(batched[b:b + 1], single)


@pytest.mark.parametrize("shared", [False, True])
def test_op_batch_runs_in_chunks(shared):
    # the op itself (as torch.compile calls it) holds every image's features; its CPU kernel
    # cuts the batch into chunks (4 images of 378 points with 2 threads, then 2); the Gaussian
    # kernel's features may be one image's broadcast over the batch (stride 0)
    from segengine.ops import crf as crf_ops
    from segengine.ops import lattice as lattice_ops
    from segengine._cy import _lattice
    B, C, H, W = 6, 4, 18, 21
    assert _lattice.crf_chunk_images(H * W, 2) == 4 and _lattice.crf_chunk_images(97 * 101, 2) == 2
    g = torch.Generator().manual_seed(7)
    unary = torch.rand(B, C, H * W, generator=g) * 3
    img = torch.rand(B, 3, H, W, generator=g) * 255
    gauss = lattice_ops.point_features(1, (H, W), (3.0, 3.0)).reshape(1, 2, -1).expand(B, -1, -1)
    if not shared:
        gauss = gauss.contiguous()
    bil = lattice_ops.point_features(B, (H, W), (20.0, 20.0), img, (13.0,) * 3).reshape(B, 5, -1)
    compats = [torch.full((C,), -3.0), torch.full((C,), -5.0)]
    got = crf_ops._dense_crf_op(unary, [gauss, bil], compats, [3, 3], 3, 2)
    for b in range(B):
        one = crf_ops._dense_crf_op(unary[b:b + 1], [gauss[b:b + 1], bil[b:b + 1]], compats, [3, 3], 3, 1)
        assert torch.equal(got[b:b + 1], one)


def _unfused_meanfield(unary, features, compats, norm, iterations):
    """Mean field with torch ops over the lattice filter op (gather/scatter splat, separate
    blur and slice): an implementation independent of the fused C++ update pass."""
    from segengine.ops import _crf_cuda
    from segengine.ops import lattice as lattice_ops
    B, C, N = unary.shape
    lats = [lattice_ops._lattice_build_op(f, 1, N % 4 != 0) for f in features]

    def filt(values, lat, pre, post):
        v = values if pre is None else values * pre[:, None]
        out = lattice_ops._lattice_filter_op(v.contiguous(), *lat[:6], False, 1)
        return out if post is None else out * post[:, None]

    upm = unary.transpose(1, 2).reshape(B * N, C).contiguous()
    q = _crf_cuda.meanfield_torch(upm, lats, [norm] * len(lats), compats, iterations, filt)
    return q.reshape(B, N, C).transpose(1, 2)


@pytest.mark.parametrize("C, norm, swap", [(3, 3, False), (21, 3, False), (37, 2, False), (9, 0, False),
                                           (29, 1, False), (21, 3, True)])
def test_fused_meanfield_matches_unfused(rng, C, norm, swap):
    """Images large enough to be cut into several parts (private splat buffers, reduced in
    part order), batch 2, every padding of C to whole 8-lane vectors, both compat kinds.
    The Gaussian (d = 2) then bilateral (d = 5) pair has an update compiled for it; swap puts
    the bilateral first, which takes the general update."""
    from segengine.ops import crf as crf_ops
    from segengine.ops import lattice as lattice_ops
    B, H, W = 2, 131, 127
    logits = torch.from_numpy(rng.standard_normal((B, C, H, W)).astype(np.float32) * 2)
    img = torch.from_numpy(np.stack([_image("astronaut", H, W), _image("random", H, W)]).transpose(0, 3, 1, 2))
    g = lattice_ops.point_features(B, (H, W), (3.0, 3.0)).reshape(B, 2, -1)
    b = lattice_ops.point_features(B, (H, W), (40.0, 40.0), img, (13.0,) * 3).reshape(B, 5, -1)
    w = 0.02 if norm == 0 else 1.0  # unnormalised kernels sum to hundreds
    compats = [torch.full((C,), -3.0 * w),
               torch.from_numpy(crf_ops.compat_array(rng.uniform(-4, 1, (C, C)) * w, C, "m"))]
    unary = -torch.log_softmax(logits.reshape(B, C, -1), 1)
    feats = [b, g] if swap else [g, b]
    compats = compats[::-1] if swap else compats
    got = crf_ops._dense_crf_op(unary.contiguous(), feats, compats, [norm, norm], 4, 2)
    ref = _unfused_meanfield(unary, feats, compats, norm, 4)
    torch.testing.assert_close(got, ref, atol=2e-5, rtol=0)
    for threads in (1, 3):  # bitwise the same for any thread count
        assert torch.equal(crf_ops._dense_crf_op(unary.contiguous(), feats, compats, [norm, norm], 4, threads),
                           got)


def test_other_channel_counts_and_volumes(rng):
    # one-channel image (K = 1), 7 channels (K = 7)
    for K in (1, 7):
        q = segengine.dense_crf(torch.randn(1, 3, 12, 13), torch.rand(1, K, 12, 13) * 255)
        assert q.shape == (1, 3, 12, 13)
    # 3-D volume with anisotropic spacing vs the reference
    D, H, W, C = 4, 6, 7, 3
    logits = rng.standard_normal((1, C, D, H, W)).astype(np.float32)
    vol = rng.integers(0, 256, (1, 1, D, H, W)).astype(np.uint8)
    spacing = (3.0, 1.0, 0.5)
    got = segengine.dense_crf(logits, vol, iterations=2, gaussian_sxy=2, bilateral_sxy=4, bilateral_srgb=30,
                              spacing=spacing)
    assert isinstance(got, np.ndarray) and got.shape == (1, C, D, H, W)
    zz, yy, xx = np.meshgrid(np.arange(D), np.arange(H), np.arange(W), indexing="ij")
    coords = [xx.reshape(-1).astype(np.float32) * np.float32(0.5), yy.reshape(-1).astype(np.float32),
              zz.reshape(-1).astype(np.float32) * np.float32(3.0)]
    g = np.stack([c / np.float32(2) for c in coords])
    b = np.concatenate([np.stack([c / np.float32(4) for c in coords]),
                        vol.reshape(1, -1).astype(np.float32) / np.float32(30)])
    U = -torch.log_softmax(torch.from_numpy(logits), 1).reshape(C, -1).T.numpy()
    ref = reference_meanfield(U, [(g, compat_array(3, C, ""), "symmetric"),
                                  (b, compat_array(10, C, ""), "symmetric")], 2)
    np.testing.assert_allclose(got[0].reshape(C, -1).T, ref, atol=2e-6, rtol=0)
    # spacing matters
    other = segengine.dense_crf(logits, vol, iterations=2, gaussian_sxy=2, bilateral_sxy=4, bilateral_srgb=30)
    assert np.abs(other - got).max() > 1e-3


def _scene(rng, H=64, W=64, C=4):
    """Rectangles and discs of C classes, each with its own colour, plus pixel noise."""
    labels = np.zeros((H, W), np.int64)
    yy, xx = np.mgrid[0:H, 0:W]
    labels[8:30, 6:40] = 1
    labels[((yy - 44) ** 2 + (xx - 44) ** 2) < 14 ** 2] = 2
    labels[36:58, 4:22] = 3
    colours = np.array([[30, 30, 30], [200, 40, 40], [40, 200, 60], [50, 60, 210]], np.float32)
    img = np.clip(colours[labels] + rng.normal(0, 12, (H, W, 3)), 0, 255).astype(np.uint8)
    onehot = np.eye(C, dtype=np.float32)[labels].transpose(2, 0, 1)
    blurred = torch.nn.functional.avg_pool2d(torch.from_numpy(onehot)[None], 9, 1, 4, count_include_pad=False)[0]
    logits = 2.0 * blurred.numpy() + rng.normal(0, 0.9, (C, H, W)).astype(np.float32)
    return labels, img, logits


def _miou(pred, gt, C):
    ious = []
    for c in range(C):
        inter = np.sum((pred == c) & (gt == c))
        union = np.sum((pred == c) | (gt == c))
        if union:
            ious.append(inter / union)
    return float(np.mean(ious))


def test_quality_raises_mean_iou(rng):
    labels, img, logits = _scene(rng)
    before = _miou(logits.argmax(0), labels, 4)
    Q = segengine.dense_crf(logits[None], img.transpose(2, 0, 1)[None], iterations=5,
                            bilateral_sxy=20, bilateral_srgb=20)
    after = _miou(Q[0].argmax(0), labels, 4)
    assert before < 0.8
    assert after > before + 0.1, (before, after)


def test_opcheck_and_compile(rng):
    unary = torch.rand(1, 3, 30)
    feats = [torch.rand(1, 2, 30) * 3, torch.rand(1, 5, 30) * 3]
    compats = [torch.full((3,), -3.0), torch.rand(3, 3)]
    torch.library.opcheck(torch.ops.segengine.dense_crf.default, (unary, feats, compats, [3, 2], 2, 1))
    fn = torch.compile(lambda l, i: segengine.dense_crf(l, i, iterations=2), backend="aot_eager")
    logits = torch.randn(1, 3, 10, 11)
    img = torch.randint(0, 256, (1, 3, 10, 11), dtype=torch.uint8)
    torch.testing.assert_close(fn(logits, img), segengine.dense_crf(logits, img, iterations=2))


def test_bad_inputs():
    logits = torch.randn(1, 3, 8, 9)
    img = torch.randint(0, 256, (1, 3, 8, 9), dtype=torch.uint8)
    for bad in (0, -1.0, float("nan"), float("inf"), 1e-40 * 0):
        with pytest.raises(ValueError, match="bilateral_srgb"):
            segengine.dense_crf(logits, img, bilateral_srgb=bad)
        with pytest.raises(ValueError, match="bilateral_sxy"):
            segengine.dense_crf(logits, img, bilateral_sxy=bad)
        with pytest.raises(ValueError, match="gaussian_sxy"):
            segengine.dense_crf(logits, img, gaussian_sxy=bad)
    with pytest.raises(ValueError, match="bilateral_srgb"):
        segengine.dense_crf(logits, img, bilateral_srgb=(13, 13))
    nan = logits.clone()
    nan[0, 1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        segengine.dense_crf(nan, img)
    inf = logits.clone()
    inf[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="finite"):
        segengine.dense_crf(inf, img)
    with pytest.raises(ValueError, match="C >= 2"):
        segengine.dense_crf(logits[:, :1], img)
    with pytest.raises(ValueError, match="image must be"):
        segengine.dense_crf(logits, img[..., :-1])
    with pytest.raises(ValueError, match="image must be"):
        segengine.dense_crf(torch.randn(2, 3, 8, 9), img)
    with pytest.raises(TypeError, match="floating-point"):
        segengine.dense_crf(torch.zeros(1, 3, 8, 9, dtype=torch.int64), img)
    with pytest.raises(TypeError, match="logits"):
        segengine.dense_crf([[0.0]], img)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        segengine.dense_crf(torch.randn(3, 8, 9), img[0])
    with pytest.raises(ValueError, match="length C = 3"):
        segengine.dense_crf(logits, img, gaussian_compat=np.ones(4))
    with pytest.raises(ValueError, match="3x3"):
        segengine.dense_crf(logits, img, bilateral_compat=np.ones((3, 4)))
    with pytest.raises(ValueError, match="finite"):
        segengine.dense_crf(logits, img, bilateral_compat=np.array([1, np.nan, 1]))
    with pytest.raises(ValueError, match="spacing"):
        segengine.dense_crf(logits, img, spacing=(1, 1, 1))
    with pytest.raises(ValueError, match="spacing"):
        segengine.dense_crf(logits, img, spacing=(1, 0))
    with pytest.raises(ValueError, match="normalization"):
        segengine.dense_crf(logits, img, normalization="l2")
    with pytest.raises(ValueError, match="iterations"):
        segengine.dense_crf(logits, img, iterations=-1)
    with pytest.raises(ValueError, match="probabilities"):
        segengine.dense_crf(logits, img, probabilities=True)
    with pytest.raises(ValueError, match="channels"):
        segengine.dense_crf(logits, torch.zeros(1, 15, 8, 9))
    with pytest.raises(ValueError, match="finite"):
        segengine.dense_crf(logits, torch.full((1, 3, 8, 9), float("nan")))


def test_degenerate_sizes():
    assert segengine.dense_crf(torch.randn(0, 3, 4, 5), torch.zeros(0, 3, 4, 5)).shape == (0, 3, 4, 5)
    assert segengine.dense_crf(torch.randn(1, 3, 0, 5), torch.zeros(1, 3, 0, 5)).shape == (1, 3, 0, 5)
    q = segengine.dense_crf(torch.randn(1, 2, 1, 1), torch.zeros(1, 3, 1, 1))
    torch.testing.assert_close(q.sum(1), torch.ones(1, 1, 1))


@pytest.mark.parametrize("kind", ["logits", "probabilities"])
def test_unary_kinds_torch_conversion_matches_cpp(rng, kind):
    """The torch conversion used on CUDA (ops._crf_cuda.unary_energy) gives the C++ path's result."""
    from segengine._codes import UnaryKind
    from segengine.ops import _crf_cuda
    from segengine.ops import crf as crf_ops
    from segengine.ops import lattice as lattice_ops
    B, C, H, W = 2, 5, 23, 29
    x = torch.from_numpy(rng.standard_normal((B, C, H * W)).astype(np.float32) * 3)
    code = UnaryKind.LOGITS
    if kind == "probabilities":
        x = torch.softmax(x, 1)
        x[0, 0, :5] = 0.0  # clipped at 1e-5
        code = UnaryKind.PROBABILITIES
    g = lattice_ops.point_features(B, (H, W), (3.0, 3.0)).reshape(B, 2, -1)
    compats = [torch.full((C,), -3.0)]
    direct = crf_ops._dense_crf_op(x, [g], compats, [3], 3, 1, True, code)
    via_energy = crf_ops._dense_crf_op(_crf_cuda.unary_energy(x, code).contiguous(), [g], compats, [3], 3, 1)
    torch.testing.assert_close(direct, via_energy, atol=2e-6, rtol=0)
    bad = x.clone()
    bad[1, 2, 7] = float("nan")
    with pytest.raises(ValueError, match="finite" if kind == "logits" else "probabilities"):
        crf_ops._dense_crf_op(bad, [g], compats, [3], 3, 1, True, code)
    with pytest.raises(ValueError, match="finite"):
        _crf_cuda.unary_energy(bad, code)


@pytest.mark.parametrize("value", [-0.01, 1.002, float("nan"), float("inf")])
@pytest.mark.parametrize("at", [0, 7, 255, 256 + 8 * 9 + 3, 23 * 29 - 1])
def test_probabilities_out_of_range_found_anywhere(value, at):
    """The probability check sees a bad value wherever it sits: in any lane of the 8-lane
    conversion, in a block's scalar tail (23*29 points: the last block of 256 ends in 3 such
    points), in either channel; values up to 1.001 pass (pydensecrf's inputs round)."""
    rng = np.random.default_rng(at)
    p = torch.softmax(torch.from_numpy(rng.standard_normal((1, 3, 23 * 29)).astype(np.float32)), 1)
    img = torch.zeros(1, 3, 23, 29)
    ok = p.clone()
    ok[0, 2, at] = 1.001
    segengine.dense_crf(ok.reshape(1, 3, 23, 29), img, probabilities=True)
    bad = p.clone()
    bad[0, 2, at] = value
    with pytest.raises(ValueError, match="probabilities must lie in"):
        segengine.dense_crf(bad.reshape(1, 3, 23, 29), img, probabilities=True)


@pytest.mark.parametrize("kind", ["probabilities", "logits"])
def test_bad_value_in_a_later_chunk_raises(kind):
    # the batch runs in chunks (4 images of 378 points with 2 threads): a bad value in the
    # last chunk's image still raises, and the op path checks it the same way
    from segengine.ops import crf as crf_ops
    B, C, H, W = 6, 3, 18, 21
    x = torch.softmax(torch.randn(B, C, H, W, generator=torch.Generator().manual_seed(2)), 1)
    x[5, 1, 7, 3] = 1.5 if kind == "probabilities" else float("nan")
    img = torch.zeros(B, 3, H, W)
    match = "probabilities must lie in" if kind == "probabilities" else "must be finite"
    with pytest.raises(ValueError, match=match):
        segengine.dense_crf(x, img, probabilities=kind == "probabilities", num_threads=2)
    from segengine._codes import UnaryKind
    code = int(UnaryKind.PROBABILITIES if kind == "probabilities" else UnaryKind.LOGITS)
    feats = [torch.rand(B, 2, H * W), torch.rand(B, 5, H * W)]
    with pytest.raises(ValueError, match=match):
        crf_ops._dense_crf_op(x.reshape(B, C, -1), feats, [torch.full((C,), -3.0)] * 2, [3, 3], 2, 2, True, code)


def test_origin_places_a_tile_on_the_whole_images_lattice():
    """origin shifts the coordinates: origin=0 is the default; a tile given its position
    gets the whole image's lattice vertices, so its result near the tile's centre matches
    the whole image's far better than the same tile at the default origin."""
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 1, (1, 4, 48, 64)).astype(np.float32)
    image = rng.integers(0, 255, (1, 3, 48, 64)).astype(np.uint8)
    kw = dict(gaussian_sxy=3, bilateral_sxy=5, bilateral_srgb=20, iterations=3)
    whole = segengine.dense_crf(logits, image, **kw)
    np.testing.assert_array_equal(segengine.dense_crf(logits, image, origin=(0, 0), **kw), whole)
    tile = (slice(None), slice(None), slice(7, 40), slice(9, 60))
    at = segengine.dense_crf(logits[tile], image[tile], origin=(7, 9), **kw)
    off = segengine.dense_crf(logits[tile], image[tile], **kw)
    centre = (slice(None), slice(None), slice(15, 25), slice(20, 40))
    err_at = np.abs(at[:, :, 8:18, 11:31] - whole[centre]).max()
    err_off = np.abs(off[:, :, 8:18, 11:31] - whole[centre]).max()
    assert err_at < err_off / 3, (err_at, err_off)
    with pytest.raises(ValueError, match="origin"):
        segengine.dense_crf(logits, image, origin=(1,), **kw)
    with pytest.raises(ValueError, match="origin"):
        segengine.dense_crf(logits, image, origin=(1.5, 0), **kw)
