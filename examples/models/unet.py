"""segmentation_models_pytorch's Unet, trained from scratch with each head of :mod:`.heads`.

    python -m examples.models.unet [--quick] [--output-stride 4|2|1] [--encoder resnet34]
                                   [--head plain|fused|crf|all] [--steps N] [--json out.json]

(from the repository root; needs segmentation_models_pytorch). The model is
``smp.Unet(encoder, encoder_weights=None, decoder_channels=(256, 128, 64, 32, 16))``.

A Unet predicts at full resolution by design: its last decoder blocks run at strides 2 and 1,
so there is nothing for a fused upsampling loss to save. ``--output-stride 4`` (the default)
keeps the decoder's first three blocks (strides 16, 8, 4, with their skip connections) and
puts smp's ``SegmentationHead`` on the stride-4 features (64 channels): the heads then
upsample x4. ``--output-stride 1`` is the unchanged Unet (the plain head then applies
``F.cross_entropy`` directly, as smp's users do).
"""

from __future__ import annotations

import torch
from torch import nn

from .data import NUM_CLASSES, normalize
from .train import Config, main_for

DECODER_CHANNELS = (256, 128, 64, 32, 16)   # smp's default; block i runs at stride 2**(4 - i)
DEFAULTS = Config(size=64, train_images=256, heldout_images=64, batch=4, steps=80)
QUICK = Config(size=32, train_images=8, heldout_images=4, batch=2, steps=2, eval_batch=4)


class UnetAtStride(nn.Module):
    """smp Unet (random initialisation) predicting at ``output_stride`` 1, 2 or 4.

    ``forward(images)``: float32 ``[B, 3, H, W]`` in 0..255 (H, W multiples of 32) -> logits
    ``[B, C, H/s, W/s]``.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, output_stride: int = 4,
                 encoder: str = "resnet34"):
        super().__init__()
        if output_stride not in (1, 2, 4):
            raise ValueError(f"output_stride must be 1, 2 or 4, got {output_stride!r}")
        try:
            import segmentation_models_pytorch as smp
            from segmentation_models_pytorch.base import SegmentationHead
        except ImportError as e:
            raise ImportError(f"this example needs segmentation_models_pytorch "
                              f"(pip install -e '.[examples]'): {e}") from e
        self.output_stride = output_stride
        self.unet = smp.Unet(encoder, encoder_weights=None, classes=num_classes,
                             decoder_channels=DECODER_CHANNELS)
        keep = len(DECODER_CHANNELS) - output_stride.bit_length() + 1
        if keep < len(DECODER_CHANNELS):
            # smp's UnetDecoder.forward runs the blocks it holds, each upsampling to the next
            # skip connection's size: with the first `keep` blocks it stops at stride s
            self.unet.decoder.blocks = self.unet.decoder.blocks[:keep]
            self.unet.segmentation_head = SegmentationHead(DECODER_CHANNELS[keep - 1], num_classes,
                                                           kernel_size=3)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.unet(normalize(images))
        H, W = images.shape[-2:]
        expect = (H // self.output_stride, W // self.output_stride)
        if tuple(logits.shape[-2:]) != expect:
            raise RuntimeError(f"this segmentation_models_pytorch Unet gave logits of size "
                               f"{tuple(logits.shape[-2:])}, expected {expect} at output stride "
                               f"{self.output_stride}: its decoder no longer stops after the kept blocks")
        return logits


def describe(args) -> dict:
    s = args.output_stride
    name = f"Unet-{args.encoder} (smp" + (", unchanged)" if s == 1 else f", decoder cut at stride {s})")
    return {"name": name, "key": f"unet_{args.encoder}_os{s}", "output_stride": s,
            "encoder": args.encoder}


def _extra(ap) -> None:
    ap.add_argument("--output-stride", type=int, default=4, choices=(1, 2, 4))
    ap.add_argument("--encoder", default="resnet34", help="any smp encoder (default resnet34)")


def main(argv=None) -> dict:
    return main_for(__doc__, DEFAULTS, QUICK, describe,
                    lambda args: UnetAtStride(NUM_CLASSES, args.output_stride, args.encoder),
                    argv, extra_args=_extra)


if __name__ == "__main__":
    main()
