"""Short, derandomized fuzz run of every public target, and checks of the harness itself.

Each example runs in a worker process (tests/fuzz/worker.py), so a crash or hang fails
the test with the input that reproduces it.  Longer runs: ``python -m tests.fuzz``.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, HealthCheck

from tests.fuzz.known import KNOWN, match_known
from tests.fuzz.runner import fuzz_target
from tests.fuzz.spec import Arr, Call, build_array, is_finite_spec, parse
from tests.fuzz.strategies import STRATEGIES
from tests.fuzz.targets import TARGETS
from tests.fuzz.worker import Worker

EXAMPLES_PER_TARGET = 20


@pytest.fixture(scope="module")
def worker():
    with Worker(timeout=60) as w:
        yield w


def _known(call, outcome) -> bool:
    return match_known(call, outcome) is not None


def test_every_target_has_a_strategy():
    assert set(STRATEGIES) == set(TARGETS) - {"_selftest"}


@pytest.mark.parametrize("target", sorted(STRATEGIES))
def test_fuzz(worker, target):
    stats = fuzz_target(target, worker, EXAMPLES_PER_TARGET, known=_known)
    assert stats.tried == EXAMPLES_PER_TARGET
    assert not stats.failures, "\n\n".join(f.report() for f in stats.failures)


@pytest.mark.parametrize("issue", KNOWN, ids=[k.name for k in KNOWN])
@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="known issue (tests/fuzz/known.py); XPASS: fixed, remove it")
def test_known_issues_still_fail(worker, issue):
    call = parse(issue.repro)
    outcome = worker.run(call)
    assert not (outcome.failed and issue.matches(call, outcome)), outcome.describe()


# ------------------------------------------------------------------ the harness itself

@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st_call=STRATEGIES["watershed"] | STRATEGIES["maxflow_graph"] | STRATEGIES["dense_crf"])
def test_spec_repr_reproduces(st_call):
    assert repr(parse(repr(st_call))) == repr(st_call)


def test_arrays_keep_values_across_layouts():
    ref = build_array(Arr((2, 3, 5), "float64", seed=4, special=((7, math.nan),)))
    for layout in ("F", "strided", "negative", "permuted"):
        for as_torch in (False, True):
            a = build_array(Arr((2, 3, 5), "float64", seed=4, layout=layout, special=((7, math.nan),),
                                torch=as_torch))
            a = a.numpy() if as_torch else a
            assert (a == ref).sum() == ref.size - 1 and math.isnan(a.reshape(-1)[7]), layout
    big = build_array(Arr((2**40, 3), "uint8", layout="broadcast", torch=True))
    assert big.shape == (2**40, 3) and big.stride() == (0, 1)
    assert not is_finite_spec(Call("x", (Arr((2,), special=((0, math.inf),)),)))


def test_harness_reports_misbehaviour():
    """Each failure kind is reported (not raised), and the worker is usable after it."""
    expected = [("segfault", "crash"), ("abort", "crash"), ("hang", "hang"),
                ("runtime_error", "raised"), ("nan", "violation")]
    with Worker(timeout=3, preload=False) as w:
        for mode, kind in expected:
            outcome = w.run(Call("_selftest", (mode,)))
            assert outcome.kind == kind and outcome.failed, (mode, outcome)
            refused = w.run(Call("_selftest", ("value_error",)))
            assert refused.kind == "raised" and not refused.failed, (mode, refused)
        assert w.restarts == 3
