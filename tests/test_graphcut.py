"""segengine.graphcut: exact binary segmentation, blackbox backward, contrast weights."""

import itertools

import numpy as np
import pytest
import torch

import segengine
import segengine.maxflow as smf
from segengine.ops._graphcut_cuda import graphcut_cuda
from segengine.ops.graphcut import contrast_weights, graphcut_cpu


def energy(unary, w, conn, y):
    """E(y) of one item: unary [2, *S], w scalar or [K, *S], y [*S] in {0, 1}."""
    spatial = unary.shape[1:]
    offs = smf.grid.forward_offsets(len(spatial), conn)
    e = np.where(y == 1, unary[1], unary[0]).sum()
    W = np.broadcast_to(np.asarray(w, dtype=np.float64), (len(offs),) + spatial) if np.ndim(w) == 0 else w
    for k, o in enumerate(offs):
        sp, sq = [], []
        for S, d in zip(spatial, o):
            sp.append(slice(max(0, -d), S - max(0, d)))
            sq.append(slice(max(0, d), S - max(0, -d)))
        e += (W[k][tuple(sp)] * (y[tuple(sp)] != y[tuple(sq)])).sum()
    return e


@pytest.mark.parametrize("spatial,conn", [((2, 3), 4), ((3, 3), 8), ((2, 2, 3), 6), ((2, 2, 2), 18),
                                          ((2, 2, 2), 26)])
def test_exact_minimum_by_enumeration(spatial, conn):
    rng = np.random.default_rng(len(spatial) * 100 + conn)
    N = int(np.prod(spatial))
    allv = np.array(list(itertools.product((0, 1), repeat=N))).reshape((-1,) + spatial)
    K = len(smf.grid.forward_offsets(len(spatial), conn))
    for trial in range(5):
        unary = rng.normal(size=(3, 2) + spatial)
        w = rng.random((3, K) + spatial) * 1.5
        y = segengine.graphcut(torch.from_numpy(unary), torch.from_numpy(w), connectivity=conn).numpy()
        for b in range(3):
            e = energy(unary[b], w[b], conn, y[b])
            best = min(energy(unary[b], w[b], conn, v) for v in allv)
            assert e == pytest.approx(best, abs=1e-9)


def test_matches_pymaxflow_segmentation():
    pmf = pytest.importorskip("maxflow")
    from skimage import data
    img = data.coins()[::3, ::3].astype(np.float64) / 255
    unary = np.stack([(img - 0.25) ** 2, (img - 0.65) ** 2]) * 8
    y = segengine.graphcut(torch.from_numpy(unary)[None], 0.05)[0].numpy()
    g = pmf.Graph[float]()
    ids = g.add_grid_nodes(img.shape)
    g.add_grid_edges(ids, 0.05, symmetric=True)
    g.add_grid_tedges(ids, unary[1], unary[0])
    g.maxflow()
    assert np.array_equal(y.astype(bool), g.get_grid_segments(ids))
    assert 0.05 < y.mean() < 0.95


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_shape_and_threads(dtype):
    rng = np.random.default_rng(0)
    unary = torch.from_numpy(rng.normal(size=(5, 2, 17, 23))).to(dtype)
    y1 = segengine.graphcut(unary, 0.4, num_threads=1)
    y2 = segengine.graphcut(unary, 0.4, num_threads=2)
    assert y1.dtype == dtype and y1.shape == (5, 17, 23)
    assert torch.equal(y1, y2)
    for b in range(5):
        _, seg = smf.grid_maxflow(unary[b, 1].numpy(), unary[b, 0].numpy(), 0.4)
        assert np.array_equal(y1[b].numpy().astype(bool), seg)
    assert set(torch.unique(y1).tolist()) <= {0.0, 1.0}
    # non-contiguous input gives the same result
    nc = unary.transpose(2, 3).contiguous().transpose(2, 3)
    assert not nc.is_contiguous() and torch.equal(nc, unary)
    assert torch.equal(segengine.graphcut(nc, 0.4), y1)
    strided = torch.stack([unary, torch.zeros_like(unary)], dim=-1)[..., 0]
    assert not strided.is_contiguous()
    assert torch.equal(segengine.graphcut(strided, 0.4), y1)


