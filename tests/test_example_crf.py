"""The CRF-as-RNN example in its small configuration: post-processing and the trained layer
must each beat the network alone on the held-out set (fixed seed)."""

import os
import subprocess
import sys
from pathlib import Path

from segengine.demos import crf_layer


def test_crf_example_improves_mean_iou():
    scores, (x, y, preds) = crf_layer.train_and_evaluate(crf_layer.QUICK, log=lambda *a: None)
    net = scores["network"]
    assert scores["network + dense_crf"] > net + 0.01, scores
    assert scores["network + trained DenseCRF layer"] > net + 0.01, scores
    assert len(preds) == 3 and all(p.shape == y.shape for p in preds)
    img = crf_layer.panel(x, y, preds, n=2)
    assert img.dtype.name == "uint8" and img.shape == (2 * 48, 5 * 48, 3)


def test_example_script_runs(tmp_path):
    script = Path(__file__).resolve().parents[1] / "examples" / "crf_training.py"
    out = tmp_path / "result.png"
    root = str(script.parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    res = subprocess.run([sys.executable, str(script), "--quick", "--out", str(out)],
                         capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr
    assert "trained DenseCRF layer" in res.stdout and out.exists()
