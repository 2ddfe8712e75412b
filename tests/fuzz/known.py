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


# Every failure the fuzzer found on 2026-12-02 is fixed (tests/test_fuzz_findings.py holds
# their reproducers as regression tests); add new ones here as KnownIssue(...) entries.
KNOWN: tuple = ()


def match_known(call, outcome):
    """The :class:`KnownIssue` this failure is, or None."""
    for issue in KNOWN:
        if issue.matches(call, outcome):
            return issue
    return None
