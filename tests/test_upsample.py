"""upsample_argmax and upsample_cross_entropy against the PyTorch composite and the NumPy reference."""

import numpy as np
import pytest
import torch

import segengine
from segengine._codes import Reduction
from segengine._reference.upsample import (bilinear_numpy, upsample_argmax_composite,
                                           upsample_cross_entropy_composite)
from tests import emulate

# (B, C, h, w, H, W): up, down, scale 1, odd sizes, mixed up/down, single pixel/class edges
SHAPES = [
    (2, 3, 7, 9, 20, 33),
    (1, 5, 13, 5, 6, 3),
    (3, 21, 10, 10, 10, 10),
    (1, 2, 5, 8, 5, 20),
    (2, 19, 16, 24, 64, 96),
    (1, 4, 1, 1, 5, 7),
    (2, 6, 9, 4, 1, 1),
    (1, 1, 6, 6, 11, 11),
    (4, 7, 31, 17, 17, 31),
]
SCALES = [2.0, 1.5, 0.7, 3.3, (2.0, 0.5), 4, (1.0, 1.25)]


def _logits(shape, dtype, seed, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape[:4], generator=g, dtype=torch.float64).to(dtype).to(device)


# ------------------------------------------------------------------------- argmax

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_argmax_equals_composite(device, dtype, align_corners, shape):
    x = _logits(shape, dtype, seed=sum(shape), device=device)
    size = shape[4:]
    got = segengine.upsample_argmax(x, size, align_corners=align_corners)
    ref = upsample_argmax_composite(x, size, align_corners=align_corners)
    assert got.dtype == torch.int64 and got.device == x.device
    assert torch.equal(got, ref)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("scale", SCALES)
def test_argmax_scale_factor(device, scale, align_corners):
    x = _logits((2, 5, 11, 17), torch.float32, seed=3, device=device)
    got = segengine.upsample_argmax(x, scale_factor=scale, align_corners=align_corners)
    ref = upsample_argmax_composite(x, scale_factor=scale, align_corners=align_corners)
    assert got.shape == ref.shape
    assert torch.equal(got, ref)


@pytest.mark.parametrize("shape", SHAPES[:5])
def test_argmax_matches_independent_numpy_bilinear(shape):
    """The index formula, checked against a from-scratch float64 NumPy resampler."""
    x = _logits(shape, torch.float64, seed=7)
    for align in (False, True):
        vals = bilinear_numpy(x.numpy(), shape[4:], align_corners=align)
        got = segengine.upsample_argmax(x.numpy(), shape[4:], align_corners=align)
        top2 = np.sort(vals, axis=1)[:, -2:] if vals.shape[1] > 1 else None
        clear = np.ones(got.shape, bool) if top2 is None else (top2[:, 1] - top2[:, 0]) > 1e-9
        assert np.array_equal(got[clear], vals.argmax(1)[clear])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_argmax_half_types_equal_composite_in_float32(device, dtype):
    x = _logits((2, 6, 20, 20), dtype, seed=11, device=device)
    got = segengine.upsample_argmax(x, (77, 91))
    assert torch.equal(got, upsample_argmax_composite(x.float(), (77, 91)))


@pytest.mark.parametrize("C", [3, 5, 21])
def test_argmax_channels_last_and_noncontiguous(device, C):
    x = _logits((2, C, 33, 47), torch.float32, seed=C, device=device)
    cl = x.contiguous(memory_format=torch.channels_last)
    assert not cl.is_contiguous()
    assert torch.equal(segengine.upsample_argmax(cl, (97, 131)),
                       upsample_argmax_composite(cl, (97, 131)))
    big = _logits((3, 2 * C, 40, 60), torch.float32, seed=C + 1, device=device)
    sliced = big[::2, ::2, 3:36, ::1][..., 5:52]
    assert not sliced.is_contiguous()
    assert torch.equal(segengine.upsample_argmax(sliced, (70, 90)),
                       upsample_argmax_composite(sliced, (70, 90)))


def test_argmax_nan_and_ties(device):
    x = _logits((2, 4, 8, 8), torch.float32, seed=5, device=device)
    x[0, 2, 3, 3] = float("nan")
    x[1, :, 5, 5] = float("nan")
    x[1, 1, 0, :] = float("inf")
    assert torch.equal(segengine.upsample_argmax(x, (32, 29)), upsample_argmax_composite(x, (32, 29)))
    zeros = torch.zeros(1, 3, 4, 4, device=device)
    assert segengine.upsample_argmax(zeros, (9, 9)).unique().tolist() == [0]


