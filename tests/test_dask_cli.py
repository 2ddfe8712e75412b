"""The ``segengine watershed`` and ``segengine crf`` commands: end-to-end runs on small zarr,
.npy and TIFF files (in process and through the installed command), equality with the Python
API, progress output, exit codes and messages, overwrite protection, interrupted writes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.dask_fixtures import *  # noqa: F401,F403  (dask_client)
from tests.dask_fixtures import sparse_marker_volume

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")

import segengine  # noqa: E402
import segengine.dask as sd  # noqa: E402
from segengine.cli import main  # noqa: E402
from segengine.dask._io import COMPLETE_ATTR, is_complete, open_array  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE, CHUNKS = (20, 24, 24), (10, 12, 12)


@pytest.fixture(scope="module")
def volume():
    """Smooth 3-D image and 12 sparse markers; basins cross the block faces of CHUNKS."""
    return sparse_marker_volume(SHAPE, 12, 2, seed=3)


@pytest.fixture(scope="module")
def crf_batch():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(4, 3, 24, 30)).astype(np.float32)
    image = rng.integers(0, 256, size=(4, 3, 24, 30)).astype(np.uint8)
    return logits, image


def _write(path, array, zarr_format=3):
    path = str(path)
    if path.endswith(".npy"):
        np.save(path, array)
    elif path.endswith((".tif", ".tiff")):
        pytest.importorskip("tifffile").imwrite(path, array)
    else:
        z = zarr.create_array(store=path, shape=array.shape, chunks=CHUNKS[-array.ndim:] if array.ndim == 3
                              else array.shape, dtype=array.dtype, zarr_format=zarr_format)
        z[...] = array
    return path


def _api_watershed(image, markers=None, **kwargs):
    return sd.watershed(da.from_array(image, chunks=CHUNKS), markers, **kwargs).compute(scheduler="synchronous")


# --------------------------------------------------------------------------- watershed

@pytest.mark.parametrize("src, dst, zarr_format", [("in.zarr", "out.zarr", 2), ("in.zarr", "out.zarr", 3),
                                                   ("in.npy", "out.tif", 3), ("in.tif", "out.npy", 3)])
def test_watershed_seeded_equals_api(tmp_path, volume, capsys, src, dst, zarr_format):
    image, markers = volume
    src = _write(tmp_path / src, image, zarr_format)
    mk = _write(tmp_path / ("markers" + os.path.splitext(src)[1]), markers, zarr_format)
    out = str(tmp_path / dst)
    code = main(["watershed", src, out, "--markers", mk, "--chunks", ",".join(map(str, CHUNKS))])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "100% Completed" in err and f"wrote {out}" in err
    assert is_complete(out)
    labels = open_array(out).compute()
    assert labels.dtype == markers.dtype
    np.testing.assert_array_equal(labels, _api_watershed(image, markers))
    np.testing.assert_array_equal(labels, segengine.watershed(image, markers))  # default depth suffices here


def test_watershed_unseeded_with_mask_and_options(tmp_path, volume, capsys):
    image, _ = volume
    mask = np.ones(SHAPE, bool)
    mask[:, :3] = False
    src, msk, out = _write(tmp_path / "in.npy", image), _write(tmp_path / "m.npy", mask), str(tmp_path / "o.zarr")
    # (not with --connectivity 2: in 3-D, watershed lines with connectivity >= 2 are extremely
    # slow in scikit-image 0.26 and in segengine.watershed alike)
    code = main(["watershed", src, out, "--mask", msk, "--chunks", "10,12,12", "--depth", "6",
                 "--watershed-line", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Completed" not in err
    expected = _api_watershed(image, mask=mask, depth=6, watershed_line=True)
    labels = open_array(out).compute()
    assert labels.dtype == np.int32 and (labels[:, :3] == 0).all() and labels.max() > 1
    np.testing.assert_array_equal(labels, expected)


def test_watershed_on_a_cluster_prints_the_dashboard(tmp_path, volume, capsys, dask_client):
    image, markers = volume
    src, mk = _write(tmp_path / "in.zarr", image), _write(tmp_path / "mk.zarr", markers)
    out = str(tmp_path / "o.zarr")
    code = main(["watershed", src, out, "--markers", mk, "--connectivity", "2",
                 "--scheduler", dask_client.scheduler.address])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "dashboard: " in err and "100% Completed" in err
    np.testing.assert_array_equal(open_array(out).compute(), _api_watershed(image, markers, connectivity=2))


# --------------------------------------------------------------------------- crf

@pytest.mark.parametrize("output, dst", [("labels", "o.zarr"), ("probabilities", "o.npy")])
def test_crf_equals_api(tmp_path, crf_batch, capsys, output, dst):
    logits, image = crf_batch
    lg, im, out = _write(tmp_path / "l.npy", logits), _write(tmp_path / "i.zarr", image), str(tmp_path / dst)
    code = main(["crf", lg, im, out, "--chunks", "1,3,24,30", "--iterations", "3", "--bilateral-srgb", "10,12,14",
                 "--gaussian-sxy", "2", "--output", output])
    assert code == 0, capsys.readouterr().err
    result = open_array(out).compute()
    q = segengine.dense_crf(logits, image, iterations=3, gaussian_sxy=2, bilateral_srgb=(10, 12, 14))
    if output == "labels":
        assert result.dtype == np.uint8 and result.shape == (4, 24, 30)
        np.testing.assert_array_equal(result, q.argmax(1))
    else:
        assert result.dtype == np.float32
        np.testing.assert_allclose(result, q, rtol=0, atol=1e-6)


def test_crf_failing_mid_run_leaves_no_complete_output(tmp_path, crf_batch, capsys):
    logits, image = crf_batch
    bad = image.astype(np.float32)
    bad[3, 0, 5, 5] = np.nan  # the last batch item fails inside its block
    lg, im, out = _write(tmp_path / "l.npy", logits), _write(tmp_path / "i.npy", bad), str(tmp_path / "o.zarr")
    code = main(["crf", lg, im, out, "--chunks", "1,3,24,30"])
    err = capsys.readouterr().err
    assert code == 1
    assert "failed (ValueError): image must be finite" in err and "was not written" in err
    assert not os.path.exists(out) and not is_complete(out)
    for name in os.listdir(tmp_path):  # a late chunk write may recreate the removed temporary
        assert name in ("l.npy", "i.npy") or ".partial-" in name
        assert not is_complete(tmp_path / name) or name.endswith(".npy")


def test_ctrl_c_exits_130(tmp_path, volume, capsys, monkeypatch):
    import segengine.dask._cli as cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "save_array", interrupted)
    src, out = _write(tmp_path / "in.npy", volume[0]), str(tmp_path / "o.zarr")
    assert main(["watershed", src, out]) == 130
    assert f"interrupted; {out!r} was not written" in capsys.readouterr().err


# --------------------------------------------------------------------------- exit code 2

def test_overwrite_protection(tmp_path, volume, capsys):
    image, markers = volume
    src, mk, out = _write(tmp_path / "in.npy", image), _write(tmp_path / "mk.npy", markers), str(tmp_path / "o.npy")
    np.save(out, np.zeros(3))
    assert main(["watershed", src, out, "--markers", mk, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"segengine watershed: error: output {out!r} already exists (use --overwrite to replace it)"
    np.testing.assert_array_equal(np.load(out), np.zeros(3))
    assert main(["watershed", src, out, "--markers", mk, "--no-progress", "--overwrite"]) == 0
    np.testing.assert_array_equal(np.load(out), _api_watershed(image, markers))


def test_incomplete_input_is_refused(tmp_path, volume, capsys):
    image, _ = volume
    src = _write(tmp_path / "in.zarr", image)
    zarr.open_array(src, mode="r+").attrs[COMPLETE_ATTR] = False  # as a killed run leaves it
    assert main(["watershed", src, str(tmp_path / "o.zarr")]) == 2
    assert "in.zarr' is incomplete: a previous run was interrupted" in capsys.readouterr().err
    shutil.move(src, src + ".partial-1234")
    assert main(["watershed", src, str(tmp_path / "o.zarr")]) == 2
    assert "does not exist; an interrupted run left" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o.zarr")


@pytest.mark.parametrize("extra, message", [
    (["--chunks", "10,12"], "--chunks has 2 values but"),
    (["--memory-limit", "2GiB"], "--memory-limit applies to --workers only"),
    (["--workers", "1", "--memory-limit", "lots"], "--memory-limit: cannot read 'lots' as a size"),
    (["--markers", "MISSING"], "missing.npy' does not exist"),
    (["--markers", "SMALL"], "shape"),
    (["--depth", "50", "--chunks", "10,12,12"], "`depth` 50 on axis 0 is larger than"),
    ([], "OUT"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, volume, capsys, extra, message):
    image, _ = volume
    src = _write(tmp_path / "in.npy", image)
    np.save(tmp_path / "small.npy", np.ones((3, 3, 3), np.int32))
    extra = [str(tmp_path / "missing.npy") if a == "MISSING" else str(tmp_path / "small.npy") if a == "SMALL"
             else a for a in extra]
    out = str(tmp_path / ("o.png" if not extra else "o.zarr"))
    if not extra:
        message = "must end with .zarr, .npy, .tif or .tiff"
    assert main(["watershed", src, out, *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("segengine watershed: error: ") and message in err, err
    assert not os.path.exists(out)


@pytest.mark.parametrize("argv", [["watershed", "a.npy"], ["watershed", "a.npy", "b.zarr", "--workers", "0"],
                                  ["watershed", "a.npy", "b.zarr", "--workers", "2", "--scheduler", "tcp://x:1"],
                                  ["watershed", "a.npy", "b.zarr", "--chunks", "a,b"],
                                  ["crf", "a.npy", "b.npy", "c.zarr", "--output", "both"]])
def test_argparse_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


# --------------------------------------------------------------------------- the installed command

def _command():
    exe = os.path.join(os.path.dirname(sys.executable), "segengine")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "segengine.cli"]


def test_help_lists_the_commands_without_importing_dask():
    proc = subprocess.run(_command() + ["--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0
    for command in ("info", "demo", "watershed", "crf"):
        assert command in proc.stdout
    check = ("import sys; from segengine.cli import main\n"
             "try: main(['watershed', '--help'])\nexcept SystemExit: pass\n"
             "print('IMPORTED', sorted(m for m in ('dask', 'distributed', 'zarr', 'torch') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert "--markers M" in proc.stdout and "IMPORTED []" in proc.stdout, proc.stdout + proc.stderr


def test_subprocess_run_on_a_local_cluster(tmp_path, volume):
    image, markers = volume
    src, mk = _write(tmp_path / "in.zarr", image), _write(tmp_path / "mk.npy", markers)
    out = str(tmp_path / "o.zarr")
    proc = subprocess.run(_command() + ["watershed", src, out, "--markers", mk, "--workers", "1",
                                        "--threads-per-worker", "2", "--memory-limit", "1GiB"],
                          capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "100% Completed" in proc.stderr and proc.stdout == ""
    np.testing.assert_array_equal(open_array(out).compute(), _api_watershed(image, markers))
