// CPU permutohedral lattice. See permutohedral.h for the contract and
// csrc/common/permutohedral.h for the per-point numerics.
//
// Build, deterministic for any thread count:
//   1. per point (parallel): simplex, barycentric weights and the 64-bit hash of each of
//      the d+1 vertex keys (key = image index + d int32 coordinates);
//   2. entries (point, vertex) are stably bucketed into kParts partitions by hash;
//   3. each partition (parallel) inserts its entries in entry order into its own hash table:
//      vertex ids are partition base + first-occurrence order, independent of the threads;
//      the splat CSR (entries of each vertex, in point order) falls out of the same pass;
//   4. blur neighbours (parallel over vertices) are read-only look-ups.
// Filter: splat as a gather over the CSR (parallel over vertices, summed in point order,
// so no racing float atomics), blur (parallel over vertices, ping-pong buffers), slice
// (parallel over points).
#include "permutohedral.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "parallel.h"
#include "../common/permutohedral.h"

namespace seg {

namespace {

constexpr int kPartBits = 6;
constexpr int kParts = 1 << kPartBits;

inline int part_of(uint64_t h) { return (int)(h >> (64 - kPartBits)); }

struct Partition {
    int kw = 0;                      // key width: 1 (image) + d
    std::vector<int32_t> keys;       // [nv, kw]
    std::vector<uint64_t> hashes;    // [nv]
    std::vector<int64_t> first;      // [nv] first (smallest) entry that created the vertex
    std::vector<int32_t> slots;      // open addressing, -1 empty
    uint64_t mask = 0;
    int64_t nv = 0;

