"""Sphinx extension: benchmark tables rendered from ``benchmarks/results/*.json``.

``python -m benchmarks`` writes each run as ``<stem>.json`` (the rows) beside ``<stem>.md``
(the same rows as Markdown, under a header with the date, the command and the environment,
and any note added by hand). The directive

.. code-block:: rst

   .. benchmark-table:: cpu2-crf
      :ops: dense_crf
      :chart:

renders the rows of the JSON file as a table (the columns of the Markdown file), after the
provenance found in the Markdown file's header (every line between its title and its table)
and followed by the rows' notes. ``:ops:`` keeps the rows of some ops only (comma
separated); ``:chart:`` adds ``<stem>.png`` when it exists. ``.. benchmark-others::``, placed
after them, renders every other JSON file of the folder (a file added later is shown without
editing the page); a file whose rows are not ``python -m benchmarks`` rows is shown as a
generic table of its scalar fields. Every file read is a build dependency, so a new
benchmark run rebuilds the page.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

COLUMNS = ("op", "case", "impl", "median (ms)", "speed-up of segengine",
           "peak extra memory (MiB)", "check")
NUMERIC = {3, 4, 5}


def results_dir(app) -> Path:
    return Path(app.srcdir).parent / "benchmarks" / "results"


STANDARD_KEYS = {"op", "case", "impl", "median_s", "peak_mb", "check"}


def load_rows(path: Path, ops=None) -> tuple[str, list[dict]]:
    """``(machine, rows)`` of a results JSON file, rows filtered to ``ops`` when given."""
    data = json.loads(path.read_text())
    rows = [r for r in data["rows"] if ops is None or r["op"] in ops]
    return data["machine"], rows


def is_standard(data) -> bool:
    """Whether ``data`` is a ``python -m benchmarks`` results file."""
    return (isinstance(data, dict) and isinstance(data.get("rows"), list) and "machine" in data
            and all(isinstance(r, dict) and STANDARD_KEYS <= set(r) for r in data["rows"]))


def scalar(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def generic_rows(data) -> tuple[list[str], list[str], list[list[str]]]:
    """``(facts, columns, rows)`` of any JSON results file: its top-level scalars as
    ``key: value`` lines, and the scalar fields of its first list of objects as a table."""
    if isinstance(data, list):
        data = {"rows": data}
    facts = [f"{k}: {v}" for k, v in data.items() if scalar(v)]
    records = next((v for v in data.values()
                    if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)), [])
    columns: list[str] = []
    for r in records:
        columns += [k for k, v in r.items() if scalar(v) and k not in columns]
    fmt = (lambda v: "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v))
    return facts, columns, [[fmt(r.get(c)) for c in columns] for r in records]


def cells(row: dict, gpu: bool = False) -> list[str]:
    """One table row as text, formatted as ``benchmarks.__main__.markdown`` does (with the
    peak GPU memory column when ``gpu``)."""
    ratio = row.get("ratio")
    speed = "" if ratio is None or row["impl"] == "segengine" else f"{ratio:.1f}x"
    gpu_mb = [f"{row['gpu_peak_mb']:.0f}" if "gpu_peak_mb" in row else ""] if gpu else []
    return [row["op"], row["case"], row["impl"], f"{row['median_s'] * 1e3:.1f}", speed,
            f"{row['peak_mb']:.0f}", *gpu_mb, row["check"]]


def header_lines(md_path: Path) -> list[str]:
    """The lines between the Markdown file's title and its first table row (provenance)."""
    if not md_path.exists():
        return []
    out = []
    for line in md_path.read_text().splitlines()[1:]:
        if line.startswith("|"):
            break
        out.append(line)
    return out


def note_lines(rows: list[dict]) -> list[str]:
    """The rows' notes; a note shared by every row of an implementation is given once."""
    by_impl: dict[str, list[dict]] = {}
    for r in rows:
        by_impl.setdefault(r["impl"], []).append(r)
    out = []
    for impl, group in by_impl.items():
        notes = {r.get("notes") or "" for r in group}
        if len(notes) == 1 and len(group) > 1:
            note = notes.pop()
            if note:
                out.append(f"{impl} (every case): {note}")
        else:
            out += [f"{r['case']} / {impl}: {r['notes']}" for r in group if r.get("notes")]
    return out


def inline(text: str) -> list[nodes.Node]:
    """Text with Markdown ``code`` spans as docutils nodes (the headers use nothing else)."""
    parts = re.split(r"`([^`]*)`", text)
    return [nodes.literal(p, p) if i % 2 else nodes.Text(p) for i, p in enumerate(parts) if p]


