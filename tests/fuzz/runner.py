"""Drive one target's strategy through the worker and collect the failures (parent side)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, given, seed as hseed, settings

from tests.fuzz.strategies import STRATEGIES

__all__ = ["Failure", "TargetStats", "fuzz_target", "signature"]


@dataclass
class Failure:
    """One contract violation: the input (a reproducing repr) and what happened."""

    call: object
    outcome: tuple

    def report(self) -> str:
        return f"{self.outcome.describe()}\n  input: {self.call!r}"


@dataclass
class TargetStats:
    """Counts of one target's run."""

    target: str
    tried: int = 0
    kinds: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)


def signature(outcome) -> tuple:
    """Groups failures that are probably one bug: kind, exception type, message start."""
    if outcome.kind == "raised":
        return ("raised", outcome[1], outcome[2][:60])
    return (outcome.kind, str(outcome[1])[:60])


def fuzz_target(name, worker, max_examples, *, seed=None, deadline=None, stats=None,
                known=lambda call, outcome: False, on_failure=None):
    """Run ``max_examples`` examples of target ``name`` (stops early past ``deadline``).

    Failures are recorded in ``stats`` (no shrinking, no exception), one per signature; an
    outcome for which ``known(call, outcome)`` is true is counted but not recorded again.
    """
    stats = stats or TargetStats(name)
    seen = {signature(f.outcome) for f in stats.failures}

    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=seed is None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(STRATEGIES[name])
    def run(call):
        if deadline is not None and time.monotonic() > deadline:
            return
        outcome = worker.run(call)
        stats.tried += 1
        stats.kinds[outcome.kind] = stats.kinds.get(outcome.kind, 0) + 1
        if outcome.failed and not known(call, outcome) and signature(outcome) not in seen:
            seen.add(signature(outcome))
            stats.failures.append(Failure(call, outcome))
            if on_failure is not None:
                on_failure(stats.failures[-1])

    if seed is not None:
        run = hseed(seed)(run)
    run()
    return stats