def test_argmax_confidence(device):
    x = _logits((2, 7, 9, 13), torch.float32, seed=9, device=device)
    labels, conf = segengine.upsample_argmax(x, (30, 41), return_confidence=True)
    ref_labels, ref_conf = upsample_argmax_composite(x, (30, 41), return_confidence=True)
    assert torch.equal(labels, ref_labels)
    assert conf.dtype == torch.float32
    torch.testing.assert_close(conf, ref_conf, rtol=1e-5, atol=1e-6)


def test_argmax_numpy_in_numpy_out():
    x = _logits((1, 3, 5, 6), torch.float32, seed=1).numpy()
    got = segengine.upsample_argmax(x, scale_factor=2)
    assert isinstance(got, np.ndarray) and got.dtype == np.int64 and got.shape == (1, 10, 12)
    labels, conf = segengine.upsample_argmax(x, scale_factor=2, return_confidence=True)
    assert isinstance(conf, np.ndarray) and conf.dtype == np.float32


def test_argmax_thread_count_does_not_change_result():
    x = _logits((3, 9, 21, 23), torch.float32, seed=2)
    a = segengine.upsample_argmax(x, (80, 70), num_threads=1)
    b = segengine.upsample_argmax(x, (80, 70), num_threads=2)
    c = segengine.upsample_argmax(x, (80, 70), num_threads=5)
    assert torch.equal(a, b) and torch.equal(a, c)


@pytest.mark.parametrize("bad, err", [
    (dict(logits=torch.zeros(3, 4, 5)), "4-D"),
    (dict(logits=torch.zeros(1, 0, 4, 4)), "empty"),
    (dict(logits=torch.zeros(1, 2, 4, 4, dtype=torch.int64)), "floating-point"),
    (dict(size=(0, 5)), "positive"),
    (dict(size=(-3, 5)), "positive"),
    (dict(size=(2, 3, 4)), "pair"),
    (dict(size=None), "exactly one"),
    (dict(size=(4, 4), scale_factor=2.0), "exactly one"),
    (dict(size=None, scale_factor=-1.0), "positive"),
    (dict(size=None, scale_factor=float("nan")), "positive"),
    (dict(size=None, scale_factor=0.01), "empty output"),
    (dict(num_threads=0), "num_threads"),
])
def test_argmax_bad_input(bad, err):
    args = dict(logits=torch.zeros(1, 2, 4, 4), size=(8, 8))
    args.update(bad)
    with pytest.raises((ValueError, TypeError), match=err):
        segengine.upsample_argmax(**args)


def test_argmax_rejects_non_tensor():
    with pytest.raises(TypeError, match="logits"):
        segengine.upsample_argmax([[1.0]], (2, 2))


# ------------------------------------------------------------------------- cross-entropy

def _ce_case(seed, B=2, C=5, h=9, w=11, H=30, W=37, dtype=torch.float64, device="cpu",
             ignore=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, C, h, w, generator=g, dtype=torch.float64).to(dtype).to(device)
    t = torch.randint(0, C, (B, H, W), generator=g)
    if ignore:
        t[0, :3] = -100
        t[-1, :, -2:] = -100
    return x, t.to(device)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("align_corners", [False, True])
