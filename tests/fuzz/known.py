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
        "input too large for memory raises torch's RuntimeError instead of MemoryError: "
        "ops/lattice.py bilateral_filter (features_xy, .to(float32)), ops/upsample.py "
        "_compute_logits (.float()), ops/graphcut.py graphcut (isfinite before the guard), "
        "metrics.py _confusion (.to(int64)); fix: check_working_set first",
        "Call(target='bilateral_filter', args=(Arr(shape=(13, 3, 13, 2147483659), dtype='float32', "
        "fill='uniform', layout='broadcast', torch=True), 72.3, 32.5), kwargs={})"),
    KnownIssue(
        "metrics_num_classes_overflow", "metrics|confusion_program", "raised",
        r"RuntimeError: Storage size calculation overflowed",
        "metrics.py _check_num_classes accepts any positive int: num_classes**2 overflows torch's "
        "size (bincount minlength, torch.zeros); fix: ValueError when num_classes**2 >= 2**62 and "
        "a working-set check for the [n, n] matrix",
        "Call(target='metrics', args=(Arr(shape=(3, 5), dtype='int64', fill='int'), "
        "Arr(shape=(3, 5), dtype='int64', fill='int'), 2147483648), kwargs={'fn': 'iou'})"),
    KnownIssue(
        "graphcut_empty_batch_with_image", "graphcut", "raised",
        r"RuntimeError: cannot reshape tensor of 0 elements",
        "ops/graphcut.py contrast_weights (line ~142): (d2 * valid).reshape(B, -1) is ambiguous "
        "for B == 0; fix: flatten(1) or return early for an empty batch",
        "Call(target='graphcut', args=(Arr(shape=(0, 2, 3, 4), dtype='float32', torch=True),), "
        "kwargs={'image': Arr(shape=(0, 1, 3, 4), dtype='float32', torch=True)})"),
    KnownIssue(
        "densecrf_utils_silent_inf", "densecrf_utils", "violation",
        r"(create_pairwise_(gaussian|bilateral)|unary_from_softmax): non-finite output",
        "densecrf/utils.py: create_pairwise_gaussian/bilateral divide by sdims/schan, so 0 gives "
        "inf features; unary_from_softmax with clip <= 0 takes -log of 0 or of negative "
        "'probabilities' (inf/NaN). pydensecrf does the same (numpy warnings only); fix: "
        "ValueError for non-positive or non-finite sdims/schan and for clip <= 0",
        "Call(target='densecrf_utils', args=((55.8, 0.0), (5, 1)), "
        "kwargs={'fn': 'create_pairwise_gaussian'})"),
    KnownIssue(
        "graphcut_pairwise_beyond_float32", "graphcut", "raised",
        r"RuntimeError: value cannot be converted to type float without overflow",
        "ops/graphcut.py graphcut (line ~236) converts a scalar pairwise to the unary's dtype: "
        "1e300 with float32 unary raises torch's RuntimeError; fix: ValueError when pairwise "
        "(or beta/blackbox_lambda) is not finite in the unary's dtype",
        "Call(target='graphcut', args=(Arr(shape=(2, 2, 4, 3), dtype='float32', torch=True),), "
        "kwargs={'pairwise': 1e+300})"),
    KnownIssue(
        "unary_from_labels_one_label", "densecrf_utils", "raised",
        r"ZeroDivisionError: float division by zero",
        "densecrf/utils.py unary_from_labels (line ~34) divides (1 - gt_prob) by n_labels - 1: "
        "n_labels = 1 raises ZeroDivisionError (as pydensecrf does); fix: ValueError for "
        "n_labels < 2 (and gt_prob outside (0, 1))",
        "Call(target='densecrf_utils', args=(Arr(shape=(2, 2), dtype='int16', fill='int'), 1, 0.5), "
        "kwargs={'zero_unsure': True, 'fn': 'unary_from_labels'})"),
    KnownIssue(
        "upsample_int_argument_beyond_int64", "upsample_argmax|upsample_cross_entropy", "raised",
        r"RuntimeError: .*(Expected a value of type 'int' for argument '(ignore_index|out_h|out_w)'"
        r"|Storage size calculation overflowed)",
        "ops/upsample.py passes ints to the custom op unchecked; beyond int64 the schema cast raises "
        "RuntimeError: upsample_cross_entropy's ignore_index (line ~395), and output_size's H/W "
        "from a huge scale_factor (1e30) or size (size=(2**63-1, 2**63-1): torch's storage-size "
        "overflow); fix: ValueError/OverflowError for ignore_index "
        "outside int64, and bound H*W (ValueError beyond int64, the working-set guard below)",
        "Call(target='upsample_argmax', args=(Arr(shape=(1, 2, 5, 5), dtype='float32', torch=True),), "
        "kwargs={'scale_factor': 1e+30})"),
    KnownIssue(
        "nn_densecrf_num_classes_overflow", "nn_densecrf", "raised",
        r"RuntimeError: (numel: integer multiplication overflow|Storage size calculation overflowed)",
        "nn.py DenseCRF.__init__ accepts any num_classes >= 2; torch.eye(num_classes) overflows "
        "for 2**31 and 2**63-1; fix: an upper bound / working-set check (ValueError or MemoryError)",
        "Call(target='nn_densecrf', args=({'num_classes': 9223372036854775807}, "
        "Arr(shape=(1, 3, 4, 4), torch=True), Arr(shape=(1, 3, 4, 4), torch=True), False))"),
)


def match_known(call, outcome):
    """The :class:`KnownIssue` this failure is, or None."""
    for issue in KNOWN:
        if issue.matches(call, outcome):
            return issue
    return None
