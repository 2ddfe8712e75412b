"""The three training heads compared by the examples, on a network's low-resolution logits.

Each head turns logits ``[B, C, h, w]`` (a network's output at its output stride) into a
training loss against full-resolution labels ``[B, H, W]`` and into predicted labels:

- ``plain``: ``F.interpolate`` to ``H x W`` + ``F.cross_entropy`` -- what torchvision's
  segmentation models do (their ``forward`` upsamples, the loss runs on the result);
- ``fused``: :func:`segengine.upsample_cross_entropy` on the low-resolution logits (same loss and
  gradient, never a ``[B, C, H, W]`` tensor) and :func:`segengine.upsample_argmax` to predict;
- ``crf``: ``F.interpolate`` + a trainable :class:`segengine.nn.DenseCRF` (CRF-as-RNN) at full
  resolution, ``F.cross_entropy`` on its refined logits; trained end to end with the network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import segengine
from segengine.nn import DenseCRF

HEADS = ("plain", "fused", "crf")


def upsample(logits: torch.Tensor, size) -> torch.Tensor:
    """Bilinear upsampling as torchvision's segmentation models do (no-op at the same size)."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


class PlainHead(nn.Module):
    """``F.interpolate`` + ``F.cross_entropy`` on full-resolution logits."""

    def loss(self, logits: torch.Tensor, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(upsample(logits, target.shape[-2:]), target)

    def predict(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        return upsample(logits, images.shape[-2:]).argmax(1)


class FusedHead(nn.Module):
    """:func:`segengine.upsample_cross_entropy` / :func:`segengine.upsample_argmax`."""

    def loss(self, logits: torch.Tensor, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return segengine.upsample_cross_entropy(logits, target)

    def predict(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        return segengine.upsample_argmax(logits, size=tuple(images.shape[-2:]))


class CRFHead(nn.Module):
    """``F.interpolate`` + :class:`segengine.nn.DenseCRF` (its parameters train with the
    network) + ``F.cross_entropy``. ``images`` are the raw 0..255 images (the bilateral kernel's
    colour features)."""

    def __init__(self, num_classes: int, **crf_settings):
        super().__init__()
        settings = dict(iterations=5, gaussian_sxy=3.0, gaussian_compat=3.0, bilateral_sxy=10.0,
                        bilateral_srgb=20.0, bilateral_compat=6.0)
        settings.update(crf_settings)
        self.crf = DenseCRF(num_classes, **settings)

    def refine(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        return self.crf(upsample(logits, images.shape[-2:]), images)

    def loss(self, logits: torch.Tensor, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.refine(logits, images), target)

    def predict(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        return self.refine(logits, images).argmax(1)


def make_head(name: str, num_classes: int) -> nn.Module:
    """The head called ``name`` (one of :data:`HEADS`)."""
    if name == "plain":
        return PlainHead()
    if name == "fused":
        return FusedHead()
    if name == "crf":
        return CRFHead(num_classes)
    raise ValueError(f"head must be one of {HEADS}, got {name!r}")