    void init(int64_t expected, int key_width) {
        kw = key_width;
        uint64_t cap = 16;
        while (cap < (uint64_t)expected * 2) cap <<= 1;
        slots.assign(cap, -1);
        mask = cap - 1;
        keys.reserve((size_t)expected * kw / 2 + kw);
        hashes.reserve((size_t)expected / 2 + 1);
    }
    void grow() {
        uint64_t cap = (mask + 1) * 2;
        slots.assign(cap, -1);
        mask = cap - 1;
        for (int64_t v = 0; v < nv; ++v) {
            uint64_t s = hashes[v] & mask;
            while (slots[s] >= 0) s = (s + 1) & mask;
            slots[s] = (int32_t)v;
        }
    }
    int64_t find(uint64_t h, const int32_t* key) const {
        uint64_t s = h & mask;
        while (true) {
            const int32_t v = slots[s];
            if (v < 0) return -1;
            if (hashes[v] == h && std::memcmp(&keys[(size_t)v * kw], key, sizeof(int32_t) * kw) == 0)
                return v;
            s = (s + 1) & mask;
        }
    }
    int64_t insert(uint64_t h, const int32_t* key, int64_t entry) {
        if ((uint64_t)(nv + 1) * 2 > mask + 1) grow();
        uint64_t s = h & mask;
        while (true) {
            const int32_t v = slots[s];
            if (v < 0) break;
            if (hashes[v] == h && std::memcmp(&keys[(size_t)v * kw], key, sizeof(int32_t) * kw) == 0)
                return v;
            s = (s + 1) & mask;
        }
        slots[s] = (int32_t)nv;
        keys.insert(keys.end(), key, key + kw);
        hashes.push_back(h);
        first.push_back(entry);
        return nv++;
    }
};

}  // namespace

void lattice_build(const float* features, int64_t B, int d, int64_t N, bool ghost_origin,
                   int num_threads, LatticeData& out) {
    if (d < 1 || d > SEG_LATTICE_MAX_D)
        throw std::invalid_argument("lattice_build: feature dimension d must be in 1.." +
                                    std::to_string(SEG_LATTICE_MAX_D) + ", got " + std::to_string(d));
    if (B < 0 || N < 0) throw std::invalid_argument("lattice_build: negative size");
    const int threads = resolve_threads(num_threads);
    const int D1 = d + 1;
    const int64_t P = B * N;
    const int64_t E = P * D1;
    const int64_t G = ghost_origin ? B : 0;  // one ghost point (features 0) per image
    const int64_t Pg = P + G;
    const int64_t Eg = Pg * D1;
    if (Eg >= (int64_t)INT32_MAX)
        throw std::invalid_argument("lattice_build: B*N*(d+1) = " + std::to_string(E) +
                                    " lattice entries; at most 2^31-1 are supported");
    out.d = d;
    out.num_points = P;
    out.offsets.assign((size_t)E, 0);
    out.weights.assign((size_t)E, 0.0f);

    float scale[SEG_LATTICE_MAX_D];
    for (int i = 0; i < d; ++i) scale[i] = lattice::scale_factor(i, d);
    const float zeros[SEG_LATTICE_MAX_D] = {0};

    std::vector<int32_t> rem0((size_t)Pg * d);
    std::vector<uint8_t> rank((size_t)Pg * d);
    std::vector<uint64_t> hash((size_t)Eg);
    int bad = 0;

    // 1. simplex, weights and vertex hashes per point (ghost points last)
#pragma omp parallel for num_threads(threads) schedule(static) reduction(| : bad)
    for (int64_t p = 0; p < Pg; ++p) {
        const bool ghost = p >= P;
        const int64_t b = ghost ? p - P : p / N, n = ghost ? 0 : p - b * N;
        int r0[SEG_LATTICE_MAX_D + 1], rk[SEG_LATTICE_MAX_D + 1], key[SEG_LATTICE_MAX_D];
        float w[SEG_LATTICE_MAX_D + 1];
        const bool ok = ghost ? lattice::point(zeros, 1, scale, d, r0, rk, w)
                              : lattice::point(features + b * d * N + n, N, scale, d, r0, rk, w);
        if (!ok) {
            bad |= 1;
            continue;
        }
        for (int i = 0; i < d; ++i) {
            rem0[(size_t)p * d + i] = r0[i];
            rank[(size_t)p * d + i] = (uint8_t)rk[i];
        }
        for (int r = 0; r <= d; ++r) {
            if (!ghost) out.weights[(size_t)p * D1 + r] = w[r];
            lattice::vertex_key(r0, rk, r, d, key);
            hash[(size_t)p * D1 + r] = lattice::key_hash(b, key, d);
        }
    }
    if (bad)
        throw std::invalid_argument(
            "lattice_build: features too large for the lattice (an elevated coordinate reached "
            "2^22; divide the features by a larger bandwidth) or not finite");

    // 2. stable bucketing of entries by partition
    const int chunks = std::max(1, threads);
    std::vector<int64_t> counts((size_t)chunks * kParts, 0);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int c = 0; c < chunks; ++c) {
        const int64_t lo = Eg * c / chunks, hi = Eg * (c + 1) / chunks;
        int64_t* cnt = &counts[(size_t)c * kParts];
        for (int64_t e = lo; e < hi; ++e) cnt[part_of(hash[e])]++;
    }
    std::vector<int64_t> part_start(kParts + 1, 0);
    std::vector<int64_t> cursor((size_t)chunks * kParts);
    {
        int64_t acc = 0;
        for (int q = 0; q < kParts; ++q) {
            part_start[q] = acc;
            for (int c = 0; c < chunks; ++c) {
                cursor[(size_t)c * kParts + q] = acc;
                acc += counts[(size_t)c * kParts + q];
            }
        }
        part_start[kParts] = acc;
    }
    std::vector<int32_t> order((size_t)Eg);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int c = 0; c < chunks; ++c) {
        const int64_t lo = Eg * c / chunks, hi = Eg * (c + 1) / chunks;
        int64_t* cur = &cursor[(size_t)c * kParts];
        for (int64_t e = lo; e < hi; ++e) order[cur[part_of(hash[e])]++] = (int32_t)e;
    }
    std::vector<int64_t>().swap(cursor);

    // 3. per-partition insertion (first-occurrence order) and local CSR of the real entries
    std::vector<Partition> parts(kParts);
    std::vector<int32_t> local_vertex((size_t)E);
    std::vector<std::vector<int64_t>> local_ptr(kParts);
    std::vector<std::vector<int32_t>> local_idx(kParts);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int q = 0; q < kParts; ++q) {
        Partition& pt = parts[q];
        const int64_t lo = part_start[q], hi = part_start[q + 1];
        pt.init((hi - lo) / 4 + 8, d + 1);
        std::vector<int32_t> cnt;
        int32_t key[SEG_LATTICE_MAX_D + 1];
        int r0[SEG_LATTICE_MAX_D], rk[SEG_LATTICE_MAX_D];
        int64_t real = 0;
        for (int64_t k = lo; k < hi; ++k) {
            const int64_t e = order[k];
            const int64_t p = e / D1;
            const int r = (int)(e - p * D1);
            key[0] = (int32_t)(p < P ? p / N : p - P);
            for (int i = 0; i < d; ++i) {
                r0[i] = rem0[(size_t)p * d + i];
                rk[i] = rank[(size_t)p * d + i];
            }
            lattice::vertex_key(r0, rk, r, d, key + 1);
            const int64_t v = pt.insert(hash[e], key, e);
            if (v == (int64_t)cnt.size()) cnt.push_back(0);
            if (e < E) {
                cnt[v]++;
                local_vertex[e] = (int32_t)v;
                ++real;
            }
        }
        std::vector<int64_t>& lp = local_ptr[q];
        lp.assign((size_t)pt.nv + 1, 0);
        for (int64_t v = 0; v < pt.nv; ++v) lp[v + 1] = lp[v] + cnt[v];
        std::vector<int64_t> pos(lp.begin(), lp.end() - 1);
        std::vector<int32_t>& li = local_idx[q];
        li.assign((size_t)real, 0);
        for (int64_t k = lo; k < hi; ++k) {
            const int64_t e = order[k];
            if (e < E) li[pos[local_vertex[e]]++] = (int32_t)e;
        }
    }
    std::vector<int32_t>().swap(order);
    std::vector<int32_t>().swap(rem0);
    std::vector<uint8_t>().swap(rank);

    // 4. global vertex ids, renumbered by first occurrence (smallest entry index), which is
    //    pydensecrf's insertion order and keeps neighbouring points on neighbouring vertices
    std::vector<int64_t> base(kParts + 1, 0);
    for (int q = 0; q < kParts; ++q) base[q + 1] = base[q] + parts[q].nv;
    const int64_t M = base[kParts];
    if (M >= (int64_t)INT32_MAX) throw std::invalid_argument("lattice_build: too many lattice vertices");
    out.num_vertices = M;
    std::vector<int32_t> newid((size_t)M);
    std::vector<int32_t> old_of((size_t)M);
    {
        std::vector<int32_t> marker((size_t)Eg, -1);
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int q = 0; q < kParts; ++q)
            for (int64_t v = 0; v < parts[q].nv; ++v) marker[parts[q].first[v]] = (int32_t)(base[q] + v);
        int64_t next = 0;
        for (int64_t e = 0; e < Eg; ++e) {
            const int32_t g = marker[e];
            if (g >= 0) {
                newid[g] = (int32_t)next;
                old_of[next] = g;
                ++next;
            }
        }
    }
    std::vector<int32_t> part_of_vertex((size_t)M);
    for (int q = 0; q < kParts; ++q)
        for (int64_t v = base[q]; v < base[q + 1]; ++v) part_of_vertex[v] = q;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t e = 0; e < E; ++e) {
        const int q = part_of(hash[e]);
        out.offsets[e] = newid[base[q] + local_vertex[e]];
    }
    std::vector<uint64_t>().swap(hash);
    std::vector<int32_t>().swap(local_vertex);
    out.splat_ptr.assign((size_t)M + 1, 0);
    for (int64_t v = 0; v < M; ++v) {
        const int64_t g = old_of[v];
        const int q = part_of_vertex[g];
        const int64_t lv = g - base[q];
        out.splat_ptr[v + 1] = out.splat_ptr[v] + (local_ptr[q][lv + 1] - local_ptr[q][lv]);
    }
    out.splat_pt.assign((size_t)E, 0);
    out.splat_w.assign((size_t)E, 0.0f);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t v = 0; v < M; ++v) {
        const int64_t g = old_of[v];
        const int q = part_of_vertex[g];
        const int64_t lv = g - base[q];
        int64_t o = out.splat_ptr[v];
        for (int64_t k = local_ptr[q][lv]; k < local_ptr[q][lv + 1]; ++k, ++o) {
            const int64_t e = local_idx[q][k];
            out.splat_pt[o] = (int32_t)(e / D1);
            out.splat_w[o] = out.weights[e];
        }
    }

    // 5. blur neighbours and vertices per image
    out.neighbors.assign((size_t)D1 * M * 2, -1);
    out.batch_vertices.assign((size_t)std::max<int64_t>(B, 0), 0);
    const int64_t BB = std::max<int64_t>(B, 1);
    std::vector<int64_t> per_part_batch((size_t)kParts * BB, 0);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int q = 0; q < kParts; ++q) {
        const Partition& pt = parts[q];
        int32_t nk[SEG_LATTICE_MAX_D + 1];
        for (int64_t v = 0; v < pt.nv; ++v) {
            const int32_t* key = &pt.keys[(size_t)v * (d + 1)];
            const int64_t nv = newid[base[q] + v];
            per_part_batch[(size_t)q * BB + key[0]]++;
            nk[0] = key[0];
            for (int j = 0; j <= d; ++j) {
                for (int s = 0; s < 2; ++s) {
                    lattice::neighbor_key(key + 1, j, d, s == 0 ? -1 : 1, nk + 1);
                    const uint64_t h = lattice::key_hash(key[0], nk + 1, d);
                    const int nq = part_of(h);
                    const int64_t lv = parts[nq].find(h, nk);
                    out.neighbors[((size_t)j * M + nv) * 2 + s] = lv < 0 ? -1 : newid[base[nq] + lv];
                }
            }
        }
    }
    for (int q = 0; q < kParts; ++q)
        for (int64_t b = 0; b < B; ++b) out.batch_vertices[b] += per_part_batch[(size_t)q * BB + b];
}

