"""Permutohedral lattice: vs the NumPy reference, brute-force Gaussian, adjointness, ops, errors."""

import numpy as np
import pytest
import torch

import segengine
from segengine._reference.lattice import ReferenceLattice, brute_force_gaussian
from segengine.ops import lattice as lattice_ops


def _features(rng, B, d, n, spread=3.0):
    return (rng.random((B, d, n)) * spread).astype(np.float32)


@pytest.mark.parametrize("d", [1, 2, 3, 5, 9, 16])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_reference(rng, d, dtype):
    B, n, C = 2, 150, 3
    f = _features(rng, B, d, n)
    v = rng.standard_normal((B, C, n)).astype(dtype)
    lat = segengine.PermutohedralLattice(f)
    out = lat.filter(v)
    adj = lat.adjoint(v)
    assert isinstance(out, np.ndarray) and out.dtype == dtype and out.shape == v.shape
    for b in range(B):
        ref = ReferenceLattice(f[b])
        assert lat.batch_vertices[b].item() == ref.num_vertices
        tol = 2e-5 if dtype == np.float32 else 1e-12
        scale = np.abs(ref.filter(v[b].T)).max()
        np.testing.assert_allclose(out[b].T, ref.filter(v[b].T), atol=tol * scale, rtol=0)
        np.testing.assert_allclose(adj[b].T, ref.filter(v[b].T, reverse=True), atol=tol * scale, rtol=0)
    assert lat.num_vertices == sum(ReferenceLattice(f[b]).num_vertices for b in range(B))


def test_pydensecrf_padding_matches_reference(rng):
    """pydensecrf's SSE padding: the all-zero point's vertices exist (and relay the blur)."""
    f = _features(rng, 2, 5, 103, spread=2.0)
    v = rng.standard_normal((2, 2, 103)).astype(np.float32)
    lat = segengine.PermutohedralLattice(f, pydensecrf_padding=True)
    plain = segengine.PermutohedralLattice(f)
    assert lat.num_vertices > plain.num_vertices
    out = lat.filter(v)
    for b in range(2):
        ref = ReferenceLattice(f[b], ghost_origin=True)
        assert lat.batch_vertices[b].item() == ref.num_vertices
        np.testing.assert_allclose(out[b].T, ref.filter(v[b].T), atol=2e-5 * np.abs(out).max(), rtol=0)
    assert np.abs(out - plain.filter(v)).max() > 1e-4
    # no padding when N is a multiple of 4
    assert segengine.PermutohedralLattice(f[:, :, :100], pydensecrf_padding=True).num_vertices == \
        segengine.PermutohedralLattice(f[:, :, :100]).num_vertices


def test_reference_is_not_trivially_equal(rng):
    """The comparison above can fail: a lattice of other features gives another answer."""
    f = _features(rng, 1, 3, 100)
    v = rng.standard_normal((1, 2, 100)).astype(np.float32)
    out = segengine.PermutohedralLattice(f * 1.5).filter(v)
    ref = ReferenceLattice(f[0]).filter(v[0].T)
    assert np.abs(out[0].T - ref).max() > 1e-2


def test_lattice_tensors_are_consistent(rng):
    f = torch.from_numpy(_features(rng, 2, 4, 80))
    lat = segengine.PermutohedralLattice(f)
    P, D1 = lat.offsets.shape
    M = lat.num_vertices
    assert P == 160 and D1 == 5
    assert lat.offsets.dtype == torch.int32 and lat.weights.dtype == torch.float32
    assert lat.neighbors.shape == (5, M, 2)
    assert lat.offsets.min() >= 0 and lat.offsets.max() < M
    torch.testing.assert_close(lat.weights.sum(1), torch.ones(P), atol=1e-5, rtol=0)
    assert (lat.weights >= -1e-6).all()
    # CSR is the transpose of (offsets, weights)
    assert lat.splat_ptr[0] == 0 and lat.splat_ptr[-1] == P * D1
    dense = torch.zeros(M, P, dtype=torch.float64)
    rows = torch.repeat_interleave(torch.arange(M), lat.splat_ptr.diff())
    dense[rows, lat.splat_pt.long()] += lat.splat_w.double()
    dense2 = torch.zeros(M, P, dtype=torch.float64)
    dense2[lat.offsets.long().reshape(-1), torch.arange(P).repeat_interleave(D1)] += lat.weights.reshape(-1).double()
    torch.testing.assert_close(dense, dense2)
    # blur neighbours are symmetric: n2 of n1(v) is v
    nb = lat.neighbors.long()
    for j in range(5):
        has = nb[j, :, 0] >= 0
        back = nb[j, nb[j, has, 0], 1]
        assert torch.equal(back, torch.arange(M)[has])
    # vertices never mix images
    img_of_vertex = torch.full((M,), -1)
    img_of_vertex[lat.offsets.long().reshape(-1)] = torch.arange(P).repeat_interleave(D1) // 80
    assert (img_of_vertex >= 0).all()
    assert torch.bincount(img_of_vertex, minlength=2).tolist() == lat.batch_vertices.tolist()


