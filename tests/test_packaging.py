"""Packaging facts: ``segengine info``'s build line and compiled-code facts, ``__version__``
from the metadata, ``py.typed`` shipped, the lazy names visible to type checkers, and the
wheels' smoke test (tools/smoke_test.py). The wheel itself is built, repaired and installed
with no compiler by ``.ci/run``."""

from __future__ import annotations

import ast
import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import segengine
from segengine import cli
from segengine._cy import _runtime

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- describe_build

def test_describe_build_manylinux_wheel_names_tag_and_bundled_libraries():
    line = cli.describe_build("installed", wheel_tags=["cp311-cp311-manylinux_2_28_x86_64"],
                              direct_url={"url": "file:///w/segengine-0.1.0-cp311-cp311-manylinux_2_28_x86_64.whl",
                                          "archive_info": {}},
                              bundled=["libgomp-a34b3233.so.1.0.0"])
    assert line == ("binary wheel cp311-cp311-manylinux_2_28_x86_64 (bundled: libgomp-a34b3233.so.1.0.0), "
                    "installed from segengine-0.1.0-cp311-cp311-manylinux_2_28_x86_64.whl")


def test_describe_build_wheel_from_an_index_has_no_origin():
    line = cli.describe_build("installed", wheel_tags=["cp312-cp312-manylinux_2_28_aarch64"])
    assert line == "binary wheel cp312-cp312-manylinux_2_28_aarch64"


def test_describe_build_delocated_macos_wheel_is_a_binary_wheel():
    line = cli.describe_build("installed", wheel_tags=["cp313-cp313-macosx_14_0_arm64"], bundled=["libomp.dylib"])
    assert line.startswith("binary wheel cp313-cp313-macosx_14_0_arm64 (bundled: libomp.dylib)")


def test_describe_build_from_sdist():
    line = cli.describe_build("installed", wheel_tags=["cp311-cp311-linux_x86_64"],
                              direct_url={"url": "file:///tmp/dist/segengine-0.1.0.tar.gz", "archive_info": {}})
    assert line == "built from the sdist segengine-0.1.0.tar.gz on this machine (cp311-cp311-linux_x86_64)"


def test_describe_build_from_a_source_folder_and_from_an_index_sdist():
    folder = cli.describe_build("installed", wheel_tags=["cp311-cp311-linux_x86_64"],
                                direct_url={"url": "file:///src/segengine", "dir_info": {}})
    assert folder == "built from the source folder file:///src/segengine on this machine (cp311-cp311-linux_x86_64)"
    index = cli.describe_build("installed", wheel_tags=["cp311-cp311-linux_x86_64"])
    assert index == "built from source on this machine (cp311-cp311-linux_x86_64)"


def test_describe_build_unrepaired_local_wheel():
    line = cli.describe_build("installed", wheel_tags=["cp311-cp311-linux_x86_64"],
                              direct_url={"url": "file:///d/segengine-0.1.0-cp311-cp311-linux_x86_64.whl",
                                          "archive_info": {}})
    assert line.startswith("wheel built on a machine like this one, not repaired")


def test_describe_build_editable_and_source():
    assert cli.describe_build("editable", location="/src/seg") == \
        "editable install of the source tree /src/seg (compiled in place)"
    assert cli.describe_build("source", location="/src/seg").startswith("source tree /src/seg (not installed")


# --------------------------------------------------------------------------- build_kind