def test_cross_entropy_equals_composite(device, reduction, label_smoothing, weighted, align_corners):
    x, t = _ce_case(seed=len(reduction) + int(10 * label_smoothing) + weighted, device=device)
    weight = (torch.rand(5, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.5
              ).to(device) if weighted else None
    kw = dict(weight=weight, reduction=reduction, label_smoothing=label_smoothing,
              align_corners=align_corners)
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    got = segengine.upsample_cross_entropy(xa, t, **kw)
    ref = upsample_cross_entropy_composite(xb, t, **kw)
    assert got.shape == ref.shape and got.dtype == ref.dtype
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    gout = torch.randn(ref.shape, dtype=ref.dtype, generator=torch.Generator().manual_seed(1)).to(device)
    (ga,) = torch.autograd.grad(got, xa, gout)
    (gb,) = torch.autograd.grad(ref, xb, gout)
    torch.testing.assert_close(ga, gb, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("shape", [(2, 19, 16, 32, 64, 128), (3, 4, 13, 7, 5, 9), (1, 3, 8, 8, 8, 8)])
def test_cross_entropy_float32_shapes(device, shape):
    B, C, h, w, H, W = shape
    x, t = _ce_case(seed=sum(shape), B=B, C=C, h=h, w=w, H=H, W=W, dtype=torch.float32,
                    device=device)
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    got = segengine.upsample_cross_entropy(xa, t, ignore_index=-100)
    ref = upsample_cross_entropy_composite(xb, t)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    got.backward()
    ref.backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-7)


def test_cross_entropy_channels_last_noncontiguous_and_numpy():
    x, t = _ce_case(seed=4, dtype=torch.float32)
    cl = x.contiguous(memory_format=torch.channels_last)
    ref = upsample_cross_entropy_composite(x, t)
    torch.testing.assert_close(segengine.upsample_cross_entropy(cl, t), ref)
    tt = torch.cat([t, t], dim=2)[:, :, ::2]
    assert not tt.is_contiguous()
    torch.testing.assert_close(segengine.upsample_cross_entropy(x, tt),
                               upsample_cross_entropy_composite(x, tt.contiguous()))
    got = segengine.upsample_cross_entropy(x.numpy(), t.numpy().astype(np.int32))
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cross_entropy_half_types_compute_in_float32(dtype):
    x, t = _ce_case(seed=8, dtype=dtype)
    xa = x.clone().requires_grad_(True)
    got = segengine.upsample_cross_entropy(xa, t)
    assert got.dtype == dtype
    xf = x.float().requires_grad_(True)
    ref = upsample_cross_entropy_composite(xf, t)
    torch.testing.assert_close(got.float(), ref, rtol=1e-2, atol=1e-3)
    got.backward()
    ref.backward()
    assert xa.grad.dtype == dtype
    torch.testing.assert_close(xa.grad.float(), xf.grad, rtol=2e-2, atol=1e-4)


def test_cross_entropy_under_autocast():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 6, 3, padding=1)
    img = torch.randn(2, 3, 12, 12)
    t = torch.randint(0, 6, (2, 48, 48))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = conv(img)
        assert logits.dtype == torch.bfloat16
        loss = segengine.upsample_cross_entropy(logits, t)
        labels = segengine.upsample_argmax(logits, (48, 48))
    torch.testing.assert_close(loss.float(), upsample_cross_entropy_composite(logits.float(), t),
                               rtol=1e-2, atol=1e-3)
    assert torch.equal(labels, upsample_argmax_composite(logits.float(), (48, 48)))
    loss.backward()
    assert conv.weight.grad is not None and torch.isfinite(conv.weight.grad).all()


def test_cross_entropy_all_ignored_is_nan_like_torch():
    x, t = _ce_case(seed=1)
    t[:] = 3
    for red in ("mean", "sum"):
        got = segengine.upsample_cross_entropy(x, t, ignore_index=3, reduction=red)
        ref = upsample_cross_entropy_composite(x, t, ignore_index=3, reduction=red)
        assert torch.equal(torch.isnan(got), torch.isnan(ref))
        if not torch.isnan(ref):
            torch.testing.assert_close(got, ref)


def test_cross_entropy_is_deterministic_across_thread_counts():
    x, t = _ce_case(seed=12, B=3, C=7, h=17, w=19, H=61, W=53, dtype=torch.float32)
    results = []
    for n in (1, 2, 3):
        xa = x.clone().requires_grad_(True)
        loss = segengine.upsample_cross_entropy(xa, t, num_threads=n, label_smoothing=0.05)
        loss.backward()
        results.append((loss.detach(), xa.grad))
    for loss, grad in results[1:]:
        assert torch.equal(loss, results[0][0]) and torch.equal(grad, results[0][1])


