"""Fuzzing harness for segengine's public API.

Hypothesis strategies (:mod:`tests.fuzz.strategies`) describe calls as plain, printable
specs (:mod:`tests.fuzz.spec`); a long-lived worker process (:mod:`tests.fuzz.worker`) runs
each call and checks the contract (:mod:`tests.fuzz.targets`), so that a segfault, abort or
hang is a reported failure with the input that reproduces it, not a dead test run.

Short, derandomized run: ``pytest tests/fuzz``.  Longer runs with random seeds:
``python -m tests.fuzz --minutes N``; replay one printed input:
``python -m tests.fuzz --replay "Call('watershed', ...)"``.
"""
