"""``python -m tests.fuzz --minutes N``: fuzz every target with random seeds, then report.

Prints, per target, the number of inputs tried and the outcome kinds, then every distinct
failure (grouped by kind, exception type and message start) with the input that
reproduces it.  ``--replay "Call(...)"`` runs one printed input in a fresh worker.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time

from tests.fuzz.known import match_known
from tests.fuzz.runner import TargetStats, fuzz_target
from tests.fuzz.spec import parse
from tests.fuzz.strategies import STRATEGIES
from tests.fuzz.worker import Worker


def _parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0, help="total fuzzing time (default 5)")
    p.add_argument("--targets", nargs="*", default=sorted(STRATEGIES), choices=sorted(STRATEGIES),
                   metavar="TARGET", help="targets to fuzz (default: all)")
    p.add_argument("--chunk", type=int, default=25, help="examples per target per round")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before an example is a hang")
    p.add_argument("--seed", type=int, default=None, help="seed of the round seeds (default: random)")
    p.add_argument("--replay", metavar="CALL", help="run one input, as printed in a report")
    return p.parse_args(argv)


def replay(text: str, timeout: float) -> int:
    call = parse(text)
    with Worker(timeout=timeout) as worker:
        outcome = worker.run(call)
    print(outcome.describe())
    return 1 if outcome.failed else 0


def fuzz(targets, minutes, chunk, timeout, seed) -> dict:
    """Round-robin over ``targets`` in chunks of ``chunk`` examples until the time is up."""
    rng = random.Random(seed)
    deadline = time.monotonic() + 60 * minutes
    stats = {t: TargetStats(t) for t in targets}
    known_hits = {}

    def known(call, outcome):
        issue = match_known(call, outcome)
        if issue is not None:
            known_hits[issue.name] = known_hits.get(issue.name, 0) + 1
        return issue is not None

    with Worker(timeout=timeout) as worker:
        try:
            _fuzz_rounds(worker, targets, chunk, deadline, rng, stats, known)
        except KeyboardInterrupt:
            print("interrupted: reporting what ran", flush=True)
    return stats, known_hits


def _fuzz_rounds(worker, targets, chunk, deadline, rng, stats, known):
    """One chunk of each target per round until ``deadline``; updates ``stats``."""
    while time.monotonic() < deadline:
        for t in targets:
            if time.monotonic() >= deadline:
                break
            fuzz_target(t, worker, chunk, seed=rng.getrandbits(32), deadline=deadline,
                        stats=stats[t], known=known,
                        on_failure=lambda f, t=t: print(f"\n--- new failure, {t}: {f.report()}\n",
                                                        flush=True))
        print(f"[{time.strftime('%H:%M:%S')}] tried {sum(s.tried for s in stats.values())}, "
              f"failures {sum(len(s.failures) for s in stats.values())}, "
              f"worker restarts {worker.restarts}; per target: "
              + ", ".join(f"{t} {s.tried}" for t, s in sorted(stats.items())), flush=True)


def report(stats, known_hits) -> int:
    print("\ninputs tried per target:")
    for t, s in sorted(stats.items()):
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(s.kinds.items()))
        print(f"  {t:24s} {s.tried:6d}   ({kinds})")
    failures = [(t, f) for t, s in sorted(stats.items()) for f in s.failures]
    print(f"\n{len(failures)} distinct new failure(s)")
    for t, f in failures:
        print(f"\n--- {t}: {f.report()}")
    if known_hits:
        print("\nknown issues hit (tests/fuzz/known.py):")
        for name, n in sorted(known_hits.items()):
            print(f"  {name}: {n}")
    return 1 if failures else 0


def main(argv=None) -> int:
    args = _parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # report on kill, too
    if args.replay:
        return replay(args.replay, args.timeout)
    stats, known_hits = fuzz(args.targets, args.minutes, args.chunk, args.timeout, args.seed)
    return report(stats, known_hits)


if __name__ == "__main__":
    sys.exit(main())
