// The integer codes that cross from Python into the kernels (CPU and CUDA).
// Mirrored by segengine/_codes.py; tests/test_codes.py checks the two against each other,
// so a code is added in both places or the test fails.
// NVRTC-safe: plain enums only.
#pragma once

namespace seg {
namespace codes {

// Kernel normalisation of a dense-CRF / permutohedral filter (pydensecrf's NormalizationType).
enum Normalization : int {
    NORM_NONE = 0,
    NORM_BEFORE = 1,
    NORM_AFTER = 2,
    NORM_SYMMETRIC = 3,
};

// What the dense CRF's unary input holds.
enum UnaryKind : int {
    UNARY_ENERGY = 0,
    UNARY_LOGITS = 1,
    UNARY_PROBABILITIES = 2,
};

// Reduction of the fused upsample + cross-entropy loss (torch's reduction argument).
enum Reduction : int {
    REDUCTION_NONE = 0,
    REDUCTION_MEAN = 1,
    REDUCTION_SUM = 2,
};

// Element type of a watershed image.
enum ImageDType : int {
    DTYPE_U8 = 0,
    DTYPE_I8 = 1,
    DTYPE_U16 = 2,
    DTYPE_I16 = 3,
    DTYPE_U32 = 4,
    DTYPE_I32 = 5,
    DTYPE_U64 = 6,
    DTYPE_I64 = 7,
    DTYPE_F32 = 8,
    DTYPE_F64 = 9,
};

// Which move a multi-label grid solve makes (maxflow_multilabel.cpp).
enum MoveKind : int {
    MOVE_EXPANSION = 0,
    MOVE_SWAP = 1,
};

}  // namespace codes
}  // namespace seg