def test_cross_entropy_backward_recomputes_when_forward_had_no_grad_buffer():
    """reduction='none' and the backward op run the full backward kernel."""
    x, t = _ce_case(seed=3)
    g = torch.rand(t.shape, dtype=torch.float64)
    from segengine.ops.upsample import _upsample_ce_backward_op
    got = _upsample_ce_backward_op(torch.tensor(2.5, dtype=torch.float64), x, t, None, -100, 1, 0.0,
                                   False, 2)
    xb = x.clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(upsample_cross_entropy_composite(xb, t) * 2.5, xb)
    torch.testing.assert_close(got, ref)
    xc = x.clone().requires_grad_(True)
    (gn,) = torch.autograd.grad(segengine.upsample_cross_entropy(xc, t, reduction="none"), xc, g)
    xd = x.clone().requires_grad_(True)
    (gr,) = torch.autograd.grad(upsample_cross_entropy_composite(xd, t, reduction="none"), xd, g)
    torch.testing.assert_close(gn, gr)


def test_cross_entropy_gradcheck():
    x, t = _ce_case(seed=2, B=2, C=3, h=4, w=5, H=7, W=6)
    w = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    for red in ("mean", "none"):
        fn = lambda z: segengine.upsample_cross_entropy(z, t, weight=w, reduction=red,  # noqa: E731
                                                        label_smoothing=0.2)
        assert torch.autograd.gradcheck(fn, (x.clone().requires_grad_(True),))


@pytest.mark.parametrize("bad, err", [
    (dict(target=torch.full((2, 8, 8), 5)), "outside"),
    (dict(target=torch.full((2, 8, 8), -1)), "outside"),
    (dict(target=torch.zeros(3, 8, 8, dtype=torch.int64)), "batch"),
    (dict(target=torch.zeros(2, 8, dtype=torch.int64)), "3-D"),
    (dict(target=torch.zeros(2, 8, 8)), "integer"),
    (dict(target=torch.zeros(2, 0, 8, dtype=torch.int64)), "empty"),
    (dict(weight=torch.ones(4)), "weight"),
    (dict(reduction="avg"), "reduction"),
    (dict(label_smoothing=1.5), "label_smoothing"),
    (dict(logits=torch.zeros(2, 5, 4)), "4-D"),
])
def test_cross_entropy_bad_input(bad, err):
    args = dict(logits=torch.zeros(2, 5, 4, 4), target=torch.zeros(2, 8, 8, dtype=torch.int64))
    args.update(bad)
    with pytest.raises((ValueError, TypeError), match=err):
        segengine.upsample_cross_entropy(**args)


# ------------------------------------------------------------------------- torch integration

def test_opcheck():
    from segengine.ops import upsample as up
    x = _logits((2, 3, 5, 7), torch.float32, seed=0)
    torch.library.opcheck(up._upsample_argmax_op, (x, 11, 13, -1.0, -1.0, False, True, 2))
    xg, t = _ce_case(seed=5, B=2, C=3, h=4, w=5, H=9, W=8)
    xg.requires_grad_(True)
    for red in (0, 1, 2):
        torch.library.opcheck(up._upsample_ce_op, (xg, t, None, -100, red, 0.1, False, True, 2))
    torch.library.opcheck(up._upsample_ce_backward_op,
                          (torch.tensor(1.0, dtype=torch.float64), xg.detach(), t, None, -100, 1,
                           0.0, False, 2))


def test_torch_compile_smoke():
    x, t = _ce_case(seed=6, dtype=torch.float32)

    def step(z):
        return segengine.upsample_cross_entropy(z, t), segengine.upsample_argmax(z, (30, 37))

    compiled = torch.compile(step, backend="aot_eager", fullgraph=True)
    xa = x.clone().requires_grad_(True)
    loss, labels = compiled(xa)
    loss.backward()
    xb = x.clone().requires_grad_(True)
    ref = upsample_cross_entropy_composite(xb, t)
    ref.backward()
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(xa.grad, xb.grad)
    assert torch.equal(labels, upsample_argmax_composite(x, (30, 37)))


# ------------------------------------------------------------------------- CUDA kernels on the CPU

@pytest.fixture(scope="module")
def emu_launcher(tmp_path_factory):
    if not emulate.have_compiler():
        pytest.skip("no C++ compiler")
    return emulate.launcher(tmp_path_factory.mktemp("emu_launch"), grid=(2,), block=(16,))


@pytest.fixture
def emulated_cuda(emu_launcher):
    """Route every segengine._cuda.launch to the CPU emulation, so that the registered CUDA
    kernels (ops/_upsample_cuda.py) run end to end on CPU tensors with their real arguments."""
    from segengine import _cuda
    previous = _cuda.set_launcher(emu_launcher)
    yield
    _cuda.set_launcher(previous)


