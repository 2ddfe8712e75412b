// CPU dense-CRF mean-field inference on permutohedral lattices (Kraehenbuehl & Koltun 2011),
// with pydensecrf's numerics (see csrc/common/crf.h).
//
// Assumptions (checked in segengine/ops/crf.py): input float32 [B, C, N];
// C >= 2; each kernel's lattice built over the same P = B*N points; compat arrays hold C
// (kind DIAG) or C*C (kind FULL, row-major, already symmetrised) floats.
#pragma once

#include <cstdint>

#include "seg_codes.h"

// 1 where the dense-CRF update passes and unary conversion have an AVX2+FMA instantiation,
// chosen per call when the processor has both (crf.cpp); segengine info reports it.
#if defined(__x86_64__) && defined(__GNUC__)
#define SEG_CRF_FMA_DISPATCH 1
#else
#define SEG_CRF_FMA_DISPATCH 0
#endif

namespace seg {

// How a kernel's compatibility array is laid out (set by the binding, segengine/_cy/_lattice.pyx).
enum CompatKind : int {
    COMPAT_DIAG = 0,   // C floats: pairwise[c] = w[c] * s[c]
    COMPAT_FULL = 1,   // C*C floats, row-major, symmetrised: pairwise[c] = sum_l M[c,l] s[l]
};

struct CrfKernel {
    int d = 0;
    int64_t M = 0;
    const int32_t* offsets = nullptr;     // [P, d+1]
    const float* weights = nullptr;       // [P, d+1]
    const int32_t* neighbors = nullptr;   // [d+1, M, 2]
    int normalization = codes::NORM_SYMMETRIC;  // a seg::codes::Normalization
    int compat_kind = COMPAT_DIAG;              // a CompatKind
    const float* compat = nullptr;
};

// What the `input` of the mean field holds (all float32, finite), unary_kind a
// seg::codes::UnaryKind (csrc/common/seg_codes.h):
//   UNARY_ENERGY: U itself; UNARY_LOGITS: logits l (U = -log_softmax(l); the mean field uses
//   -U = l, equal up to a per-point constant that the softmax removes);
//   UNARY_PROBABILITIES: p in [0, 1] (U = -log(clip(p, 1e-5, 1)), pydensecrf's
//   unary_from_softmax). A non-finite value, or a probability outside [0, 1 + 1e-3], throws
//   std::invalid_argument.

// Q = mean-field marginals after `iterations` parallel updates, starting from softmax(-U),
// for P = B*N points. input and Q are [B, C, N] (channel-major). The lattices must be
// numbered as lattice_build numbers them (vertices grouped per image).
// Throws std::invalid_argument on bad sizes or input, std::bad_alloc when out of memory.
void crf_meanfield(const float* input, int unary_kind, float* Q, int64_t B, int64_t N, int C,
                   const CrfKernel* kernels, int num_kernels, int iterations, int num_threads);

// Images per chunk of a batch for images of N points and num_threads threads (<= 0: all):
// enough for every thread to have a part. segengine.dense_crf calls crf_dense on one chunk
// at a time, so that the lattices and buffers in memory are one chunk's; an image's result
// does not depend on its chunk (its parts are cut by its own size).
int64_t crf_chunk_images(int64_t N, int num_threads);

// Build the lattices of the kernels' features (kernel k: float32 [B, dims[k], N]) and run
// crf_meanfield on input/Q [B, C, N]. compats[k]: C (COMPAT_DIAG) or C*C (COMPAT_FULL)
// floats. ghost_origin as in lattice_build.
void crf_dense(const float* input, int unary_kind, float* Q, int64_t B, int64_t N, int C,
               const float* const* features, const int* dims, const int* normalizations,
               const int* compat_kinds, const float* const* compats, int num_kernels,
               bool ghost_origin, int iterations, int num_threads);

}  // namespace seg
