"""Sphinx configuration of segengine's documentation site.

Build (warnings are errors, no network): ``bash tools/build_docs.sh``.
The API reference is generated from the docstrings (autodoc + numpydoc); the pages are
Markdown (MyST) except the reference pages (reStructuredText). Two local extensions in
``docs/_ext`` generate content at build time: ``segengine_demo_images`` runs the quick
``segengine demo`` modules and ``segengine_bench_tables`` renders
``benchmarks/results/*.json`` as tables.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))

project = "segengine"
author = "the segengine developers"
copyright = "2026, the segengine developers"
try:
    release = metadata.version("segengine")
except metadata.PackageNotFoundError:   # a source tree on sys.path, not installed
    import segengine
    release = segengine.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "segengine_demo_images",
    "segengine_bench_tables",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_generated/**", "Thumbs.db", ".DS_Store"]

# Offline: no intersphinx inventories are fetched, so references to other projects' objects
# (e.g. :func:`skimage.segmentation.watershed` in a docstring) stay plain text.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|torch|scipy|skimage|dask|distributed|zarr|PIL|networkx)(\..*)?"),
]

# -- autodoc / autosummary / numpydoc ------------------------------------------------
autodoc_typehints = "none"          # types are in the numpydoc Parameters sections
autodoc_member_order = "bysource"
autosummary_generate = False        # the reference pages list their objects themselves
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = False

# -- MyST -------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3

# -- HTML -----------------------------------------------------------------------------
html_theme = "furo"
html_title = f"segengine {release}"
html_static_path = ["_static"]
html_css_files = ["segengine.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": True,
}


# -- pages that may not exist yet ----------------------------------------------------
# docs/models.md (training examples in real models) is written separately; the index
# carries a placeholder comment that becomes a toctree entry once the page exists.
OPTIONAL_PAGES = ("models",)
PLACEHOLDER = "<!-- optional pages -->"


def _optional_pages(app, docname, source):
    if docname != root_doc or PLACEHOLDER not in source[0]:
        return
    present = [name for name in OPTIONAL_PAGES if (DOCS / f"{name}.md").exists()]
    if present:
        block = "```{toctree}\n:maxdepth: 1\n:caption: Examples\n\n" + "\n".join(present) + "\n```"
        source[0] = source[0].replace(PLACEHOLDER, block)


# The repository's Markdown pages link to benchmarks/results/ (a folder on GitHub); on the
# site those links go to the page that renders the results.
RESULTS_LINK = re.compile(r"\]\((?:\.\./)+benchmarks/results/[^)]*\)")


def _results_links(app, docname, source):
    if RESULTS_LINK.search(source[0]):
        page = "../" * docname.count("/") + "benchmarks.md"
        source[0] = RESULTS_LINK.sub(f"]({page})", source[0])


def setup(app):
    app.connect("source-read", _optional_pages)
    app.connect("source-read", _results_links)
