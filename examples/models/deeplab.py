"""torchvision's DeepLabV3-ResNet50, trained from scratch with each head of :mod:`.heads`.

    python -m examples.models.deeplab [--quick] [--head plain|fused|crf|all] [--steps N] [--json out.json]

(from the repository root; needs torchvision). The model is
``torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None)``.
Its ``forward`` upsamples the classifier's output to the input size inside the model; the
heads need the logits before that, so :class:`DeepLabV3LowRes` calls the model's own
``backbone`` and ``classifier`` and stops there (output stride 8). With the plain head the
result is exactly torchvision's ``model(x)["out"]`` followed by ``F.cross_entropy``.
"""

from __future__ import annotations

import torch
from torch import nn

from .data import NUM_CLASSES, normalize
from .train import Config, main_for

OUTPUT_STRIDE = 8
DEFAULTS = Config(size=64, train_images=256, heldout_images=64, batch=4, steps=40)
QUICK = Config(size=32, train_images=8, heldout_images=4, batch=2, steps=2, eval_batch=4)


class DeepLabV3LowRes(nn.Module):
    """DeepLabV3-ResNet50 (torchvision, random initialisation) without its final upsampling.

    ``forward(images)``: float32 ``[B, 3, H, W]`` in 0..255 -> logits ``[B, C, ceil(H/8), ceil(W/8)]``.
    """

    output_stride = OUTPUT_STRIDE

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        try:
            from torchvision.models.segmentation import deeplabv3_resnet50
        except ImportError as e:
            raise ImportError(f"this example needs torchvision built for torch {torch.__version__} "
                              f"(pip install -e '.[examples]'): {e}") from e
        model = deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=num_classes,
                                   aux_loss=False)
        self.backbone = model.backbone
        self.classifier = model.classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.backbone(normalize(images))["out"])


def describe(args=None) -> dict:
    return {"name": "DeepLabV3-ResNet50 (torchvision)", "key": "deeplabv3_resnet50",
            "output_stride": OUTPUT_STRIDE}


def main(argv=None) -> dict:
    return main_for(__doc__, DEFAULTS, QUICK, describe, lambda args: DeepLabV3LowRes(), argv)


if __name__ == "__main__":
    main()