def _taps(h, H, align, scale, dtype):
    from segengine.ops._upsample_cuda import taps
    return taps(h, H, align, scale, dtype, torch.device("cpu"))


def test_tap_tables_are_kept_per_shape_and_dtype():
    """The CUDA path's tap tables (kept per sizes, dtype and device) equal freshly made ones,
    and a table of one dtype or size is never handed out for another."""
    from segengine._cy import _upsample
    from segengine.ops._upsample_cuda import taps
    for dtype in (torch.float32, torch.float64, torch.float32):
        for h, H, align, scale in ((5, 17, False, -1.0), (5, 17, True, -1.0), (8, 16, False, 2.0),
                                   (5, 17, False, -1.0)):
            got = taps(h, H, align, scale, dtype, torch.device("cpu"))
            fresh = _upsample.axis_taps(h, H, align, scale, dtype == torch.float64)
            assert [t.dtype for t in got] == [torch.int64, torch.int64, dtype, dtype]
            for g, f in zip(got, fresh):
                assert g.is_contiguous() and torch.equal(g, torch.from_numpy(f))


def _launch(name, args):
    """One kernel of csrc/cuda/upsample.cu through the single seam (_cuda.launch); under the
    ``emulated_cuda`` fixture it runs serially on the CPU tensors in ``args``."""
    from segengine import _cuda
    _cuda.launch(torch.device("cpu"), "upsample", name, (1,), (1,), args)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("align", [False, True])