def paragraphs(lines: list[str]) -> list[nodes.Node]:
    """Markdown paragraphs and ``- `` bullet lists as docutils nodes."""
    out: list[nodes.Node] = []
    para: list[str] = []
    bullets = None

    def flush():
        nonlocal para
        if para:
            out.append(nodes.paragraph("", "", *inline(" ".join(para))))
            para = []

    for line in lines + [""]:
        if line.startswith("- "):
            flush()
            if bullets is None:
                bullets = nodes.bullet_list()
                out.append(bullets)
            bullets += nodes.list_item("", nodes.paragraph("", "", *inline(line[2:])))
        elif not line.strip():
            flush()
            bullets = None
        else:
            if bullets is not None and line.startswith("  "):
                bullets[-1][0] += inline(" " + line.strip())
                continue
            bullets = None
            para.append(line.strip())
    return out


def table(columns, rows: list[list[str]], numeric=frozenset()) -> nodes.table:
    """A docutils table of text cells; columns in ``numeric`` are right-aligned."""
    tbl = nodes.table(classes=["segengine-bench"])
    group = nodes.tgroup(cols=len(columns))
    tbl += group
    for _ in columns:
        group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    group += head
    hrow = nodes.row()
    head += hrow
    for name in columns:
        hrow += nodes.entry("", nodes.paragraph("", name))
    body = nodes.tbody()
    group += body
    for cells_ in rows:
        brow = nodes.row()
        body += brow
        for i, text in enumerate(cells_):
            entry = nodes.entry("", nodes.paragraph("", text))
            if i in numeric:
                entry["classes"].append("numeric")
            brow += entry
    return tbl


def shown(env) -> dict:
    """``{docname: {stem, ...}}`` of the files rendered by ``benchmark-table``."""
    if not hasattr(env, "segengine_bench_shown"):
        env.segengine_bench_shown = {}
    return env.segengine_bench_shown


def render(directive: SphinxDirective, stem: str, ops=None, chart: bool = False) -> list[nodes.Node]:
    """The nodes of one results file: provenance, table, notes, chart."""
    folder = results_dir(directive.env.app)
    path = folder / f"{stem}.json"
    if not path.exists():
        raise directive.error(f"no results file {path}")
    directive.env.note_dependency(str(path))
    md = folder / f"{stem}.md"
    if md.exists():
        directive.env.note_dependency(str(md))
    data = json.loads(path.read_text())
    source = nodes.literal("", f"benchmarks/results/{stem}.json")
    if not is_standard(data):
        facts, columns, rows = generic_rows(data)
        out: list[nodes.Node] = [nodes.paragraph("", "", nodes.Text("Source: "), source, nodes.Text("."))]
        out += paragraphs(header_lines(md)) + paragraphs([f"- {f}" for f in facts])
        if columns:
            out.append(table(columns, rows))
        return out
    machine, rows = load_rows(path, ops)
    if not rows:
        raise directive.error(f"no rows for ops {sorted(ops)} in {path.name}")
    out = [nodes.paragraph("", "", nodes.Text(f"Machine: {machine}. Source: "), source, nodes.Text("."))]
    out += paragraphs(header_lines(md))
    if any("gpu_peak_mb" in r for r in rows):
        columns = COLUMNS[:-1] + ("peak GPU memory (MiB)", COLUMNS[-1])
        out.append(table(columns, [cells(r, gpu=True) for r in rows], NUMERIC | {6}))
    else:
        out.append(table(COLUMNS, [cells(r) for r in rows], NUMERIC))
    notes = note_lines(rows)
    if notes:
        out.append(nodes.paragraph("", "Notes:"))
        out += paragraphs([f"- {n}" for n in notes])
    png = folder / f"{stem}.png"
    if chart and png.exists():
        directive.env.note_dependency(str(png))
        uri = (Path("/") / ".." / "benchmarks" / "results" / png.name).as_posix()
        out.append(nodes.image(uri=uri, alt=f"speed-up chart of {stem}"))
    return out


class BenchmarkTable(SphinxDirective):
    """``.. benchmark-table:: STEM`` with options ``:ops:`` and ``:chart:``."""

    required_arguments = 1
    option_spec = {"ops": directives.unchanged, "chart": directives.flag}

    def run(self):
        stem = self.arguments[0]
        ops = None
        if "ops" in self.options:
            ops = {o.strip() for o in self.options["ops"].split(",") if o.strip()}
        shown(self.env).setdefault(self.env.docname, set()).add(stem)
        return render(self, stem, ops, "chart" in self.options)


class BenchmarkOthers(SphinxDirective):
    """``.. benchmark-others::``: every results file not shown by a ``benchmark-table`` above."""

    def run(self):
        folder = results_dir(self.env.app)
        done = shown(self.env).get(self.env.docname, set())
        self.env.note_dependency(str(folder))
        out: list[nodes.Node] = []
        for path in sorted(folder.glob("*.json")):
            if path.stem in done:
                continue
            out.append(nodes.rubric("", path.stem))
            out += render(self, path.stem, chart=True)
        if not out:
            out.append(nodes.paragraph("", "(none)"))
        return out


def _purge(app, env, docname):
    shown(env).pop(docname, None)


def _merge(app, env, docnames, other):
    shown(env).update(shown(other))


def setup(app):
    app.add_directive("benchmark-table", BenchmarkTable)
    app.add_directive("benchmark-others", BenchmarkOthers)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
