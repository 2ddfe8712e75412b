"""The integer codes passed from Python to the kernels: the mirror of ``csrc/common/seg_codes.h``.

``tests/test_codes.py`` parses the header and checks every enum here against it.
"""

from __future__ import annotations

import enum

__all__ = ["Normalization", "UnaryKind", "Reduction", "ImageDType", "MoveKind"]


class Normalization(enum.IntEnum):
    """Kernel normalisation of a CRF / permutohedral filter (pydensecrf's NormalizationType)."""
    NONE = 0
    BEFORE = 1
    AFTER = 2
    SYMMETRIC = 3


class UnaryKind(enum.IntEnum):
    """What the dense CRF's unary input holds."""
    ENERGY = 0
    LOGITS = 1
    PROBABILITIES = 2


class Reduction(enum.IntEnum):
    """Reduction of the fused upsample + cross-entropy loss."""
    NONE = 0
    MEAN = 1
    SUM = 2


class ImageDType(enum.IntEnum):
    """Element type of a watershed image, by numpy dtype name."""
    U8 = 0
    I8 = 1
    U16 = 2
    I16 = 3
    U32 = 4
    I32 = 5
    U64 = 6
    I64 = 7
    F32 = 8
    F64 = 9


class MoveKind(enum.IntEnum):
    """Which move a multi-label grid solve makes."""
    EXPANSION = 0
    SWAP = 1
