"""segengine's ops inside real segmentation networks (docs/models.md).

Trains torchvision's DeepLabV3-ResNet50 and segmentation_models_pytorch's Unet from scratch on
synthetic scenes (:mod:`.data`), each with three heads (:mod:`.heads`): the plain PyTorch loss on
upsampled logits, segengine's fused ``upsample_cross_entropy``, and a trainable
``segengine.nn.DenseCRF`` on top; reports per-step time and peak memory and the held-out mean
IoU after a fixed number of steps. Run from the repository root::

    python -m examples.models.deeplab --quick
    python -m examples.models.unet --quick

``benchmarks/real_models.py`` runs the full configurations and the Cityscapes-resolution
memory measurement.
"""