@pytest.mark.parametrize("d", [1, 2, 3, 5, 6, 7])
@pytest.mark.parametrize("padding", [False, True])
def test_simplices_equal_reference_bit_for_bit(rng, d, padding):
    """The CPU build computes the simplices of eight points at a time for d = 2, 3, 5 and 6
    (csrc/cpu/lattice_point8.h) and one at a time otherwise and at the end of each image:
    every weight must equal the float32 reference's bit for bit and every vertex id its
    first-appearance id, on points with ties in the ranks (integers), negative coordinates,
    a run of identical points, and images whose length is not a multiple of 8."""
    B, n, D1 = 2, 1003, d + 1
    f = _features(rng, B, d, n, spread=20.0) - 10.0
    f[:, :, ::7] = np.round(f[:, :, ::7])
    f[0, :, 100:140] = 0.0
    lat = segengine.PermutohedralLattice(f, num_threads=1, pydensecrf_padding=padding)
    w = lat.weights.numpy().reshape(B, n, D1)
    o = lat.offsets.numpy().reshape(B, n, D1).astype(np.int64)
    first = 0
    for b in range(B):
        ref = ReferenceLattice(f[b], ghost_origin=padding)
        assert np.array_equal(w[b].view(np.uint32), ref.weights.view(np.uint32))
        assert np.array_equal(o[b] - first, ref.offsets)
        first += ref.num_vertices
    # a point too large in the middle of an eight-point batch
    big = f.copy()
    big[1, d - 1, 517] = 1e8
    with pytest.raises(ValueError, match="too large"):
        segengine.PermutohedralLattice(big, num_threads=1)


def test_simplices_of_the_baseline_path_equal_the_eight_point_path(tmp_path, rng):
    """SEGENGINE_CPU_CAPABILITY=default turns the eight-point simplex code off (it is used only
    with AVX2): a child process builds the same lattice one point at a time, and every
    vertex id, weight and blur neighbour must be the same bit for bit."""
    import os
    import subprocess
    import sys
    f = _features(rng, 2, 5, 2001, spread=20.0)
    np.save(tmp_path / "f.npy", f)
    code = ("import sys, numpy as np, segengine; f = np.load(sys.argv[1]); "
            "lat = segengine.PermutohedralLattice(f, num_threads=1); "
            "np.savez(sys.argv[2], o=lat.offsets.numpy(), w=lat.weights.numpy(), n=lat.neighbors.numpy()); "
            "from segengine._cy import _runtime; print(int(_runtime.build_facts()['run_time']['avx2']))")
    env = dict(os.environ, SEGENGINE_CPU_CAPABILITY="default")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "f.npy"), str(tmp_path / "b.npz")], env=env,
                         check=True, timeout=300, capture_output=True, text=True)
    assert run.stdout.strip().splitlines()[-1] == "0"  # the child computed one simplex at a time
    base = np.load(tmp_path / "b.npz")
    lat = segengine.PermutohedralLattice(f, num_threads=1)
    assert np.array_equal(base["o"], lat.offsets.numpy())
    assert np.array_equal(base["w"].view(np.uint32), lat.weights.numpy().view(np.uint32))
    assert np.array_equal(base["n"], lat.neighbors.numpy())