template <typename T>
const T* lattice_splat_blur(const T* in, int64_t P, int C, int d, int64_t M,
                            const int32_t* neighbors,
                            const int64_t* splat_ptr, const int32_t* splat_pt, const float* splat_w,
                            const T* pre, bool reverse, int num_threads, FilterWork<T>& work) {
    (void)P;
    const int threads = resolve_threads(num_threads);
    const size_t need = (size_t)M * C;
    if (work.a.size() < need) work.a.resize(need);
    if (work.b.size() < need) work.b.resize(need);
#pragma omp parallel num_threads(threads)
    {
        T* cur = work.a.data();  // private ping-pong pointers: every thread swaps identically
        T* nxt = work.b.data();
#pragma omp for schedule(static)
        for (int64_t v = 0; v < M; ++v)
            lattice::splat_vertex<T>(v, splat_ptr, splat_pt, splat_w, in, pre, C, cur + v * C);
        for (int step = 0; step <= d; ++step) {
            const int j = reverse ? d - step : step;
            const int32_t* nb = neighbors + (size_t)j * M * 2;
#pragma omp for schedule(static)
            for (int64_t v = 0; v < M; ++v)
                lattice::blur_vertex<T>(v, nb[2 * v], nb[2 * v + 1], cur, C, nxt + v * C);
            T* t = cur;  // after the implicit barrier of the loop above
            cur = nxt;
            nxt = t;
        }
    }
    const T* cur = ((d + 1) % 2 == 0) ? work.a.data() : work.b.data();
    return cur;
}

