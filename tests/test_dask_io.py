"""segengine.dask file I/O: open_array / save_array / is_complete on zarr (v2, v3, groups),
.npy and TIFF; overwrite protection; outputs interrupted mid-write never look complete."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")

from segengine.dask._io import COMPLETE_ATTR, is_complete, open_array, save_array  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def data():
    return np.arange(6 * 7 * 5, dtype=np.int32).reshape(6, 7, 5)


def _partials(folder):
    return [n for n in os.listdir(folder) if ".partial-" in n]


# --------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_round_trip_keeps_chunks_and_marks_complete(tmp_path, data, zarr_format):
    x = da.from_array(data, chunks=(4, 3, 5))
    out = tmp_path / "out.zarr"
    save_array(x, out, zarr_format=zarr_format, scheduler="synchronous")
    assert is_complete(out)
    z = zarr.open_array(str(out), mode="r")
    assert z.metadata.zarr_format == zarr_format
    assert z.attrs[COMPLETE_ATTR] is True
    assert z.chunks == (4, 3, 5)
    y = open_array(out)
    assert y.chunks == x.chunks
    np.testing.assert_array_equal(y.compute(), data)
    assert _partials(tmp_path) == []


def test_irregular_chunks_are_made_regular(tmp_path, data):
    x = da.from_array(data, chunks=((1, 5), (3, 4), (5,)))
    save_array(x, tmp_path / "o.zarr", scheduler="synchronous")
    np.testing.assert_array_equal(open_array(tmp_path / "o.zarr").compute(), data)


@pytest.mark.parametrize("name", ["o.npy", "o.tif", "o.tiff"])
def test_small_formats_round_trip(tmp_path, data, name):
    if name != "o.npy":
        pytest.importorskip("tifffile")
    out = tmp_path / name
    save_array(da.from_array(data, chunks=3), out, scheduler="threads")
    assert is_complete(out)
    y = open_array(out, chunks=(2, 7, 5))
    assert y.chunks[0] == (2, 2, 2)
    np.testing.assert_array_equal(y.compute(), data)
    assert y.dtype == data.dtype
    assert _partials(tmp_path) == []


def test_npy_is_read_lazily_by_path(tmp_path, data):
    np.save(tmp_path / "a.npy", data)
    y = open_array(tmp_path / "a.npy", chunks=2)
    np.save(tmp_path / "a.npy", data + 1)  # same header: blocks read the file when computed
    np.testing.assert_array_equal(y.compute(), data + 1)


def test_numpy_input_is_accepted(tmp_path, data):
    save_array(data, tmp_path / "o.zarr", scheduler="synchronous")
    np.testing.assert_array_equal(open_array(tmp_path / "o.zarr").compute(), data)


def test_foreign_zarr_stores_and_groups(tmp_path, data):
    plain = zarr.create_array(store=str(tmp_path / "plain.zarr"), shape=data.shape, chunks=(3, 7, 5),
                              dtype=data.dtype, zarr_format=2)
    plain[...] = data
    np.testing.assert_array_equal(open_array(tmp_path / "plain.zarr").compute(), data)
    assert not is_complete(tmp_path / "plain.zarr")  # not written by save_array

    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("raw", shape=data.shape, chunks=(6, 7, 5), dtype=data.dtype)[...] = data
    np.testing.assert_array_equal(open_array(tmp_path / "g.zarr", component="raw").compute(), data)
    np.testing.assert_array_equal(open_array(tmp_path / "g.zarr" / "raw").compute(), data)
    with pytest.raises(ValueError, match=r"zarr group; name the array.*\['raw'\]"):
        open_array(tmp_path / "g.zarr")
    with pytest.raises(ValueError, match="has no array 'nope'"):
        open_array(tmp_path / "g.zarr", component="nope")
    with pytest.raises(ValueError, match="not a group"):
        open_array(tmp_path / "plain.zarr", component="raw")


# --------------------------------------------------------------------------- errors

def test_overwrite_protection(tmp_path, data):
    out = tmp_path / "o.zarr"
    save_array(data, out, scheduler="synchronous")
    with pytest.raises(FileExistsError, match="o.zarr' already exists"):
        save_array(data + 1, out, scheduler="synchronous")
    np.testing.assert_array_equal(open_array(out).compute(), data)
    save_array(data + 1, out, overwrite=True, scheduler="synchronous")
    np.testing.assert_array_equal(open_array(out).compute(), data + 1)
    assert sorted(os.listdir(tmp_path)) == ["o.zarr"]  # no temporary or replaced store left


def test_bad_paths_and_formats(tmp_path, data):
    with pytest.raises(ValueError, match=r"must end with \.zarr, \.npy, \.tif or \.tiff"):
        save_array(data, tmp_path / "o.png")
    with pytest.raises(FileNotFoundError, match="folder of output"):
        save_array(data, tmp_path / "no" / "o.zarr")
    with pytest.raises(FileNotFoundError, match="missing.zarr' does not exist"):
        open_array(tmp_path / "missing.zarr")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="directory but not a zarr store"):
        open_array(tmp_path / "empty")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="unsupported format"):
        open_array(tmp_path / "a.txt")
    with pytest.raises(ValueError, match="local filesystem path"):
        open_array("s3://bucket/a.zarr")
    with pytest.raises(TypeError, match="must be a path"):
        open_array(3)
    with pytest.raises(TypeError, match="`x` must be a dask array or a numpy array"):
        save_array([1, 2], tmp_path / "o.zarr")
    np.save(tmp_path / "a.npy", data)
    with pytest.raises(ValueError, match="component=.*zarr stores only"):
        open_array(tmp_path / "a.npy", component="raw")


def test_small_format_size_limit(tmp_path, data):
    with pytest.raises(ValueError, match=r"more than the .* MiB handled in memory.*use a \.zarr"):
        save_array(da.zeros((1024, 1024), chunks=256), tmp_path / "o.npy", max_bytes=2**20)
    assert os.listdir(tmp_path) == []


def test_unknown_shape_is_rejected(tmp_path, data):
    x = da.from_array(data.ravel(), chunks=50)
    with pytest.raises(ValueError, match="unknown shape"):
        save_array(x[x > 3], tmp_path / "o.zarr")


# --------------------------------------------------------------------------- interrupted writes

def _fail_at_block(block, block_info=None, error=RuntimeError):
    if block_info[None]["chunk-location"][0] == 3:
        raise error("boom at block 3")
    return block


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failed_computation_leaves_nothing(tmp_path, data, error):
    x = da.from_array(np.arange(60).reshape(6, 10), chunks=(1, 10)).map_blocks(_fail_at_block, dtype=float,
                                                                               error=error)
    with pytest.raises(error, match="boom at block 3"):
        save_array(x, tmp_path / "o.zarr", scheduler="synchronous")
    assert os.listdir(tmp_path) == []
    assert not is_complete(tmp_path / "o.zarr")


def test_failed_overwrite_keeps_the_old_output(tmp_path, data):
    save_array(np.zeros((6, 10)), tmp_path / "o.zarr", scheduler="synchronous")
    x = da.ones((6, 10), chunks=(1, 10)).map_blocks(_fail_at_block, dtype=float)
    with pytest.raises(RuntimeError, match="boom"):
        save_array(x, tmp_path / "o.zarr", overwrite=True, scheduler="synchronous")
    assert is_complete(tmp_path / "o.zarr")
    np.testing.assert_array_equal(open_array(tmp_path / "o.zarr").compute(), 0)


KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    import numpy as np, dask.array as da
    from segengine.dask._io import save_array

    done = []

    def die_at_fourth_block(block):
        if len(done) == 3:
            os.kill(os.getpid(), signal.SIGKILL)   # the writing process dies mid-write
        done.append(1)
        return block

    x = da.from_array(np.arange(1, 61).reshape(6, 10), chunks=(1, 10)).map_blocks(die_at_fourth_block, dtype=int)
    save_array(x, sys.argv[1], scheduler="synchronous")
""")


def test_killed_writer_leaves_an_incomplete_store_that_is_refused(tmp_path):
    out = tmp_path / "o.zarr"
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    assert not out.exists()
    (partial,) = _partials(tmp_path)
    partial = tmp_path / partial
    z = zarr.open_array(str(partial), mode="r")
    assert z.attrs[COMPLETE_ATTR] is False
    rows = z[...]
    written = [i for i in range(6) if (rows[i] == np.arange(1, 61).reshape(6, 10)[i]).all()]
    assert 1 <= len(written) <= 3  # some blocks were written before the kill, not all
    assert all((rows[i] == 0).all() for i in set(range(6)) - set(written))
    assert not is_complete(out) and not is_complete(partial)
    with pytest.raises(FileNotFoundError, match=r"o\.zarr' does not exist; an interrupted run left .*partial-"):
        open_array(out)
    with pytest.raises(ValueError, match="temporary output of an interrupted run"):
        open_array(partial)
    # the same store under a final-looking name is still refused by its attribute
    os.rename(partial, out)
    assert not is_complete(out)
    with pytest.raises(ValueError, match=r"o\.zarr' is incomplete: a previous run was interrupted"):
        open_array(out)