def test_contrast_sensitive_weights():
    rng = np.random.default_rng(1)
    img = torch.from_numpy(rng.random((2, 3, 6, 7)))
    w = contrast_weights(img, 4).numpy()
    x = img.numpy()
    dr = ((x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2).sum(1)
    dd = ((x[:, :, 1:, :] - x[:, :, :-1, :]) ** 2).sum(1)
    for b in range(2):
        beta = 1.0 / (2 * np.concatenate([dr[b].ravel(), dd[b].ravel()]).mean())
        np.testing.assert_allclose(w[b, 0, :, :-1], np.exp(-beta * dr[b]), rtol=1e-12)
        np.testing.assert_allclose(w[b, 1, :-1, :], np.exp(-beta * dd[b]), rtol=1e-12)
    np.testing.assert_allclose(contrast_weights(img, 4, beta=2.0).numpy()[0, 0, :, :-1],
                               np.exp(-2.0 * dr[0]), rtol=1e-12)
    # graphcut with an image equals graphcut with those weights
    unary = torch.from_numpy(rng.normal(size=(2, 2, 6, 7)))
    a = segengine.graphcut(unary, 0.7, image=img)
    b = segengine.graphcut(unary, torch.from_numpy(0.7 * w))
    assert torch.equal(a, b)


def test_3d_and_cuda_device_roundtrip(device):
    rng = np.random.default_rng(2)
    unary = torch.from_numpy(rng.normal(size=(2, 2, 5, 6, 7))).float().to(device)
    y = segengine.graphcut(unary, 0.2, connectivity=26)
    assert y.device == unary.device and y.shape == (2, 5, 6, 7)
    y6 = segengine.graphcut(unary, 0.0)
    assert torch.equal(y6.cpu(), (unary[:, 1] < unary[:, 0]).float().cpu())


def test_backward_is_the_blackbox_formula():
    rng = np.random.default_rng(3)
    lam = 7.5
    unary = torch.from_numpy(rng.normal(size=(3, 2, 9, 11))).requires_grad_(True)
    y = segengine.graphcut(unary, 0.3, blackbox_lambda=lam)
    g = torch.from_numpy(rng.normal(size=(3, 9, 11)))
    (y * g).sum().backward()
    # the formula with the solver called directly
    u = unary.detach().numpy()
    expected = np.zeros_like(u)
    for b in range(3):
        _, y0 = smf.grid_maxflow(u[b, 1], u[b, 0], 0.3)
        _, yl = smf.grid_maxflow(u[b, 1] + lam * g[b].numpy(), u[b, 0], 0.3)
        d = -(y0.astype(float) - yl.astype(float)) / lam
        expected[b, 1] = d
        expected[b, 0] = -d
    np.testing.assert_allclose(unary.grad.numpy(), expected)
    assert np.abs(expected).sum() > 0  # the perturbation changed something


def test_training_through_graphcut_lowers_loss():
    torch.manual_seed(0)
    H, W = 16, 16
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    target = (((yy - 8) ** 2 + (xx - 8) ** 2) < 25).double()[None]
    feats = torch.stack([target[0] + 0.8 * torch.randn(H, W, dtype=torch.float64),
                         torch.ones(H, W, dtype=torch.float64)])[None]
    layer = torch.nn.Conv2d(2, 2, 1).double()
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.copy_(torch.tensor([0.0, 0.3]))  # starts predicting all 0
    opt = torch.optim.Adam(layer.parameters(), lr=0.05)

    def loss_fn():  # Hamming distance to the target mask
        y = segengine.graphcut(layer(feats), 0.1, blackbox_lambda=2.0)
        return (y - target).abs().sum()

    first = loss_fn().item()
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert first > 50
    assert loss_fn().item() < 0.5 * first
    assert np.mean(losses[-5:]) < 0.5 * first


def test_opcheck():
    torch.library.opcheck(torch.ops.segengine.graphcut.default,
                          (torch.randn(2, 2, 5, 6), torch.full((1,), 0.5), 4, 20.0, 1))
    torch.library.opcheck(torch.ops.segengine.graphcut.default,
                          (torch.randn(1, 2, 3, 4, 5, dtype=torch.float64, requires_grad=True),
                           torch.rand(1, 3, 3, 4, 5, dtype=torch.float64), 6, 5.0, 2))


def test_bad_input():
    u = torch.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError, match="unary must have shape"):
        segengine.graphcut(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="unary must have shape"):
        segengine.graphcut(torch.zeros(2, 4, 4))
    with pytest.raises(TypeError, match="floating"):
        segengine.graphcut(torch.zeros(1, 2, 4, 4, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor or numpy.ndarray"):
        segengine.graphcut([[[[0.0]], [[1.0]]]])
    with pytest.raises(ValueError, match="NaN"):
        segengine.graphcut(torch.full((1, 2, 4, 4), float("nan")))
    with pytest.raises(ValueError, match="connectivity"):
        segengine.graphcut(u, connectivity=6)
    with pytest.raises(ValueError, match="pairwise must be"):
        segengine.graphcut(u, torch.ones(1, 3, 4, 4))
    with pytest.raises(ValueError, match="non-negative"):
        segengine.graphcut(u, -1.0)
    with pytest.raises(ValueError, match="image must have shape"):
        segengine.graphcut(u, image=torch.zeros(1, 3, 5, 4))
    with pytest.raises(ValueError, match="blackbox_lambda"):
        segengine.graphcut(u, blackbox_lambda=0.0)


def test_torch_compile_fullgraph_matches_eager():
    def f(u):
        return segengine.graphcut(u * 2, 0.5, connectivity=8)

    u = torch.randn(2, 2, 12, 13, requires_grad=True)
    g = torch.randn(2, 12, 13)
    eager = f(u)
    (eager * g).sum().backward()
    ge = u.grad.clone()
    u.grad = None
    compiled = torch.compile(f, fullgraph=True)(u)
    (compiled * g).sum().backward()
    assert torch.equal(compiled, eager)
    assert torch.equal(u.grad, ge)


def test_num_threads_validation():
    with pytest.raises(ValueError, match="num_threads"):
        segengine.graphcut(torch.zeros(1, 2, 3, 3), num_threads=0)


def test_numpy_in_numpy_out():
    rng = np.random.default_rng(5)
    u = rng.normal(size=(2, 2, 7, 8))
    w = rng.random((2, 2, 7, 8))
    img = rng.random((2, 3, 7, 8))
    for args, kw in [((u, 0.3), {}), ((u, w), {}), ((u, 0.3), {"image": img, "beta": 2.0})]:
        got = segengine.graphcut(*args, **kw)
        t = tuple(torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args)
        kt = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        expected = segengine.graphcut(*t, **kt)
        assert isinstance(got, np.ndarray) and got.dtype == np.float64
        np.testing.assert_array_equal(got, expected.numpy())


def test_cuda_kernel_is_the_cpu_kernel_round_trip():
    """The registered CUDA kernel copies to the CPU, runs the CPU kernel and copies back; on
    CPU tensors (no GPU here) it must give the CPU kernel's labels on the input's device."""
    rng = np.random.default_rng(6)
    u = torch.from_numpy(rng.normal(size=(3, 2, 6, 7))).float()
    w = torch.from_numpy(rng.random((3, 4, 6, 7))).float()
    a = graphcut_cpu(u, w, 8, 20.0, 1)
    b = graphcut_cuda(u, w, 8, 20.0, 2)
    assert b.device == u.device and torch.equal(a, b)
    assert torch.equal(a, segengine.graphcut(u, w, connectivity=8))
    assert torch._C._dispatch_has_kernel_for_dispatch_key("segengine::graphcut", "CUDA")


def test_module_equals_function_and_trains():
    layer = segengine.nn.GraphCut(pairwise=0.1, blackbox_lambda=2.0)
    assert "pairwise=0.1" in repr(layer) and not list(layer.parameters())
    rng = np.random.default_rng(7)
    u = torch.from_numpy(rng.normal(size=(2, 2, 9, 10))).requires_grad_(True)
    img = torch.from_numpy(rng.random((2, 3, 9, 10)))
    assert torch.equal(layer(u), segengine.graphcut(u, 0.1, blackbox_lambda=2.0))
    assert torch.equal(layer(u, img), segengine.graphcut(u, 0.1, image=img, blackbox_lambda=2.0))
    # the gradient reaches the unary (blackbox formula: non-zero where the perturbation flips)
    g = torch.from_numpy(rng.normal(size=(2, 9, 10)))
    (layer(u) * g).sum().backward()
    assert u.grad is not None and u.grad.abs().sum() > 0
    assert torch.equal(u.grad[:, 0], -u.grad[:, 1])
    # a short training run through the layer lowers a loss on the labels
    torch.manual_seed(0)
    H, W = 16, 16
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    target = (((yy - 8) ** 2 + (xx - 8) ** 2) < 25).double()[None]
    feats = torch.stack([target[0] + 0.8 * torch.randn(H, W, dtype=torch.float64),
                         torch.ones(H, W, dtype=torch.float64)])[None]
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 2, 1).double(), layer)
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.copy_(torch.tensor([0.0, 0.3]))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    first = (net(feats) - target).abs().sum().item()
    for _ in range(20):
        opt.zero_grad()
        loss = (net(feats) - target).abs().sum()
        loss.backward()
        opt.step()
    assert first > 50 and (net(feats) - target).abs().sum().item() < 0.5 * first


def test_module_validates_its_settings():
    with pytest.raises(ValueError, match="pairwise"):
        segengine.nn.GraphCut(pairwise=-1.0)
    with pytest.raises(ValueError, match="blackbox_lambda"):
        segengine.nn.GraphCut(blackbox_lambda=0.0)
    with pytest.raises(ValueError, match="num_threads"):
        segengine.nn.GraphCut(num_threads=0)
