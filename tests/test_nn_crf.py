"""segengine.nn.DenseCRF: gradients against the pure-PyTorch reference, gradcheck, torch
integration (compile, checkpointing, DDP) and bad input."""

import socket

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segengine.nn import DenseCRF
from segengine._reference.crf_layer import build_lattice, dense_crf_layer_reference, lattice_filter_torch


def _inputs(B=2, C=3, H=10, W=12, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, C, H, W, generator=g, dtype=torch.float64).to(dtype)
    image = (torch.rand(B, 3, H, W, generator=g) * 255).round()
    return logits, image


def _perturbed_layer(C, seed=1, **kw):
    layer = DenseCRF(C, **kw).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return layer


@pytest.mark.parametrize("normalization", ["symmetric", "after", "none"])
@pytest.mark.parametrize("shape", [(2, 3, 10, 12), (1, 4, 7, 5), (3, 2, 6, 9)])
def test_gradients_equal_pure_torch_reference(normalization, shape):
    B, C, H, W = shape
    layer = _perturbed_layer(C, iterations=3, bilateral_sxy=5.0, bilateral_srgb=30.0,
                             normalization=normalization)
    logits, image = _inputs(B, C, H, W, seed=sum(shape))
    x1 = logits.clone().requires_grad_(True)
    x2 = logits.clone().requires_grad_(True)
    out = layer(x1, image)
    ref = dense_crf_layer_reference(layer, x2, image)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    g = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(3))
    params = list(layer.parameters())
    ga = torch.autograd.grad(out, [x1, *params], g)
    gb = torch.autograd.grad(ref, [x2, *params], g)
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
        assert a.abs().sum() > 0  # every parameter really receives a gradient


def test_float32_matches_reference():
    layer = _perturbed_layer(3, iterations=2).float()
    logits, image = _inputs(dtype=torch.float32)
    x1 = logits.clone().requires_grad_(True)
    x2 = logits.clone().requires_grad_(True)
    out, ref = layer(x1, image), dense_crf_layer_reference(layer, x2, image)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    out.square().sum().backward()
    ref.square().sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-5)


def test_gradcheck_every_parameter():
    layer = _perturbed_layer(3, iterations=2, bilateral_sxy=4.0, bilateral_srgb=40.0)
    logits, image = _inputs(B=2, C=3, H=5, W=4)

    def fn(x, gm, bm, kw):
        return _functional(layer, x, image, gm, bm, kw)

    args = (logits.requires_grad_(True), layer.gaussian_compat.detach().clone().requires_grad_(True),
            layer.bilateral_compat.detach().clone().requires_grad_(True),
            layer.kernel_weights.detach().clone().requires_grad_(True))
    assert torch.autograd.gradcheck(fn, args)


def _functional(layer, x, image, gm, bm, kw):
    """The layer's forward with explicit parameter tensors (for gradcheck)."""
    kernels = layer.kernels(image, x.dtype)
    neg_unary = torch.log_softmax(x, dim=1)
    z = neg_unary
    for _ in range(layer.iterations):
        q = torch.softmax(z, dim=1)
        z = neg_unary - layer._pairwise(kernels, q, gm, bm, kw)
    return z