def test_adjoint_identity_and_gradcheck(rng):
    f = torch.from_numpy(_features(rng, 1, 3, 40))
    lat = segengine.PermutohedralLattice(f)
    v = torch.randn(1, 2, 40, dtype=torch.float64)
    u = torch.randn(1, 2, 40, dtype=torch.float64)
    lhs = (lat.filter(v) * u).sum()
    rhs = (v * lat.adjoint(u)).sum()
    assert abs(lhs - rhs) < 1e-10 * abs(lhs)
    # the forward filter is not symmetric, so the adjoint really is another operator
    assert (lat.filter(v) - lat.adjoint(v)).abs().max() > 1e-6
    x = v.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: lat.filter(t), (x,))
    assert torch.autograd.gradcheck(lambda t: lat.adjoint(t), (x,))


def test_spatial_layout_and_tensors_out(rng):
    f = torch.from_numpy(_features(rng, 2, 2, 6 * 7)).reshape(2, 2, 6, 7)
    lat = segengine.PermutohedralLattice(f)
    v = torch.randn(2, 3, 6, 7)
    out = lat.filter(v)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3, 6, 7)
    flat = lat.filter(v.reshape(2, 3, 42))
    torch.testing.assert_close(out.reshape(2, 3, 42), flat)
    # non-contiguous input
    vt = torch.randn(2, 7, 6, 3).permute(0, 3, 2, 1)
    torch.testing.assert_close(lat.filter(vt), lat.filter(vt.contiguous()))
    assert lat.normalizer().shape == (2, 1, 6, 7)


def test_deterministic_across_threads(rng):
    f = _features(rng, 2, 5, 3000, spread=6.0)
    v = rng.standard_normal((2, 7, 3000)).astype(np.float32)
    a = segengine.PermutohedralLattice(f, num_threads=1)
    b = segengine.PermutohedralLattice(f, num_threads=2)
    for name in ("offsets", "weights", "neighbors", "splat_ptr", "splat_pt", "splat_w"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.filter(v), b.filter(v))


def test_brute_force_gaussian_bound(rng):
    """Normalised lattice filtering vs the exact Gaussian ``exp(-|f_i - f_j|^2 / 2)``.

    Stated bound, for values in [0, 1] averaged with normalisation "after":
    2-D spatial features (sxy = 2 px): max error <= 0.08, mean error <= 0.01;
    5-D bilateral features on a natural image patch: mean error <= 0.03, max error <= 0.35
    (the lattice is coarse for isolated colours, as in pydensecrf).
    Returning the input unfiltered violates every mean bound (the test has teeth).
    """
    import skimage.data

    H, W = 20, 24
    ys, xs = np.mgrid[0:H, 0:W]
    img = skimage.data.astronaut()[100:100 + 4 * H:4, 180:180 + 4 * W:4].astype(np.float32)
    v = (rng.random((H * W, 2)) < 0.5).astype(np.float64)
    spatial = np.stack([xs.reshape(-1) / 2.0, ys.reshape(-1) / 2.0]).astype(np.float32)
    bilateral = np.concatenate([np.stack([xs.reshape(-1) / 5.0, ys.reshape(-1) / 5.0]),
                                img.reshape(-1, 3).T / 20.0]).astype(np.float32)
    for feats, max_bound, mean_bound in ((spatial, 0.08, 0.01), (bilateral, 0.35, 0.03)):
        exact = brute_force_gaussian(v, feats) / brute_force_gaussian(np.ones((H * W, 1)), feats)
        out = segengine.permutohedral_filter(v.T[None].copy(), feats[None], normalization="after")[0].T
        err = np.abs(out - exact)
        assert err.max() <= max_bound and err.mean() <= mean_bound, (err.max(), err.mean())
        assert np.abs(v - exact).mean() > mean_bound  # the bound has teeth
    # unnormalised: the lattice reproduces the Gaussian up to a global scale of about 1
    ones = np.ones((1, 1, H * W))
    ratio = segengine.permutohedral_filter(ones, spatial[None])[0, 0] / \
        brute_force_gaussian(np.ones((H * W, 1)), spatial)[:, 0]
    assert 0.5 < np.median(ratio) < 2.0


