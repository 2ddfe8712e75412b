"""examples/models: DeepLabV3-ResNet50 (torchvision) and Unet (segmentation_models_pytorch) with
the plain, fused and DenseCRF heads, in their --quick configuration.

Skipped when torchvision / segmentation_models_pytorch cannot be imported (the examples extra:
``pip install -e .[examples]``, with a torchvision built for the installed torch).
"""

import importlib
import json
import math

import pytest
import torch


def _require(name: str):
    """Import ``name`` or skip; a torchvision built for another torch raises at import, not
    only ImportError, so any exception skips (with the reason)."""
    try:
        return importlib.import_module(name)
    except Exception as e:  # noqa: BLE001 - the reason is shown in the skip message
        pytest.skip(f"{name} is not importable ({type(e).__name__}: {e}); the model examples need "
                    f"the examples extra: pip install -e .[examples] (torchvision matching torch)")


def _check_report(report: dict, json_path, steps: int) -> None:
    """The report of one driver run: three heads, per-step time/memory/loss, held-out mIoU;
    the plain and fused heads start from the same network on the same batch, so their first
    losses agree (later steps drift apart: Adam's first update is about lr * sign(grad), which
    rounding flips for the near-zero gradients; the gradients are compared in
    test_deeplab_low_resolution_path_and_fused_head)."""
    assert json.loads(json_path.read_text())["results"][0]["head"] == "plain"
    res = {r["head"]: r for r in report["results"]}
    assert list(res) == ["plain", "fused", "crf"]
    for name, r in res.items():
        assert len(r["steps"]) == steps, name
        for s in r["steps"]:
            assert s["time_s"] > 0 and math.isfinite(s["loss"]) and s["peak_extra_mb"] >= 0, (name, s)
        assert 0.0 <= r["miou"] <= 1.0, (name, r["miou"])
        assert r["median_step_s"] > 0 and r["peak_step_mb"] >= 0
    plain, fused = res["plain"]["steps"], res["fused"]["steps"]
    assert fused[0]["loss"] == pytest.approx(plain[0]["loss"], rel=1e-5)


def test_deeplab_low_resolution_path_and_fused_head():
    """backbone + classifier, then the plain head's upsampling, is torchvision's forward; the
    fused loss on those low-resolution logits gives the plain loss and parameter gradients."""
    seg = _require("torchvision.models.segmentation")
    from examples.models.data import normalize
    from examples.models.deeplab import DeepLabV3LowRes
    from examples.models.heads import FusedHead, PlainHead, upsample
    torch.manual_seed(0)
    net = DeepLabV3LowRes(6).eval()   # eval: no dropout, BatchNorm's running statistics
    torch.manual_seed(0)
    theirs = seg.deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=6,
                                    aux_loss=False).eval()
    x = torch.rand(1, 3, 40, 56) * 255
    t = torch.randint(0, 6, (1, 40, 56))
    with torch.no_grad():
        low = net(x)
        assert low.shape[-2:] == (5, 7)
        torch.testing.assert_close(upsample(low, x.shape[-2:]), theirs(normalize(x))["out"],
                                   rtol=0, atol=0)
    results = []
    for head in (PlainHead(), FusedHead()):
        net.zero_grad(set_to_none=True)
        loss = head.loss(net(x), x, t)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in net.parameters()]))
    (lp, gp), (lf, gf) = results
    torch.testing.assert_close(lf, lp, rtol=1e-6, atol=0)
    scale = max(float(g.abs().max()) for g in gp)
    for a, b in zip(gf, gp):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("driver, needs, stride", [("deeplab", "torchvision", 8),
                                                  ("unet", "segmentation_models_pytorch", 4)])
def test_driver_quick(driver, needs, stride, tmp_path):
    _require(needs)
    module = importlib.import_module(f"examples.models.{driver}")
    out = tmp_path / f"{driver}.json"
    report = module.main(["--quick", "--json", str(out)])
    assert report["model"]["output_stride"] == stride
    _check_report(report, out, module.QUICK.steps)


