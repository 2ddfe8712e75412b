"""Compiled extensions (Cython bindings over csrc/cpu).

The extensions use the system OpenMP runtime, a second one beside the copy PyTorch
bundles. Idle OpenMP threads spin for a while by default, and two runtimes spinning on
the same cores slow each other down (measured 1.5-20x on 2 shared cores), so unless the
user chose otherwise, our runtime's threads go to sleep at once when a parallel region
ends. The variable is read when the runtime loads, i.e. at the first extension import.
"""

import os

os.environ.setdefault("GOMP_SPINCOUNT", "0")