def _fake_install(tmp_path, *, wheel_tag=None, direct_url=None, libs=()):
    """site/segengine/__init__.py + site/segengine-0.1.0.dist-info (+ segengine.libs/)."""
    site = tmp_path / "site"
    (site / "segengine").mkdir(parents=True)
    (site / "segengine" / "__init__.py").write_text("")
    info = site / "segengine-0.1.0.dist-info"
    info.mkdir()
    info.joinpath("METADATA").write_text("Metadata-Version: 2.4\nName: segengine\nVersion: 0.1.0\n")
    if wheel_tag:
        info.joinpath("WHEEL").write_text(f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {wheel_tag}\n")
    if direct_url is not None:
        info.joinpath("direct_url.json").write_text(json.dumps(direct_url))
    for lib in libs:
        (site / "segengine.libs").mkdir(exist_ok=True)
        (site / "segengine.libs" / lib).write_bytes(b"")
    return site, metadata.PathDistribution(info)


def _pretend(monkeypatch, package_init: Path, dists):
    monkeypatch.setattr(segengine, "__file__", str(package_init))
    monkeypatch.setattr(metadata, "distributions", lambda **kw: iter(dists))


def test_build_kind_finds_the_installed_repaired_wheel(tmp_path, monkeypatch):
    site, dist = _fake_install(tmp_path, wheel_tag="cp311-cp311-manylinux_2_28_x86_64",
                               libs=["libgomp-0123abcd.so.1.0.0"])
    _pretend(monkeypatch, site / "segengine" / "__init__.py", [dist])
    assert cli.build_kind() == "binary wheel cp311-cp311-manylinux_2_28_x86_64 (bundled: libgomp-0123abcd.so.1.0.0)"


def test_build_kind_editable_install_points_at_the_checkout(tmp_path, monkeypatch):
    checkout = tmp_path / "checkout"
    (checkout / "segengine").mkdir(parents=True)
    site, dist = _fake_install(tmp_path, wheel_tag="cp311-cp311-linux_x86_64",
                               direct_url={"url": checkout.as_uri(), "dir_info": {"editable": True}})
    _pretend(monkeypatch, checkout / "segengine" / "__init__.py", [dist])
    assert cli.build_kind() == f"editable install of the source tree {checkout.resolve()} (compiled in place)"


def test_build_kind_source_tree_shadowing_an_installed_copy(tmp_path, monkeypatch):
    """An installed wheel whose files are not the imported ones does not describe the import."""
    site, dist = _fake_install(tmp_path, wheel_tag="cp311-cp311-manylinux_2_28_x86_64")
    tree = tmp_path / "tree"
    (tree / "segengine").mkdir(parents=True)
    _pretend(monkeypatch, tree / "segengine" / "__init__.py", [dist])
    assert cli.build_kind() == f"source tree {tree.resolve()} (not installed; compiled in place)"


def test_build_kind_of_this_test_run_is_one_of_the_known_kinds():
    assert cli.build_kind().startswith(("editable install of the source tree", "binary wheel",
                                        "built from", "source tree", "wheel built"))


# --------------------------------------------------------------------------- compiled facts

def test_build_facts_types_and_openmp_agree():
    f = _runtime.build_facts()
    assert set(f) == {"compiler", "cplusplus", "openmp", "openmp_spec", "openmp_library", "isa",
                      "dispatch", "run_time", "cpu"}
    assert f["compiler"].startswith(("GCC ", "Clang ")), f["compiler"]
    assert f["cplusplus"] >= 201703
    assert f["openmp"] is _runtime.openmp_enabled()
    if f["openmp"]:
        assert f["openmp_spec"] and f["openmp_spec"][0].isdigit(), f["openmp_spec"]
        assert f["openmp_library"] and Path(f["openmp_library"]).is_file(), f["openmp_library"]
        assert "omp" in Path(f["openmp_library"]).name
    else:
        assert f["openmp_spec"] is None and f["openmp_library"] is None


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 instruction sets")
def test_build_facts_x86_64_baseline_isa_and_dispatch():
    """The release build targets the x86-64 baseline (no -march: a wheel must run on any
    x86-64 processor); AVX2 is reached only through the run-time dispatch."""
    f = _runtime.build_facts()
    assert "x86_64" in f["isa"] and "SSE2" in f["isa"]
    assert not {"AVX", "AVX2", "FMA", "AVX512F"} & set(f["isa"]), f["isa"]
    assert any("fused upsampling" in d for d in f["dispatch"])
    assert any("dense CRF update passes" in d and "AVX2+FMA" in d for d in f["dispatch"])
    if sys.platform.startswith("linux") and f["compiler"].startswith("GCC"):
        assert any("target_clones" in d for d in f["dispatch"])
    assert set(f["cpu"]) == {"avx2", "fma", "avx512f"}


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file() or platform.machine() != "x86_64",
                    reason="compares with /proc/cpuinfo on x86-64 Linux")
def test_build_facts_cpu_features_match_proc_cpuinfo():
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    cpu = _runtime.build_facts()["cpu"]
    assert cpu == {"avx2": "avx2" in flags, "fma": "fma" in flags, "avx512f": "avx512f" in flags}


def test_info_prints_build_compiler_openmp_and_dispatch(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"segengine {segengine.__version__}"
    assert out[1].startswith("build: ")
    assert any(line.startswith("compiled extensions: yes, ") for line in out)
    assert any(line.startswith(("OpenMP: on, specification", "OpenMP: off")) for line in out)
    assert any(line.startswith("instruction sets compiled for: ") for line in out)
    assert any(line.startswith("run-time dispatch") for line in out)


def test_compiled_lines_without_dispatch_say_so(monkeypatch):
    facts = dict(_runtime.build_facts(), dispatch=[], openmp=False)
    monkeypatch.setattr(_runtime, "build_facts", lambda: facts)
    lines = cli.compiled_lines()
    assert "OpenMP: off (serial kernels)" in lines
    assert "run-time dispatch: none (every kernel runs the instruction sets above)" in lines


# --------------------------------------------------------------------------- version, typing

def test_version_comes_from_the_metadata():
    assert segengine.__version__ == metadata.version("segengine")
    assert "__version__" in dir(segengine)


def test_version_without_metadata_is_a_valid_placeholder(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    assert segengine._version() == "0+unknown"


def test_py_typed_is_package_data_and_in_the_sdist_manifest():
    assert (ROOT / "segengine" / "py.typed").is_file()
    tree = ast.parse((ROOT / "setup.py").read_text())
    package_data = next(kw.value for node in ast.walk(tree) if isinstance(node, ast.Call)
                        for kw in node.keywords if kw.arg == "package_data")
    assert "py.typed" in ast.literal_eval(package_data).get("segengine", [])
    assert "segengine/py.typed" in (ROOT / "MANIFEST.in").read_text()


def test_type_checking_imports_cover_every_lazy_name():
    """``if TYPE_CHECKING:`` in segengine/__init__.py imports exactly the lazily loaded names."""
    tree = ast.parse((ROOT / "segengine" / "__init__.py").read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and getattr(node.test, "id", None) == "TYPE_CHECKING")
    names = {alias.asname or alias.name for node in block.body if isinstance(node, ast.ImportFrom)
             for alias in node.names}
    assert names == set(segengine._LAZY) | set(segengine._SUBMODULES)
    for name in names:  # and each import names the module the lazy loader uses
        node = next(n for n in block.body if isinstance(n, ast.ImportFrom) and name in {a.name for a in n.names})
        assert node.module == segengine._LAZY.get(name, "segengine"), (name, node.module)


def test_smoke_test_script_passes(tmp_path):
    """tools/smoke_test.py, the wheels' test command, passes against this build."""
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "smoke_test.py")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "smoke test passed: 4 checks" in run.stdout
