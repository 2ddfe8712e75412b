"""The CRF-as-RNN example (examples/crf_training.py) in its small configuration:
post-processing and the trained layer must each beat the network alone on the held-out
set (fixed seed)."""

import runpy
from pathlib import Path

from PIL import Image

from segengine.demos import crf_layer


def test_crf_example_improves_mean_iou(tmp_path, capsys):
    out = tmp_path / "result.png"
    scores = crf_layer.main(["--quick", "--out", str(out)])
    net = scores["network"]
    assert scores["network + dense_crf"] > net + 0.01, scores
    assert scores["network + trained DenseCRF layer"] > net + 0.01, scores
    printed = capsys.readouterr().out
    assert "network + trained DenseCRF layer" in printed
    assert Image.open(out).size == (5 * 48, 4 * 48)


def test_example_script_is_the_demo_module():
    script = Path(__file__).resolve().parents[1] / "examples" / "crf_training.py"
    namespace = runpy.run_path(str(script), run_name="not_main")
    assert namespace["main"] is crf_layer.main
