"""Run scikit-image 0.26.0's own watershed tests against ``segengine.watershed``.

Downloads the scikit-image 0.26.0 source distribution from PyPI (not built, not installed),
extracts only its ``test_watershed.py`` into a temporary directory and runs pytest on it
with a conftest that replaces ``skimage.segmentation.watershed`` (and the name the test file
imports, ``skimage.segmentation._watershed.watershed``) with ``segengine.watershed``.
The installed scikit-image provides the helpers the test file imports (``label``,
``peak_local_max``, ...); its watershed is never called.

Usage::

    python tools/run_skimage_watershed_tests.py [--sdist PATH] [pytest arguments...]

``--sdist`` uses a tarball already on disk instead of downloading it. Exit status: pytest's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

VERSION = "0.26.0"
PROJECT_JSON = "https://pypi.org/pypi/scikit-image/json"
VERSION_JSON = f"https://pypi.org/pypi/scikit-image/{VERSION}/json"
# where the file lives in the sdist: the 0.26 layout first, then the older in-package one
TEST_PATHS = ("tests/skimage/segmentation/test_watershed.py",
              "skimage/segmentation/tests/test_watershed.py",
              "src/skimage/segmentation/tests/test_watershed.py")

CONFTEST = '''\
"""Swap scikit-image's watershed for segengine's before the test module is imported."""
import skimage.segmentation
import skimage.segmentation._watershed as _sk_ws

import segengine

_sk_ws.watershed = segengine.watershed
skimage.segmentation.watershed = segengine.watershed


def pytest_collection_finish(session):
    # the test file must call segengine, not the installed scikit-image
    mods = {item.module for item in session.items if getattr(item, "module", None) is not None}
    for mod in mods:
        assert mod.watershed is segengine.watershed, mod
    print(f"\\n[segengine] {len(session.items)} tests; watershed = "
          f"{segengine.watershed.__module__}.{segengine.watershed.__qualname__}")
'''


def _get(url: str, timeout: float = 120.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def sdist_info() -> tuple[str, str | None]:
    """(URL, sha256) of the sdist, from PyPI's JSON API (the version endpoint, else the
    project endpoint's release list; mirrors may serve only one of them)."""
    for api in (VERSION_JSON, PROJECT_JSON):
        try:
            meta = json.loads(_get(api, 60.0))
        except (urllib.error.URLError, OSError, ValueError):
            continue
        files = meta["urls"] if api == VERSION_JSON else meta.get("releases", {}).get(VERSION, [])
        for f in files:
            if f.get("packagetype") == "sdist" and f["filename"].endswith(".tar.gz"):
                return urllib.parse.urljoin(api, f["url"]), f.get("digests", {}).get("sha256")
    raise SystemExit(f"no sdist of scikit-image {VERSION} found through {VERSION_JSON} or {PROJECT_JSON}")


def download_sdist(dest: Path) -> Path:
    url, sha = sdist_info()
    print(f"downloading {url}", flush=True)
    data = _get(url, 600.0)
    if sha and hashlib.sha256(data).hexdigest() != sha:
        raise SystemExit(f"sha256 mismatch for {url}")
    path = dest / Path(urllib.parse.urlparse(url).path).name
    path.write_bytes(data)
    return path


def extract_test_file(sdist: Path, dest: Path) -> Path:
    """Write only test_watershed.py from the tarball into ``dest``."""
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar.getmembers():
            rel = member.name.split("/", 1)[-1]
            if member.isfile() and rel in TEST_PATHS:
                out = dest / "test_watershed.py"
                out.write_bytes(tar.extractfile(member).read())
                print(f"extracted {member.name}", flush=True)
                return out
    raise SystemExit(f"{sdist}: none of {TEST_PATHS} found")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sdist", type=Path, help="scikit-image-0.26.0 .tar.gz already downloaded")
    args, pytest_args = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory(prefix="skimage_ws_") as tmp:
        tmp = Path(tmp)
        sdist = args.sdist if args.sdist else download_sdist(tmp)
        test_dir = tmp / "run"
        test_dir.mkdir()
        test_file = extract_test_file(sdist, test_dir)
        (test_dir / "conftest.py").write_text(CONFTEST)
        cmd = [sys.executable, "-m", "pytest", str(test_file), "-p", "no:cacheprovider",
               "--rootdir", str(test_dir), "-rfEx", *pytest_args]
        return subprocess.call(cmd, cwd=test_dir)


if __name__ == "__main__":
    sys.exit(main())
