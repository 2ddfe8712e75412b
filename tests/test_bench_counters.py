"""benchmarks/counters.py: the callgrind totals parser and the per-pixel arithmetic (the
valgrind runs themselves take minutes and are not part of the test suite)."""

from __future__ import annotations

import pytest

counters = pytest.importorskip("benchmarks.counters")


def _write(tmp_path, events, totals, key="totals:"):
    p = tmp_path / "cg.out"
    p.write_text(f"version: 1\ncreator: callgrind-3.19.0\nevents: {' '.join(events)}\n"
                 f"fn=(1) main\n1 5 6\n{key} {' '.join(str(t) for t in totals)}\n")
    return str(p)


def test_totals_parsed_by_event_name(tmp_path):
    events = ["Ir", "Dr", "Dw", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw"]
    path = _write(tmp_path, events, [1000, 1, 2, 3, 40, 50, 6, 7, 8])
    assert counters._callgrind_totals(path) == {"Ir": 1000, "D1mr": 40, "D1mw": 50, "DLmr": 7, "DLmw": 8}


def test_summary_line_and_missing_events(tmp_path):
    path = _write(tmp_path, ["Ir"], [123], key="summary:")
    assert counters._callgrind_totals(path) == {"Ir": 123, "D1mr": 0, "D1mw": 0, "DLmr": 0, "DLmw": 0}


def test_no_totals_is_an_error(tmp_path):
    p = tmp_path / "cg.out"
    p.write_text("events: Ir\n")
    with pytest.raises(RuntimeError, match="no totals"):
        counters._callgrind_totals(str(p))


def test_per_pixel_figures(monkeypatch):
    # totals over `calls` calls; per pixel = total / calls / pixels
    totals = {"segengine": 2 * 4 * 10, "pydensecrf": 2 * 4 * 30}
    monkeypatch.setitem(counters.CASES, "toy", ("toy_op", "toy case", 4, None))
    monkeypatch.setattr(counters, "_run_child",
                        lambda case, impl, calls, tmp: {e: totals[impl] for e in counters._EVENTS})
    rows = counters.measure_counts("toy", calls=2)
    se, peer = rows
    assert se["instr_per_px"] == 10 and peer["instr_per_px"] == 30
    assert peer["instr_ratio"] == 3 and se["d1_miss_per_px"] == 20 and se["ll_miss_per_px"] == 20


def test_every_implementation_has_entry_points():
    assert set(counters.ENTRY_POINTS) == {"segengine", "pydensecrf"}
    assert all(counters.ENTRY_POINTS.values())