template <typename T>
void lattice_filter_work(const T* in, T* out, int64_t P, int C, int d, int64_t M,
                         const int32_t* offsets, const float* weights, const int32_t* neighbors,
                         const int64_t* splat_ptr, const int32_t* splat_pt, const float* splat_w,
                         const T* pre, const T* post, bool reverse, int num_threads,
                         FilterWork<T>& work) {
    const int threads = resolve_threads(num_threads);
    const T* V = lattice_splat_blur<T>(in, P, C, d, M, neighbors, splat_ptr, splat_pt, splat_w,
                                       pre, reverse, num_threads, work);
    const T alpha = (T)lattice::slice_alpha(d);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t p = 0; p < P; ++p)
        lattice::slice_point<T>(p, offsets, weights, V, post, alpha, d, C, out + p * C);
}

template <typename T>
void lattice_filter(const T* in, T* out, int64_t P, int C, int d, int64_t M,
                    const int32_t* offsets, const float* weights, const int32_t* neighbors,
                    const int64_t* splat_ptr, const int32_t* splat_pt, const float* splat_w,
                    const T* pre, const T* post, bool reverse, int num_threads) {
    FilterWork<T> work;
    lattice_filter_work<T>(in, out, P, C, d, M, offsets, weights, neighbors, splat_ptr, splat_pt, splat_w,
                           pre, post, reverse, num_threads, work);
}

#define SEG_INSTANTIATE(T)                                                                   \
    template const T* lattice_splat_blur<T>(const T*, int64_t, int, int, int64_t, const int32_t*, \
                                            const int64_t*, const int32_t*, const float*,       \
                                            const T*, bool, int, FilterWork<T>&);                \
    template void lattice_filter_work<T>(const T*, T*, int64_t, int, int, int64_t,               \
                                         const int32_t*, const float*, const int32_t*,          \
                                         const int64_t*, const int32_t*, const float*,          \
                                         const T*, const T*, bool, int, FilterWork<T>&);         \
    template void lattice_filter<T>(const T*, T*, int64_t, int, int, int64_t, const int32_t*,    \
                                    const float*, const int32_t*, const int64_t*,               \
                                    const int32_t*, const float*, const T*, const T*, bool, int);
SEG_INSTANTIATE(float)
SEG_INSTANTIATE(double)
#undef SEG_INSTANTIATE

}  // namespace seg
