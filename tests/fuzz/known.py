"""Failures the fuzzer has found that are not fixed yet (each in a file owned elsewhere).

The short run in the normal suite tolerates them, so that it guards against new
failures; ``test_known_issues_still_fail`` (strict xfail) replays each reproducer, so an
entry whose bug gets fixed is noticed and removed.  ``python -m tests.fuzz`` reports them
under their own heading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["KNOWN", "KnownIssue", "match_known"]


@dataclass(frozen=True)
class KnownIssue:
    """A failure signature: target(s) (``"a|b"``, ``"*"``: any), outcome kind, a regex on its
    description, where the bug is, and a reproducer (a printed :class:`~tests.fuzz.spec.Call`)."""

    name: str
    target: str
    kind: str
    pattern: str
    where: str
    repro: str

    def matches(self, call, outcome) -> bool:
        targets = self.target.split("|")
        return ((self.target == "*" or call.target in targets) and outcome.kind == self.kind
                and re.search(self.pattern, outcome.describe(), re.S) is not None)


KNOWN: tuple = (
    KnownIssue(
        "torch_allocation_runtime_error", "*", "raised",
        r"RuntimeError: .*DefaultCPUAllocator: can.t allocate memory",
        "a torch allocation runs before the op's working-set guard (or the op has none), so an "
        "input too large for memory raises torch's RuntimeError instead of MemoryError; the ops "
        "got guards on 2026-12-02, still open: nn.py DenseCRF.forward (crf_features / softmax on "
        "[B, C, H, W] before any check_working_set); fix: check_working_set first",
        "Call(target='nn_densecrf', args=({'num_classes': 3}, Arr(shape=(1, 3, 4, 2147483659), "
        "torch=True, layout='broadcast'), Arr(shape=(1, 3, 4, 2147483659), torch=True, "
        "layout='broadcast'), False))"),
    KnownIssue(
        "graphcut_pairwise_beyond_float32", "graphcut", "raised",
        r"RuntimeError: value cannot be converted to type float without overflow",
        "ops/graphcut.py graphcut (line ~236) converts a scalar pairwise to the unary's dtype: "
        "1e300 with float32 unary raises torch's RuntimeError; fix: ValueError when pairwise "
        "(or beta/blackbox_lambda) is not finite in the unary's dtype",
        "Call(target='graphcut', args=(Arr(shape=(2, 2, 4, 3), dtype='float32', torch=True),), "
        "kwargs={'pairwise': 1e+300})"),
)


def match_known(call, outcome):
    """The :class:`KnownIssue` this failure is, or None."""
    for issue in KNOWN:
        if issue.matches(call, outcome):
            return issue
    return None