def test_cuda_argmax_kernel_emulated(emulated_cuda, dtype, align):
    B, C, h, w, H, W = 2, 5, 6, 7, 13, 11
    x = _logits((B, C, h, w), dtype, seed=21)
    ty, tx = _taps(h, H, align, -1.0, dtype), _taps(w, W, align, -1.0, dtype)
    labels = torch.full((B, H, W), -1, dtype=torch.int64)
    conf = torch.zeros((B, H, W), dtype=torch.float32)
    dims = [np.int64(v) for v in (B, C, h, w, H, W)]
    _launch(f"upsample_argmax_{'f64' if dtype == torch.float64 else 'f32'}",
            [x, *dims, *ty, *tx, labels, conf])
    ref_labels, ref_conf = upsample_argmax_composite(x, (H, W), align_corners=align,
                                                     return_confidence=True)
    assert torch.equal(labels, ref_labels)
    torch.testing.assert_close(conf, ref_conf, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_cuda_cross_entropy_kernels_emulated(emulated_cuda, reduction):
    from segengine.ops._upsample_cuda import support
    B, C, h, w, H, W = 2, 4, 5, 6, 11, 9
    x, t = _ce_case(seed=31, B=B, C=C, h=h, w=w, H=H, W=W)
    weight = torch.tensor([1.0, 0.5, 2.0, 1.5], dtype=torch.float64)
    eps = 0.1
    ty, tx = _taps(h, H, False, -1.0, torch.float64), _taps(w, W, False, -1.0, torch.float64)
    dims = [np.int64(v) for v in (B, C, h, w, H, W)]
    nll, smooth, per_pixel = (torch.zeros(B, H, W, dtype=torch.float64) for _ in range(3))
    _launch("upsample_ce_forward_f64",
            [x, t, weight, *dims, *ty, *tx, np.int64(-100), np.float64(1 - eps),
             np.float64(eps / C), nll, smooth, per_pixel])
    ref_none = upsample_cross_entropy_composite(x, t, weight=weight, reduction="none", label_smoothing=eps)
    torch.testing.assert_close(per_pixel, ref_none)

    gp = torch.rand(B, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    valid = t != -100
    norm = float(weight[t[valid]].sum())
    if reduction == "mean":
        coef_nll, coef_smooth, gpix = (1 - eps) / norm, (eps / C) / norm, None
    else:
        coef_nll, coef_smooth, gpix = 1 - eps, eps / C, gp
    ylo, yhi = support(ty[0], ty[1], h)
    xlo, xhi = support(tx[0], tx[1], w)
    grad = torch.full_like(x, float("nan"))
    _launch("upsample_ce_backward_f64",
            [x, t, weight, gpix, *dims, *ty, *tx, ylo, yhi, xlo, xhi, np.int64(-100),
             np.float64(coef_nll), np.float64(coef_smooth), grad])
    xr = x.clone().requires_grad_(True)
    ref = upsample_cross_entropy_composite(xr, t, weight=weight, reduction=reduction, label_smoothing=eps)
    (gref,) = torch.autograd.grad(ref, xr, None if reduction == "mean" else gp)
    torch.testing.assert_close(grad, gref)


def test_cuda_kernels_are_registered():
    for name in ("upsample_argmax", "upsample_cross_entropy", "upsample_cross_entropy_backward"):
        for key in ("CPU", "CUDA"):
            assert torch._C._dispatch_has_kernel_for_dispatch_key(f"segengine::{name}", key)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_driver_argmax_emulated(emulated_cuda, dtype):
    from segengine.ops import _upsample_cuda
    x = _logits((2, 4, 5, 7), dtype, seed=41)
    labels, conf = _upsample_cuda.upsample_argmax(x, 9, 12, -1.0, -1.0, False, True, 0)
    ref_labels, ref_conf = upsample_argmax_composite(x, (9, 12), return_confidence=True)
    assert torch.equal(labels, ref_labels)
    torch.testing.assert_close(conf, ref_conf, rtol=1e-5, atol=1e-6)
    labels2, conf2 = _upsample_cuda.upsample_argmax(x, 10, 14, 2.0, 2.0, True, False, 0)
    assert conf2.shape == (0,)
    assert torch.equal(labels2, upsample_argmax_composite(x, scale_factor=2, align_corners=True))


def test_cuda_driver_argmax_half_and_channels_last_emulated(emulated_cuda):
    """The CUDA kernel makes its own compute copy (float16 -> float32, channels-last -> NCHW)."""
    from segengine.ops import _upsample_cuda
    x = _logits((2, 3, 6, 5), torch.float16, seed=42)
    labels, _ = _upsample_cuda.upsample_argmax(x, 11, 9, -1.0, -1.0, False, False, 0)
    assert torch.equal(labels, upsample_argmax_composite(x.float(), (11, 9)))
    cl = _logits((2, 3, 6, 5), torch.float32, seed=43).contiguous(memory_format=torch.channels_last)
    labels, _ = _upsample_cuda.upsample_argmax(cl, 11, 9, -1.0, -1.0, False, False, 0)
    assert torch.equal(labels, upsample_argmax_composite(cl, (11, 9)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cuda_driver_cross_entropy_emulated(emulated_cuda, reduction):
    """The registered CUDA kernels of the forward and backward ops (target check,
    normalisers, kernels, reduction) on the emulation."""
    from segengine.ops import _upsample_cuda
    x, t = _ce_case(seed=43, B=2, C=3, h=4, w=5, H=9, W=7)
    weight = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    red = int(Reduction[reduction.upper()])
    loss, grad = _upsample_cuda.upsample_cross_entropy(x, t, weight, -100, red, 0.1, False, True, 0)
    xr = x.clone().requires_grad_(True)
    ref = upsample_cross_entropy_composite(xr, t, weight=weight, reduction=reduction, label_smoothing=0.1)
    torch.testing.assert_close(loss, ref.detach())
    gout = (torch.rand(t.shape, dtype=torch.float64) if reduction == "none"
            else torch.tensor(1.7, dtype=torch.float64))
    (gref,) = torch.autograd.grad(ref, xr, gout)
    if reduction == "none":
        assert grad.shape == (0,)
    else:
        torch.testing.assert_close(grad * gout, gref)
    gback = _upsample_cuda.upsample_cross_entropy_backward(gout, x, t, weight, -100, red, 0.1,
                                                           False, 0)
    torch.testing.assert_close(gback, gref)


def test_cuda_driver_cross_entropy_rejects_targets_before_launch(emulated_cuda):
    from segengine.ops import _upsample_cuda
    x, t = _ce_case(seed=44, B=2, C=3, h=4, w=5, H=9, W=7)
    t[1, 2, 3] = 3
    with pytest.raises(ValueError, match=r"target holds 3, outside \[0, 3\)"):
        _upsample_cuda.upsample_cross_entropy(x, t, None, -100, int(Reduction.MEAN), 0.0, False,
                                              False, 0)