def test_checkpoint_option_gives_same_gradients():
    logits, image = _inputs()
    base = _perturbed_layer(3, iterations=4)
    ckpt = _perturbed_layer(3, iterations=4, checkpoint=True)
    ckpt.load_state_dict(base.state_dict())
    grads = []
    for layer in (base, ckpt):
        x = logits.clone().requires_grad_(True)
        layer(x, image).square().mean().backward()
        grads.append([x.grad] + [p.grad for p in layer.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_zero_iterations_is_log_softmax():
    logits, image = _inputs()
    out = DenseCRF(3, iterations=0).double()(logits, image)
    torch.testing.assert_close(out, F.log_softmax(logits, 1))


def test_torch_compile():
    layer = _perturbed_layer(3, iterations=2)
    logits, image = _inputs()
    compiled = torch.compile(layer, backend="aot_eager")
    x1 = logits.clone().requires_grad_(True)
    out = compiled(x1, image)
    out.sum().backward()
    x2 = logits.clone().requires_grad_(True)
    ref = layer(x2, image)
    ref.sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(x1.grad, x2.grad)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_data_parallel_single_process():
    import torch.distributed as dist
    if not dist.is_available():
        pytest.skip("torch.distributed not available")
    logits, image = _inputs()
    layer = _perturbed_layer(3, iterations=2)
    plain = _perturbed_layer(3, iterations=2)
    plain.load_state_dict(layer.state_dict())
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        ddp = torch.nn.parallel.DistributedDataParallel(layer)
        target = torch.randint(0, 3, (2, 10, 12), generator=torch.Generator().manual_seed(0))
        F.cross_entropy(ddp(logits, image), target).backward()
        F.cross_entropy(plain(logits, image), target).backward()
        for a, b in zip(layer.parameters(), plain.parameters()):
            torch.testing.assert_close(a.grad, b.grad)
    finally:
        dist.destroy_process_group()


def test_reference_filter_is_adjoint():
    """<K u, v> == <u, K^T v> for the torch reference (and so for the layer's backward)."""
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(1, 3, 40, generator=g) * 2
    lat = build_lattice(feats)
    u = torch.randn(40, 2, generator=g, dtype=torch.float64)
    v = torch.randn(40, 2, generator=g, dtype=torch.float64)
    ku = lattice_filter_torch(u, *lat)
    ktv = lattice_filter_torch(v, *lat, reverse=True)
    torch.testing.assert_close((ku * v).sum(), (u * ktv).sum())


@pytest.mark.parametrize("d, N, ghost", [(2, 45, True), (5, 60, False), (1, 30, False), (3, 7, True)])
def test_reference_lattice_equals_numpy_reference(d, N, ghost):
    """The reference layer's own batched lattice (sorted numbering) filters exactly as the
    NumPy ReferenceLattice (first-occurrence numbering) of each image, and it is the
    library's lattice up to the numbering: same vertex count and the same filter."""
    from segengine import PermutohedralLattice
    from segengine._reference.lattice import ReferenceLattice
    rng = np.random.default_rng(d * N)
    f = (rng.random((2, d, N)) * 3).astype(np.float32)
    lat = build_lattice(f, ghost_origin=ghost)
    v = rng.standard_normal((2 * N, 3))
    out = lattice_filter_torch(torch.from_numpy(v), *lat).numpy()
    for b in range(2):
        ref = ReferenceLattice(f[b], ghost_origin=ghost)
        np.testing.assert_allclose(out[b * N:(b + 1) * N], ref.filter(v[b * N:(b + 1) * N]), rtol=0, atol=1e-12)
    lib = PermutohedralLattice(f, pydensecrf_padding=ghost and N % 4 != 0)
    assert lib.num_vertices == lat[2].shape[1]
    lib_out = lib.filter(torch.from_numpy(v.reshape(2, N, 3).transpose(0, 2, 1).copy()))
    np.testing.assert_allclose(lib_out.numpy().transpose(0, 2, 1).reshape(-1, 3), out, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kwargs, err", [
    (dict(num_classes=1), "num_classes"),
    (dict(num_classes=3, iterations=-1), "iterations"),
    (dict(num_classes=3, bilateral_srgb=0.0), "bilateral_srgb"),
    (dict(num_classes=3, gaussian_sxy=float("nan")), "gaussian_sxy"),
    (dict(num_classes=3, normalization="before"), "normalization"),
])
def test_bad_construction(kwargs, err):
    with pytest.raises((ValueError, TypeError), match=err):
        DenseCRF(**kwargs)


@pytest.mark.parametrize("logits, image, err", [
    (torch.zeros(2, 4, 5, 5), torch.zeros(2, 3, 5, 5), "classes"),
    (torch.zeros(2, 3, 5), torch.zeros(2, 3, 5, 5), r"\[B, C, H, W\]"),
    (torch.zeros(2, 3, 5, 5), torch.zeros(2, 3, 5, 6), "image must be"),
    (torch.zeros(2, 3, 5, 5, dtype=torch.float16), torch.zeros(2, 3, 5, 5), "float32"),
    (torch.zeros(2, 3, 5, 5), torch.full((2, 3, 5, 5), float("nan")), "finite"),
])
def test_bad_forward_input(logits, image, err):
    with pytest.raises((ValueError, TypeError), match=err):
        DenseCRF(3)(logits, image)


@pytest.mark.parametrize("normalization", ["symmetric", "after", "none"])
@pytest.mark.parametrize("settings", [
    dict(iterations=5),
    dict(iterations=3, gaussian_sxy=2.0, gaussian_compat=1.0, bilateral_sxy=15.0,
         bilateral_srgb=20.0, bilateral_compat=4.0),
])
def test_untrained_layer_equals_dense_crf(normalization, settings):
    import segengine
    g = torch.Generator().manual_seed(7)
    logits = torch.randn(2, 4, 23, 31, generator=g)  # 713 pixels: pydensecrf's padding applies
    image = (torch.rand(2, 3, 23, 31, generator=g) * 255).round()
    layer = DenseCRF(4, normalization=normalization, **settings)
    q_layer = torch.softmax(layer(logits, image), dim=1)
    q_crf = segengine.dense_crf(logits, image, normalization=normalization, **settings)
    torch.testing.assert_close(q_layer, q_crf, rtol=0, atol=5e-4)
    assert (q_layer.argmax(1) == q_crf.argmax(1)).float().mean() > 0.999
