"""Dense CRF: segengine.dense_crf vs pydensecrf2 at the same settings (lattice build included).

Cases (issue 3): a 375x500 image with 21 classes at 5 and 10 iterations, a batch of 8 such
images (pydensecrf: one after the other), and a 1024x2048 image; pydensecrf's default
parameters (Gaussian sxy 3 compat 3, bilateral sxy 80 srgb 13 compat 10, symmetric).
Inputs: scikit-image's astronaut / coffee / chelsea resized, and smooth random class
probabilities (low-resolution noise upsampled), the same for both. ``check``: max |dQ| and
the fraction of pixels with the same argmax. ``python -m benchmarks --device cuda`` times the
CUDA path instead (checked against the CPU path).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import segengine
from benchmarks.common import measure

CASES = [  # (name, B, H, W, C, iterations, repeat)
    ("375x500 21 classes 5 it", 1, 375, 500, 21, 5, 5),
    ("375x500 21 classes 10 it", 1, 375, 500, 21, 10, 5),
    ("batch 8 375x500 21 classes 5 it", 8, 375, 500, 21, 5, 2),
    ("1024x2048 21 classes 5 it", 1, 1024, 2048, 21, 5, 2),
]
QUICK = [
    ("120x160 21 classes 5 it", 1, 120, 160, 21, 5, 3),
    ("batch 2 120x160 21 classes 5 it", 2, 120, 160, 21, 5, 3),
    ("256x512 21 classes 5 it", 1, 256, 512, 21, 5, 2),
]
PARAMS = dict(gaussian_sxy=3, gaussian_compat=3, bilateral_sxy=80, bilateral_srgb=13, bilateral_compat=10)


def _inputs(B, H, W, C, seed=0):
    import skimage.data
    import skimage.transform

    names = ["astronaut", "coffee", "chelsea"]
    imgs = []
    for b in range(B):
        im = getattr(skimage.data, names[b % 3])()
        im = skimage.transform.resize(im, (H, W), anti_aliasing=False, preserve_range=True)
        imgs.append(np.ascontiguousarray(im.astype(np.uint8)))
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(B, C, max(2, H // 32), max(2, W // 32), generator=g) * 3
    probs = torch.softmax(F.interpolate(low, (H, W), mode="bilinear", align_corners=False), 1)
    return np.stack(imgs), probs.numpy().astype(np.float32)


def _pydensecrf(imgs, probs, iterations):
    import pydensecrf.densecrf as dcrf

    B, C, H, W = probs.shape
    out = np.empty_like(probs)
    for b in range(B):
        d = dcrf.DenseCRF2D(W, H, C)
        d.setUnaryEnergy(np.ascontiguousarray(-np.log(np.clip(probs[b], 1e-5, 1.0)).reshape(C, -1)))
        d.addPairwiseGaussian(sxy=PARAMS["gaussian_sxy"], compat=PARAMS["gaussian_compat"])
        d.addPairwiseBilateral(sxy=PARAMS["bilateral_sxy"], srgb=PARAMS["bilateral_srgb"], rgbim=imgs[b],
                               compat=PARAMS["bilateral_compat"])
        out[b] = np.array(d.inference(iterations)).reshape(C, H, W)
    return out


def _have_peer() -> bool:
    try:
        import pydensecrf.densecrf  # noqa: F401
    except ImportError:
        return False
    return True


def _agreement(q, ref) -> str:
    return (f"max|dQ| {np.abs(q - ref).max():.1e}, argmax agree "
            f"{100 * (q.argmax(1) == ref.argmax(1)).mean():.3f}%")


def run(quick: bool = False, device: str = "cpu") -> list[dict]:
    """Rows for ``device``: "cpu" (segengine's CPU path vs pydensecrf) or "cuda" (the CUDA
    path vs pydensecrf, checked against segengine's CPU path)."""
    have_peer = _have_peer()
    rows = []
    for name, B, H, W, C, it, repeat in (QUICK if quick else CASES):
        imgs, probs = _inputs(B, H, W, C)
        image_t = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous().to(device)
        probs_t = torch.from_numpy(probs).to(device)

        def ours():
            q = segengine.dense_crf(probs_t, image_t, probabilities=True, iterations=it, **PARAMS)
            if device == "cuda":
                torch.cuda.synchronize()
            return q

        q = ours().cpu().numpy()
        if device == "cuda":
            cpu = segengine.dense_crf(probs_t.cpu(), image_t.cpu(), probabilities=True,
                                      iterations=it, **PARAMS).numpy()
            check = "vs segengine CPU: " + _agreement(q, cpu)
            notes = torch.cuda.get_device_name(0)
        else:
            check = _agreement(q, _pydensecrf(imgs, probs, it)) if have_peer else ""
            notes = f"{torch.get_num_threads()} threads"
        rows.append(measure("dense_crf", name, "segengine", ours, repeat=repeat, check=check,
                            notes=notes))
        if have_peer:
            rows.append(measure("dense_crf", name, "pydensecrf", lambda: _pydensecrf(imgs, probs, it),
                                repeat=repeat, check=check, notes="CPU, single thread (its only mode)"))
    return rows
