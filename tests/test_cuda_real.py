"""The CUDA paths on full-size real inputs, against the CPU paths (GPU only: ``pytest -m cuda``).

The op tests (tests/op_tester.py) run every op on CUDA at small sizes; these run the dense
CRF, the CRF-as-RNN layer, the lattice filter and the fused upsampling at the sizes a user
tries first (scikit-image's astronaut, 512x512; Cityscapes-sized logits), on a side stream as
well as the default one, and compare with the CPU kernels within the issue's agreement bounds.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import segengine
from segengine import _cuda

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not (torch.cuda.is_available() and _cuda.cupy_available()),
                       reason="needs a CUDA GPU and CuPy"),
]

CRF = dict(gaussian_sxy=3, gaussian_compat=3, bilateral_sxy=80, bilateral_srgb=13, bilateral_compat=10)


def _astronaut_batch(B=2, C=21, seed=0):
    import skimage.data

    img = skimage.data.astronaut()                                      # 512 x 512 x 3 uint8
    imgs = np.stack([img, np.ascontiguousarray(img[:, ::-1])][:B])
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(B, C, 16, 16, generator=g) * 3
    logits = F.interpolate(low, (512, 512), mode="bilinear", align_corners=False)
    return logits, torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()


def _agree(q_gpu, q_cpu, max_dq=1e-3, argmax=0.999):
    q_gpu = q_gpu.cpu()
    assert torch.isfinite(q_gpu).all()
    assert (q_gpu - q_cpu).abs().max().item() <= max_dq
    assert (q_gpu.argmax(1) == q_cpu.argmax(1)).double().mean().item() >= argmax


@pytest.mark.parametrize("probabilities", [False, True])
@pytest.mark.parametrize("iterations", [5, 10])
def test_dense_crf_astronaut_matches_cpu(probabilities, iterations):
    logits, image = _astronaut_batch()
    x = torch.softmax(logits, 1) if probabilities else logits
    cpu = segengine.dense_crf(x, image, probabilities=probabilities, iterations=iterations, **CRF)
    gpu = segengine.dense_crf(x.cuda(), image.cuda(), probabilities=probabilities,
                              iterations=iterations, **CRF)
    assert gpu.is_cuda and gpu.shape == cpu.shape and gpu.dtype == cpu.dtype
    _agree(gpu, cpu)


def test_dense_crf_side_stream_and_channels_last():
    logits, image = _astronaut_batch()
    cpu = segengine.dense_crf(logits, image, **CRF)
    x = logits.cuda().contiguous(memory_format=torch.channels_last)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        gpu = segengine.dense_crf(x, image.cuda(), **CRF)
        # poison the inputs on the same stream afterwards: a kernel that ran on another
        # stream, late, would read the poison
        x.fill_(float("nan"))
    s.synchronize()
    _agree(gpu, cpu)


def test_dense_crf_layer_forward_backward_matches_cpu():
    logits, image = _astronaut_batch(C=5)
    logits, image = logits[:, :, :192, :160].contiguous(), image[:, :, :192, :160].contiguous()
    target = logits.argmax(1).roll(7, dims=2)
    outs, grads = {}, {}
    for dev in ("cpu", "cuda"):
        torch.manual_seed(0)
        layer = segengine.nn.DenseCRF(5, iterations=3).to(dev)
        x = logits.clone().to(dev).requires_grad_(True)
        out = layer(x, image.to(dev))
        F.cross_entropy(out, target.to(dev)).backward()
        outs[dev] = out.detach().cpu()
        grads[dev] = [x.grad.cpu()] + [p.grad.cpu() for p in layer.parameters()]
    torch.testing.assert_close(outs["cuda"], outs["cpu"], atol=1e-4, rtol=1e-4)
    for g, c in zip(grads["cuda"], grads["cpu"]):
        torch.testing.assert_close(g, c, atol=1e-5, rtol=1e-3)


def test_permutohedral_filter_5d_astronaut_matches_cpu():
    logits, image = _astronaut_batch(B=1, C=4)
    H = W = 512
    yy, xx = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32),
                            indexing="ij")
    feats = torch.cat([torch.stack([xx / 40, yy / 40])[None], image.float() / 13], 1)   # [1, 5, H, W]
    vals = torch.softmax(logits, 1)
    cpu = segengine.permutohedral_filter(vals, feats, "symmetric")
    gpu = segengine.permutohedral_filter(vals.cuda(), feats.cuda(), "symmetric")
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("align_corners", [False, True])
def test_upsample_argmax_and_cross_entropy_cityscapes_size(align_corners):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 19, 128, 256, generator=g) * 4                 # DeepLab output stride 8
    target = torch.randint(0, 19, (2, 1024, 2048), generator=g)
    target[:, :100] = 255
    full = F.interpolate(logits.double(), (1024, 2048), mode="bilinear", align_corners=align_corners)
    lc, tc = logits.cuda().requires_grad_(True), target.cuda()
    labels = segengine.upsample_argmax(lc.detach(), size=(1024, 2048), align_corners=align_corners)
    ref = full.argmax(1)
    top2 = full.topk(2, 1).values
    decided = (top2[:, 0] - top2[:, 1]) > 1e-4                               # float32 cannot split closer
    assert (labels.cpu()[decided] == ref[decided]).all()
    loss = segengine.upsample_cross_entropy(lc, tc, ignore_index=255, align_corners=align_corners)
    loss.backward()
    xd = logits.detach().double().requires_grad_(True)
    ref_loss = F.cross_entropy(F.interpolate(xd, (1024, 2048), mode="bilinear", align_corners=align_corners),
                               target, ignore_index=255)
    ref_loss.backward()
    assert abs(loss.item() - ref_loss.item()) <= 1e-5 * abs(ref_loss.item())
    torch.testing.assert_close(lc.grad.cpu().double(), xd.grad, atol=1e-9, rtol=1e-4)