def test_unet_output_strides():
    """The cut decoder predicts at H/s; stride 1 is smp's Unet unchanged."""
    smp = _require("segmentation_models_pytorch")
    from examples.models.data import normalize
    from examples.models.unet import DECODER_CHANNELS, UnetAtStride
    x = torch.rand(1, 3, 64, 96) * 255
    with torch.no_grad():
        for s in (4, 2, 1):
            assert UnetAtStride(6, s, "resnet18").eval()(x).shape == (1, 6, 64 // s, 96 // s)
        torch.manual_seed(0)
        ours = UnetAtStride(6, 1, "resnet18").eval()
        torch.manual_seed(0)
        theirs = smp.Unet("resnet18", encoder_weights=None, classes=6,
                          decoder_channels=DECODER_CHANNELS).eval()
        torch.testing.assert_close(ours(x), theirs(normalize(x)), rtol=0, atol=0)
    with pytest.raises(ValueError, match="output_stride"):
        UnetAtStride(6, 8)


def test_real_models_export_with_fused_ops():
    """torch.export of DeepLabV3-ResNet50 + upsample_argmax and of Unet (stride 4) +
    upsample_cross_entropy: the segengine op stays one node and the program runs as eager."""
    _require("torchvision")
    _require("segmentation_models_pytorch")
    from examples.models.deeplab import DeepLabV3LowRes
    from examples.models.heads import FusedHead
    from examples.models.unet import UnetAtStride

    class Predict(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net, self.head = net, FusedHead()

        def forward(self, images):
            return self.head.predict(self.net(images), images)

    class Loss(Predict):
        def forward(self, images, target):
            return self.head.loss(self.net(images), images, target)

    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32) * 255
    t = torch.randint(0, 6, (2, 32, 32))
    for model, args, op in [(Predict(DeepLabV3LowRes(6)).eval(), (x,), "upsample_argmax"),
                            (Loss(UnetAtStride(6, 4, "resnet18")).eval(), (x, t), "upsample_cross_entropy")]:
        ep = torch.export.export(model, args)
        targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
        assert f"segengine.{op}.default" in targets
        with torch.no_grad():
            torch.testing.assert_close(ep.module()(*args), model(*args), rtol=1e-6, atol=1e-6)


# -------------------------------------------- the parts that need neither package (any venv)

def test_scenes_are_seeded_and_labelled():
    from examples.models.data import NUM_CLASSES, make_scenes, train_and_heldout
    a, b = make_scenes(6, 32, seed=3), make_scenes(6, 32, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.images.shape == (6, 3, 32, 32) and a.images.dtype == torch.float32
    assert a.labels.shape == (6, 32, 32) and a.labels.dtype == torch.int64
    assert 0 <= float(a.images.min()) and float(a.images.max()) <= 255
    train, held = train_and_heldout(6, 6, 32, seed=3)
    assert torch.equal(train.images, a.images) and not torch.equal(held.images, a.images)
    many = make_scenes(40, 48, seed=0).labels
    assert set(many.unique().tolist()) == set(range(NUM_CLASSES))
    with pytest.raises(ValueError, match="n must be"):
        make_scenes(0, 32, seed=0)
    with pytest.raises(ValueError, match="size must be"):
        make_scenes(2, 8, seed=0)


def test_heads_plain_and_fused_agree():
    from examples.models.heads import CRFHead, make_head
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, 8, 8, generator=g)
    images = torch.rand(2, 3, 32, 32, generator=g) * 255
    target = torch.randint(0, 6, (2, 32, 32), generator=g)
    plain, fused = make_head("plain", 6), make_head("fused", 6)
    torch.testing.assert_close(fused.loss(logits, images, target), plain.loss(logits, images, target))
    assert torch.equal(fused.predict(logits, images), plain.predict(logits, images))
    crf = make_head("crf", 6)
    assert isinstance(crf, CRFHead) and len(list(crf.parameters())) == 3
    assert crf.predict(logits, images).shape == (2, 32, 32)
    with pytest.raises(ValueError, match="head must be one of"):
        make_head("softmax", 6)


def test_step_meter_sees_an_allocation():
    import time

    from examples.models.measure import StepMeter
    with StepMeter() as m:
        x = torch.ones(64 * 2**20 // 4)          # 64 MiB, touched
        time.sleep(0.05)                         # alive for 50 samples
        del x
    assert m.seconds > 0 and m.peak_extra_mb > 48


def test_command_line_rejects_bad_budgets():
    from examples.models.train import Config, config_from, parser
    ap = parser("test", Config())
    assert config_from(ap.parse_args(["--steps", "3"]), Config(), Config(steps=1)).steps == 3
    assert config_from(ap.parse_args(["--quick"]), Config(), Config(steps=1)).steps == 1
    with pytest.raises(SystemExit, match="--steps must be >= 1"):
        config_from(ap.parse_args(["--steps", "0"]), Config(), Config())
