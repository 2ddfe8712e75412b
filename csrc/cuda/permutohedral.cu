// CUDA permutohedral lattice: per-point simplex and vertex keys, blur neighbours by binary
// search in the sorted unique keys, and the filter (splat as a per-vertex gather over the
// CSR, blur, slice). The per-element logic is csrc/common/permutohedral.h, shared with the
// CPU build. No shared memory and no barriers: every kernel also runs under tests/emulate.py.
//
// Key building is sort-based (segengine/ops/_lattice_cuda.py): lattice_keys writes one key row
// (image index, d coordinates) per (point, vertex); torch.unique(dim=0) sorts and dedups
// them, its inverse gives the vertex of every entry; a stable sort of those gives the CSR.
//
// Assumptions (checked in segengine/ops/lattice.py): features float32 [B, d, N] contiguous,
// 1 <= d <= 16; values/out [P, C] contiguous (P = B*N); all index arrays int32 except the
// CSR row pointer (int64). Grid-stride loops: any grid covers the work.
#include "permutohedral.h"

#define SEG_GRID_LOOP(i, n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)blockDim.x * gridDim.x)

// One thread per point: weights [P, d+1] and keys [P*(d+1), d+1] (int32: image, coords).
// status[0] is set to 1 when a point's elevated coordinates are too large or not finite.
extern "C" __global__ void lattice_keys(const float* __restrict__ features, int64_t B, int d,
                                        int64_t N, float* __restrict__ weights,
                                        int32_t* __restrict__ keys, int32_t* __restrict__ status) {
    const int64_t P = B * N;
    float scale[SEG_LATTICE_MAX_D];
    for (int i = 0; i < d; ++i) scale[i] = seg::lattice::scale_factor(i, d);
    SEG_GRID_LOOP(p, P) {
        const int64_t b = p / N, n = p - b * N;
        int rem0[SEG_LATTICE_MAX_D + 1], rank[SEG_LATTICE_MAX_D + 1];
        float bary[SEG_LATTICE_MAX_D + 1];
        if (!seg::lattice::point(features + b * d * N + n, N, scale, d, rem0, rank, bary)) {
            atomicMax(status, 1);
            for (int r = 0; r <= d; ++r) {
                weights[p * (d + 1) + r] = 0.0f;
                int32_t* key = keys + (p * (d + 1) + r) * (d + 1);
                for (int i = 0; i <= d; ++i) key[i] = 0;
            }
            continue;
        }
        for (int r = 0; r <= d; ++r) {
            weights[p * (d + 1) + r] = bary[r];
            int32_t* key = keys + (p * (d + 1) + r) * (d + 1);
            key[0] = (int32_t)b;
            seg::lattice::vertex_key(rem0, rank, r, d, key + 1);
        }
    }
}

// One thread per (axis j, vertex v): neighbours [d+1, M, 2] of the sorted unique keys [M, d+1].
extern "C" __global__ void lattice_neighbors(const int32_t* __restrict__ ukeys, int64_t M, int d,
                                             int32_t* __restrict__ neighbors) {
    const int kw = d + 1;
    SEG_GRID_LOOP(t, (int64_t)(d + 1) * M) {
        const int j = (int)(t / M);
        const int64_t v = t - (int64_t)j * M;
        int32_t nk[SEG_LATTICE_MAX_D + 1];
        nk[0] = ukeys[v * kw];
        for (int s = 0; s < 2; ++s) {
            seg::lattice::neighbor_key(ukeys + v * kw + 1, j, d, s == 0 ? -1 : 1, nk + 1);
            int64_t lo = 0, hi = M - 1, found = -1;
            while (lo <= hi) {
                const int64_t mid = lo + (hi - lo) / 2;
                const int c = seg::lattice::key_compare(ukeys + mid * kw, nk, kw);
                if (c == 0) {
                    found = mid;
                    break;
                }
                if (c < 0) lo = mid + 1;
                else hi = mid - 1;
            }
            neighbors[((int64_t)j * M + v) * 2 + s] = (int32_t)found;
        }
    }
}

// One thread per (vertex, channel), not per vertex as on the CPU: a vertex of a spatial
// kernel's lattice gathers tens of points, so per-vertex threads were too few and each read
// whole rows alone (3.8 ms of a 375x500 splat on an H200); neighbouring threads now read
// neighbouring channels of one row (seg::lattice::splat_channel: the sums splat_vertex adds).
template <typename T>
__device__ void splat_impl(const T* in, const T* pre, int64_t M, int C, const int64_t* ptr,
                           const int32_t* pt, const float* w, T* V) {
    SEG_GRID_LOOP(t, M * C) {
        const int64_t v = t / C;
        V[t] = seg::lattice::splat_channel<T>(v, (int)(t - v * C), ptr, pt, w, in, pre, C);
    }
}

template <typename T>
__device__ void blur_impl(const T* V, int64_t M, int C, const int32_t* nb, T* out) {
    SEG_GRID_LOOP(v, M) { seg::lattice::blur_vertex<T>(v, nb[2 * v], nb[2 * v + 1], V, C, out + v * C); }
}

template <typename T>
__device__ void slice_impl(const T* V, int64_t P, int C, int d, const int32_t* offsets,
                           const float* weights, const T* post, T* out) {
    const T alpha = (T)seg::lattice::slice_alpha(d);
    SEG_GRID_LOOP(p, P) { seg::lattice::slice_point<T>(p, offsets, weights, V, post, alpha, d, C, out + p * C); }
}

// Splat: V [M, C] from in [P, C] (pre: optional per-point scale, null for none); launched
// with M * C threads.
extern "C" __global__ void lattice_splat_f32(const float* in, const float* pre, int64_t M, int C,
                                             const int64_t* ptr, const int32_t* pt, const float* w,
                                             float* V) {
    splat_impl<float>(in, pre, M, C, ptr, pt, w, V);
}
extern "C" __global__ void lattice_splat_f64(const double* in, const double* pre, int64_t M, int C,
                                             const int64_t* ptr, const int32_t* pt, const float* w,
                                             double* V) {
    splat_impl<double>(in, pre, M, C, ptr, pt, w, V);
}

// Blur along one axis: out [M, C] from V [M, C] with that axis' neighbours nb [M, 2].
extern "C" __global__ void lattice_blur_f32(const float* V, int64_t M, int C, const int32_t* nb, float* out) {
    blur_impl<float>(V, M, C, nb, out);
}
extern "C" __global__ void lattice_blur_f64(const double* V, int64_t M, int C, const int32_t* nb, double* out) {
    blur_impl<double>(V, M, C, nb, out);
}

// Slice: out [P, C] from V [M, C] (post: optional per-point scale, null for none).
extern "C" __global__ void lattice_slice_f32(const float* V, int64_t P, int C, int d,
                                             const int32_t* offsets, const float* weights,
                                             const float* post, float* out) {
    slice_impl<float>(V, P, C, d, offsets, weights, post, out);
}
extern "C" __global__ void lattice_slice_f64(const double* V, int64_t P, int C, int d,
                                             const int32_t* offsets, const float* weights,
                                             const double* post, double* out) {
    slice_impl<double>(V, P, C, d, offsets, weights, post, out);
}