@pytest.mark.parametrize("normalization", ["none", "symmetric", "after", "before"])
def test_permutohedral_filter_normalizations(rng, normalization):
    f = _features(rng, 1, 3, 120)
    v = rng.random((1, 2, 120)).astype(np.float32)
    ref = ReferenceLattice(f[0])
    n = ref.filter(np.ones((120, 1), np.float32))[:, 0].astype(np.float64)
    x = v[0].T
    if normalization == "none":
        exp = ref.filter(x)
    elif normalization == "symmetric":
        s = (1 / np.sqrt(n + 1e-20)).astype(np.float32)[:, None]
        exp = ref.filter(x * s) * s
    elif normalization == "after":
        exp = ref.filter(x) * (1 / (n + 1e-20)).astype(np.float32)[:, None]
    else:
        exp = ref.filter(x * (1 / (n + 1e-20)).astype(np.float32)[:, None])
    out = segengine.permutohedral_filter(v, f, normalization=normalization)
    np.testing.assert_allclose(out[0].T, exp, rtol=1e-5, atol=1e-5 * np.abs(exp).max())
    assert isinstance(out, np.ndarray)


def test_bilateral_filter_preserves_edges(rng):
    H, W = 24, 24
    img = np.zeros((1, 1, H, W), np.float32)
    img[..., W // 2:] = 200.0
    noisy = img + rng.normal(0, 10, img.shape).astype(np.float32)
    out = segengine.bilateral_filter(torch.from_numpy(noisy), 4.0, 30.0)
    assert isinstance(out, torch.Tensor) and out.shape == noisy.shape and out.dtype == torch.float32
    out = out.numpy()
    # noise reduced on both sides, edge kept
    assert out[..., : W // 2 - 1].std() < 0.5 * noisy[..., : W // 2 - 1].std()
    assert abs(out[..., : W // 2 - 1].mean() - 0) < 5 and abs(out[..., W // 2 + 1:].mean() - 200) < 5
    # a constant image stays constant (normalised filter)
    const = np.full((2, 3, 8, 9), 77, np.uint8)
    c_out = segengine.bilateral_filter(const, 3, 10)
    assert isinstance(c_out, np.ndarray)
    np.testing.assert_allclose(c_out, 77.0, rtol=1e-5)


def test_torch_compile_and_opcheck(rng):
    f = torch.from_numpy(_features(rng, 1, 2, 30))
    lat = segengine.PermutohedralLattice(f)
    v = torch.randn(30, 2)
    torch.library.opcheck(torch.ops.segengine.lattice_filter.default,
                          (v, *lat.tensors, False, 1))
    torch.library.opcheck(torch.ops.segengine.lattice_filter.default,
                          (v.double().requires_grad_(), *lat.tensors, True, 1),
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))
    torch.library.opcheck(torch.ops.segengine.lattice_build.default, (f, 1),
                          test_utils=("test_schema", "test_faketensor"))
    fn = torch.compile(lambda t: lat.filter(t) * 2, backend="aot_eager", fullgraph=True)
    x = torch.randn(1, 3, 30)
    torch.testing.assert_close(fn(x), lat.filter(x) * 2)
    build = torch.compile(lambda t: lattice_ops._lattice_build_op(t, 1)[2].shape[1], backend="eager")
    assert build(f) == lat.num_vertices


def test_bad_inputs(rng):
    good = _features(rng, 1, 2, 10)
    with pytest.raises(ValueError, match="1..16 channels"):
        segengine.PermutohedralLattice(np.zeros((1, 17, 10), np.float32))
    with pytest.raises(ValueError, match="1..16 channels"):
        segengine.PermutohedralLattice(np.zeros((1, 0, 10), np.float32))
    with pytest.raises(ValueError, match=r"\[B, d"):
        segengine.PermutohedralLattice(np.zeros((2, 10), np.float32))
    bad = good.copy()
    bad[0, 0, 3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        segengine.PermutohedralLattice(bad)
    with pytest.raises(ValueError, match="too large"):
        segengine.PermutohedralLattice(good * 1e7)
    with pytest.raises(TypeError, match="features"):
        segengine.PermutohedralLattice([[1.0]])
    lat = segengine.PermutohedralLattice(good)
    with pytest.raises(ValueError, match="points"):
        lat.filter(np.zeros((1, 2, 11), np.float32))
    with pytest.raises(ValueError, match="B = 1"):
        lat.filter(np.zeros((2, 2, 10), np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        lat.filter(torch.zeros((1, 2, 10), dtype=torch.float16))
    with pytest.raises(ValueError, match="normalization"):
        segengine.permutohedral_filter(np.zeros((1, 1, 10)), good, normalization="sideways")
    with pytest.raises(ValueError, match="num_threads"):
        segengine.PermutohedralLattice(good, num_threads=0)
    img = np.zeros((1, 3, 5, 5), np.uint8)
    for s in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="sigma_color"):
            segengine.bilateral_filter(img, 3, s)
        with pytest.raises(ValueError, match="sigma_spatial"):
            segengine.bilateral_filter(img, s, 3)
    with pytest.raises(ValueError, match=r"\[B, K, H, W\]"):
        segengine.bilateral_filter(np.zeros((5, 5)), 1, 1)


@pytest.mark.parametrize("d", [1, 2, 3, 5, 6])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("padding", [False, True])
def test_box_and_hash_tables_number_alike(rng, d, threads, padding):
    """Features in a small range are numbered in a dense table over the box of keys they can
    reach (csrc/cpu/lattice_tables.h); one far outlier point makes that box too large, so
    the same points go through the hash table. Every vertex id, weight and blur neighbour
    of the other points must be the same either way: the outlier's d+1 vertices are new
    and numbered right after the real points' (before pydensecrf's padding vertices)."""
    n = 40001  # two build chunks with two threads; n and n+1 both leave padding ghosts
    D1 = d + 1
    f = _features(rng, 1, d, n, spread=4.0)
    far = np.concatenate([f, np.zeros((1, d, 1), np.float32)], axis=2)
    far[0, d - 1, n] = 2e5
    a = segengine.PermutohedralLattice(f, num_threads=threads, pydensecrf_padding=padding)
    b = segengine.PermutohedralLattice(far, num_threads=threads, pydensecrf_padding=padding)
    M = a.num_vertices
    M_real = int(a.offsets.max()) + 1  # vertices of real points: numbered first
    assert b.num_vertices == M + D1
    assert torch.equal(a.offsets, b.offsets[:n])
    assert torch.equal(a.weights, b.weights[:n])
    assert torch.equal(torch.sort(b.offsets[n]).values, torch.arange(M_real, M_real + D1, dtype=torch.int32))
    keep = torch.cat([torch.arange(M_real), torch.arange(M_real + D1, M + D1)])
    nb = b.neighbors[:, keep].long()
    nb = torch.where(nb >= M_real + D1, nb - D1, nb)
    assert torch.equal(a.neighbors.long(), nb)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.float32, torch.float64])
def test_point_features_equal_numpy_float32_features(rng, dtype):
    """point_features against the features written out in NumPy float32 (x first, then y[, z],
    then each channel over its bandwidth): bit for bit, 2-D and 3-D, spacing and origin, batch 2."""
    from segengine.ops.lattice import point_features
    for spatial, spacing, origin in (((7, 9), None, None), ((3, 5, 4), (2.0, 0.5, 1.0), (1, -2, 4))):
        nd = len(spatial)
        image = torch.from_numpy(rng.integers(0, 256, (2, 3, *spatial))).to(dtype)
        if dtype.is_floating_point:
            image = image + torch.from_numpy(rng.random((2, 3, *spatial))).to(dtype)
        srgb = (13.0, 7.5, 0.3)
        scales = (80.0, 3.0, 40.0)[:nd]
        grids = np.meshgrid(*[np.arange(n) + (0 if origin is None else origin[a]) for a, n in enumerate(spatial)],
                            indexing="ij")
        coords = []
        for ax in reversed(range(nd)):
            c = grids[ax].astype(np.float32)
            if spacing is not None:
                c = c * np.float32(spacing[ax])
            coords.append(c / np.float32(scales[ax]))
        xy = np.broadcast_to(np.stack(coords)[None], (2, nd, *spatial))
        col = image.numpy().astype(np.float32) / np.array(srgb, np.float32).reshape(1, 3, *[1] * nd)
        got = point_features(2, spatial, scales, image, srgb, spacing=spacing, origin=origin)
        assert got.dtype == torch.float32 and got.is_contiguous() and got.shape == (2, nd + 3, *spatial)
        np.testing.assert_array_equal(got.numpy(), np.concatenate([xy, col], 1))
        np.testing.assert_array_equal(point_features(2, spatial, scales, spacing=spacing, origin=origin).numpy(), xy)
