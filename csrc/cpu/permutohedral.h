// CPU permutohedral lattice: build (deterministic, OpenMP over points and hash partitions)
// and the filter (splat -> blur -> slice) on plain arrays.
//
// Assumptions (checked in segengine/ops/lattice.py, re-checked here where cheap):
//   features: float32 [B, d, N] contiguous, finite, 1 <= d <= 16;
//   values/out: T [B*N, C] contiguous (point-major), C >= 1.
// The lattice of a batch is one set of vertices for all images (keys carry the image index),
// so vertex indices are global and one filter call covers the whole batch.
#pragma once

#include <cstdint>
#include <vector>

#include "big_alloc.h"

#if defined(__SSE__) || defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define SEG_HAVE_MXCSR 1
#endif

// Hot loops are compiled twice, for AVX2 and the baseline, and picked at load time
// (GCC function multi-versioning); no -march flags are needed.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SEG_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#define SEG_MULTIVERSION_AVX2 1  // SEG_MULTIVERSION functions have an AVX2 clone
#else
#define SEG_MULTIVERSION
#define SEG_MULTIVERSION_AVX2 0
#endif

namespace seg {

// Range kernels (rows [lo, hi)) of the filter, multi-versioned; see permutohedral.cpp.
void splat_range(int64_t lo, int64_t hi, const int64_t* ptr, const int32_t* pt, const float* w,
                 const float* in, int C, float* V);
void splat_range(int64_t lo, int64_t hi, const int64_t* ptr, const int32_t* pt, const float* w,
                 const double* in, int C, double* V);
void blur_range(int64_t lo, int64_t hi, const int32_t* nb, const float* V, int C, float* out);
void scatter_range(int64_t lo, int64_t hi, const int32_t* offsets, const float* weights, int d,
                   const float* in, int C, float* V);
void scatter_range(int64_t lo, int64_t hi, const int32_t* offsets, const float* weights, int d,
                   const double* in, int C, double* V);
void sum_range(int64_t lo, int64_t hi, const float* parts, int64_t stride, int nparts, float* out);
void sum_range(int64_t lo, int64_t hi, const double* parts, int64_t stride, int nparts, double* out);
void blur_range(int64_t lo, int64_t hi, const int32_t* nb, const double* V, int C, double* out);
void slice_range(int64_t lo, int64_t hi, const int32_t* offsets, const float* weights, const float* V,
                 float alpha, int d, int C, float* out);
void slice_range(int64_t lo, int64_t hi, const int32_t* offsets, const float* weights, const double* V,
                 double alpha, int d, int C, double* out);

// Flush denormals to zero (FTZ + DAZ) in this thread while in scope. Marginals far below
// 1e-38 otherwise make every splat/blur/slice multiply-add take the slow path; flushing
// changes results only below FLT_MIN. Used at the top of every OpenMP region of the filters.
struct FlushDenormals {
#ifdef SEG_HAVE_MXCSR
    unsigned int old;
    FlushDenormals() : old(_mm_getcsr()) { _mm_setcsr(old | 0x8040u); }
    ~FlushDenormals() { _mm_setcsr(old); }
#endif
};

// The large arrays are BigVectors (huge pages: fewer page faults when they are first written).
struct LatticeData {
    int d = 0;
    int64_t num_points = 0;                 // B*N
    int64_t num_vertices = 0;               // M
    BigVector<int32_t> offsets;             // [B*N, d+1] vertex of each (point, remainder)
    BigVector<float> weights;               // [B*N, d+1] barycentric weights
    BigVector<int32_t> neighbors;           // [d+1, M, 2] blur neighbours n1, n2 (-1: none)
    std::vector<int64_t> splat_ptr;         // [M+1] CSR by vertex over the entries below
    BigVector<int32_t> splat_pt;            // [B*N*(d+1)] point of each entry (point order per vertex)
    BigVector<float> splat_w;               // [B*N*(d+1)] its barycentric weight
    std::vector<int64_t> batch_vertices;    // [B] vertices per image
};

// Build the lattice of features [B, d, N]. ghost_origin adds, per image, the vertices of a
// point with all-zero features that splats nothing (pydensecrf's SSE build does this when N is
// not a multiple of 4: its padding points; the vertices relay the blur). with_csr = false
// leaves the splat CSR empty (the dense-CRF mean field scatters and never reads it). Throws
// std::invalid_argument on bad sizes or features too large for the integer keys,
// std::bad_alloc when out of memory.
void lattice_build(const float* features, int64_t B, int d, int64_t N, bool ghost_origin,
                   int num_threads, LatticeData& out, bool with_csr = true);

// Filter in -> out ([P, C], P = B*N) with the lattice arrays; reverse = adjoint (blur axes
// d..0). `in` and `out` may alias.
template <typename T>
void lattice_filter(const T* in, T* out, int64_t P, int C, int d, int64_t M,
                    const int32_t* offsets, const float* weights, const int32_t* neighbors,
                    const int64_t* splat_ptr, const int32_t* splat_pt, const float* splat_w,
                    bool reverse, int num_threads);

}  // namespace seg
