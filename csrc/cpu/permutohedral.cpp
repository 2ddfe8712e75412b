// CPU permutohedral lattice. See permutohedral.h for the contract and
// csrc/common/permutohedral.h for the per-point numerics.
//
// Build, deterministic for any thread count:
//   1. per chunk of points (parallel, at least one chunk per image): each point's simplex,
//      barycentric weights and the 64-bit hashes of its d+1 vertex keys (key = image index
//      + d int32 coordinates), the keys numbered in a local open-addressing table in order
//      of first occurrence within the chunk;
//   2. vertex ids in order of first occurrence (pydensecrf's order, which also keeps
//      neighbouring points on neighbouring vertices): one serial pass merges the chunks'
//      distinct keys in chunk order (few: a vertex is shared by many points), and the
//      entries are renumbered in parallel;
//   3. the splat CSR (entries of each vertex, in point order) by a counting sort, when asked;
//   4. blur neighbours (parallel over vertices) are read-only look-ups.
// Filter: splat as a gather over the CSR or, for small lattices, a scatter into a fixed
// number of partial buffers summed in order (no racing float atomics either way), blur (parallel over vertices, ping-pong buffers), slice
// (parallel over points).
// FP exceptions are never trapped here: let GCC if-convert and vectorise the conditional
// float loops (clamps, selects). Results are unchanged (this is not -ffast-math).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include "permutohedral.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cpu_features.h"
#include "lattice_point8.h"
#include "lattice_tables.h"
#include "parallel.h"
#include "../common/permutohedral.h"

namespace seg {

namespace {

using lattice_tables::BoxTable;
using lattice_tables::HashTable;
using lattice_tables::KeyBox;

constexpr int64_t kMinBuildChunk = 16384;  // points per chunk of the parallel numbering

// lattice::point8 for the feature dimensions number_chunk compiles (2, 3, 5, 6), not inlined:
// multi-versioned (vectors of 8 floats need AVX; the baseline emulates them with pairs).
#define SEG_POINT8(D)                                                                               \
    SEG_MULTIVERSION void points8_##D(const float* f, int64_t fstride, const float* scale,         \
                                      lattice::Points8<D>& out) {                                   \
        lattice::point8<D>(f, fstride, scale, out);                                                 \
    }
SEG_POINT8(2)
SEG_POINT8(3)
SEG_POINT8(5)
SEG_POINT8(6)
#undef SEG_POINT8
template <int D>
void points8(const float* f, int64_t fstride, const float* scale, lattice::Points8<D>& out) {
    if constexpr (D == 2) points8_2(f, fstride, scale, out);
    else if constexpr (D == 3) points8_3(f, fstride, scale, out);
    else if constexpr (D == 5) points8_5(f, fstride, scale, out);
    else points8_6(f, fstride, scale, out);
}

// f(std::integral_constant<int, D>()) with D = d for the feature dimensions of the usual
// kernels (2-D / 3-D spatial, 2-D / 3-D bilateral with RGB), whose loops then unroll; D = 0
// for any other d.
template <class F>
decltype(auto) with_dim(int d, F&& f) {
    switch (d) {
        case 2: return f(std::integral_constant<int, 2>());
        case 3: return f(std::integral_constant<int, 3>());
        case 5: return f(std::integral_constant<int, 5>());
        case 6: return f(std::integral_constant<int, 6>());
        default: return f(std::integral_constant<int, 0>());
    }
}

// Step 1 of lattice_build for points [lo, hi) of the P real points (then one ghost point
// per image, all-zero features): simplex and weights of each point, its d+1 vertex keys
// numbered in the local table t; local ids to offsets (ghost_id for ghost points), weights
// to weights. Everything by value or through restrict pointers, so that the compiler keeps
// the loop state in registers (OpenMP's shared variables could alias the stores). Returns
// false when a point's features are too large or not finite. DC: the feature dimension as a
// compile-time constant (the per-point loops unroll: 2.5x fewer instructions for d = 2), or
// 0 to take d_in.
template <class Table, int DC>
bool number_chunk(const float* __restrict features, int64_t N, int64_t P, int d_in, int64_t lo, int64_t hi,
                  const float* scale_in, const uint64_t* mult_in, Table& t, int32_t* __restrict offsets,
                  int32_t* __restrict ghost_id, float* __restrict weights) {
    const int d = DC > 0 ? DC : d_in;
    const int D1 = d + 1;
    float scale[SEG_LATTICE_MAX_D];
    uint64_t mult[SEG_LATTICE_MAX_D];
    for (int i = 0; i < d; ++i) scale[i] = scale_in[i], mult[i] = mult_in[i];
    const float zeros[SEG_LATTICE_MAX_D] = {0};
    int r0[SEG_LATTICE_MAX_D + 1], rk[SEG_LATTICE_MAX_D + 1];
    float w[SEG_LATTICE_MAX_D + 1];
    int32_t key[SEG_LATTICE_MAX_D + 1];
    uint64_t h[SEG_LATTICE_MAX_D + 1] = {};  // (unused by a BoxTable)
    bool ok = true;
    // image of each point (real points in image order, then one ghost per image), updated
    // at image boundaries only (no division per point)
    auto image_of = [=](int64_t p) { return p < P ? p / N : p - P; };
    auto image_end = [=](int64_t p, int64_t b) { return p < P ? std::min((b + 1) * N, P) : p + 1; };
    int64_t b = image_of(lo), end = image_end(lo, b);
    int prev_r0[SEG_LATTICE_MAX_D + 1] = {}, prev_rk[SEG_LATTICE_MAX_D + 1] = {};
    const int32_t* prev_ids = nullptr;  // ids of the previous point (null: none yet)
    lattice::Points8<(DC > 0 ? DC : 1)> batch;  // points [batch_lo, batch_lo + 8) (DC > 0)
    int64_t batch_lo = INT64_MIN / 2;
    const bool use8 = SEG_MULTIVERSION_AVX2 && cpu_has_avx2();  // points8 has its AVX2 clone
    int64_t prev_b = -1;
    for (int64_t p = lo; p < hi; ++p) {
        if (p == end) {
            b = image_of(p);
            end = image_end(p, b);
        }
        const bool ghost = p >= P;
        if constexpr (DC > 0) {
            // eight real points of one image at a time (the same results as lattice::point),
            // where AVX2 makes it faster (the baseline build splits the 8 lanes into SSE pairs)
            if (use8 && !ghost && (p < batch_lo || p >= batch_lo + 8) && p + 8 <= std::min(hi, end)) {
                points8<DC>(features + b * d * N + (p - b * N), N, scale, batch);
                batch_lo = p;
            }
        }
        if (DC > 0 && !ghost && p >= batch_lo && p < batch_lo + 8) {
            const int64_t l = p - batch_lo;
            if (!batch.ok[l]) {
                ok = false;
                continue;
            }
            for (int i = 0; i <= d; ++i) r0[i] = batch.rem0[i][l], rk[i] = batch.rank[i][l], w[i] = batch.bary[i][l];
        } else if (!(ghost ? lattice::point(zeros, 1, scale, d, r0, rk, w)
                           : lattice::point(features + b * d * N + (p - b * N), N, scale, d, r0, rk, w))) {
            ok = false;
            continue;
        }
        int32_t* ids = ghost ? ghost_id + (p - P) * D1 : offsets + p * D1;
        if (!ghost)
            for (int r = 0; r <= d; ++r) weights[p * D1 + r] = w[r];
        // Neighbouring points mostly fall in the same simplex (same rem0 and rank, same
        // image): then they have the same vertices, all numbered already, and nothing new
        // is inserted, so the ids are the previous point's (the numbering is unchanged).
        if (prev_ids && b == prev_b) {
            int same = 1;
            for (int i = 0; i <= d; ++i) same &= (r0[i] == prev_r0[i]) & (rk[i] == prev_rk[i]);
            if (same) {
                for (int r = 0; r <= d; ++r) ids[r] = prev_ids[r];
                prev_ids = ids;
                continue;
            }
        }
        for (int i = 0; i <= d; ++i) prev_r0[i] = r0[i], prev_rk[i] = rk[i];
        prev_ids = ids;
        prev_b = b;
        if constexpr (Table::kHashed) lattice::simplex_hashes(b, r0, rk, d, mult, h);
        // vertex keys incrementally (vertex_key): from vertex r-1 to r every coordinate
        // grows by 1, except the one of rank d-r+1, which drops by d
        key[0] = (int32_t)b;
        lattice::vertex_key(r0, rk, 0, d, key + 1);
        ids[0] = (int32_t)t.insert(h[0], key, p * D1);
        for (int r = 1; r <= d; ++r) {
            for (int i = 0; i < d; ++i) key[1 + i] += rk[i] == d - r + 1 ? -d : 1;
            ids[r] = (int32_t)t.insert(h[r], key, p * D1 + r);
        }
    }
    return ok;
}

// Step 4 of lattice_build: the blur neighbours of every vertex of `table` (ids, -1 when
// absent) into out.neighbors [d+1, M, 2]. DC: d at compile time (the loops unroll), or 0.
// A neighbour's key hash follows from the vertex's by linearity (key_hash before its
// finaliser is a linear form): the same hashes as key_hash, without the d products. The
// neighbours' slots are prefetched before the look-ups, so that their cache misses overlap.
template <class Table, int DC>
void link_neighbors(const Table& table, int d_in, const uint64_t* mult_in, int threads, LatticeData& out) {
    const int d = DC > 0 ? DC : d_in;
    const int D1 = d + 1;
    const int64_t M = table.nv;
    uint64_t mult[SEG_LATTICE_MAX_D], step[SEG_LATTICE_MAX_D + 1];  // step[j]: the change of the form for dir = +1
    uint64_t sum_m = 0;
    for (int i = 0; i < d; ++i) mult[i] = mult_in[i], sum_m += mult[i];
    for (int j = 0; j < d; ++j) step[j] = sum_m - (uint64_t)D1 * mult[j];
    step[d] = sum_m;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t v = 0; v < M; ++v) {
        const int32_t* key = &table.keys[(size_t)v * D1];
        int32_t nk[2 * (SEG_LATTICE_MAX_D + 1)][SEG_LATTICE_MAX_D + 1];
        uint64_t nh[2 * (SEG_LATTICE_MAX_D + 1)];
        const uint64_t form = lattice::key_form(key[0], key + 1, d, mult);
        for (int j = 0; j <= d; ++j)
            for (int s = 0; s < 2; ++s) {
                int32_t* k = nk[2 * j + s];
                k[0] = key[0];
                lattice::neighbor_key(key + 1, j, d, s == 0 ? -1 : 1, k + 1);
                nh[2 * j + s] = Table::kHashed ? lattice::hash_finish(s == 0 ? form - step[j] : form + step[j]) : 0;
                table.prefetch(nh[2 * j + s], k);
            }
        for (int j = 0; j <= d; ++j)
            for (int s = 0; s < 2; ++s)
                out.neighbors[((size_t)j * M + v) * 2 + s] = (int32_t)table.find(nh[2 * j + s], nk[2 * j + s]);
    }
}

// The parts of a lattice build that depend on the vertex table (see lattice_tables.h).
struct BuildInput {
    const float* features;
    int64_t B, N;
    int d;
    int64_t P, E, Pg, Eg;          // real points, their entries; with the ghost points
    int threads;
    bool with_csr;
    const float* scale;            // [d]
    const uint64_t* mult;          // [d]
    const KeyBox* box;
};

// Steps 1-4 of lattice_build with vertex table Table: number the vertices (chunks in
// parallel, merged in order), the splat CSR when asked, the blur neighbours. Returns false,
// leaving `out` partly written, when a BoxTable met a key outside its box.
template <class Table>
bool number_and_link(const BuildInput& in, LatticeData& out) {
    const float* features = in.features;
    const int64_t B = in.B, N = in.N, P = in.P, E = in.E, Pg = in.Pg, Eg = in.Eg;
    const int d = in.d, D1 = d + 1, threads = in.threads;
    const bool with_csr = in.with_csr;
    const float* scale = in.scale;
    const uint64_t* mult = in.mult;
    const KeyBox& box = *in.box;
    // 1. per chunk of points (parallel): simplex and barycentric weights of each point, and
    //    the d+1 vertex keys (image index + d coordinates) numbered in a local table in
    //    order of first occurrence within the chunk (local ids go to out.offsets for now).
    //    Then one serial pass merges the chunks' distinct keys in chunk order, and the
    //    entries are renumbered: the ids are those of a serial insertion in entry order
    //    (pydensecrf's order) for any chunking, so they never depend on the thread count.
    const int kw = d + 1;
    // at least a chunk per image in a batch: local tables of one image's size stay in cache
    const int64_t nchunks = std::max<int64_t>(1, std::min<int64_t>(std::max<int64_t>(threads, B), Pg / kMinBuildChunk));
    std::vector<int64_t> point_of_chunk((size_t)nchunks + 1);
    for (int64_t c = 0; c <= nchunks; ++c) point_of_chunk[c] = Pg * c / nchunks;
    std::vector<Table> local((size_t)nchunks);
    std::vector<int32_t> ghost_id((size_t)(Eg - E));  // local ids of the ghost points' entries
    int bad = 0;
#pragma omp parallel for num_threads(threads) schedule(static, 1) reduction(| : bad)
    for (int64_t c = 0; c < nchunks; ++c) {
        const int64_t lo = point_of_chunk[c], hi = point_of_chunk[c + 1];
        // the images whose keys the chunk creates: those of its real points; all of them
        // when it holds ghost points (one per image, after the real points)
        const int64_t n = std::max<int64_t>(N, 1);  // N = 0: no points, an empty chunk
        const int64_t img_lo = hi > P ? 0 : lo / n, img_hi = hi > P ? B : (hi - 1) / n + 1;
        local[c].init(std::max<int64_t>(256, (hi - lo) * D1 / 64), kw, box, img_lo, img_hi - img_lo);
        const bool ok = with_dim(d, [&](auto dc) {
            return number_chunk<Table, decltype(dc)::value>(features, N, P, d, lo, hi, scale, mult, local[c],
                                                            out.offsets.data(), ghost_id.data(),
                                                            out.weights.data());
        });
        bad |= ok ? 0 : 1;
    }
    if (bad) {  // error path only: say which of the two it was
        const bool finite = std::all_of(features, features + B * (int64_t)d * N,
                                        [](float v) { return std::isfinite(v); });
        throw std::invalid_argument(
            finite ? "lattice_build: features too large for the lattice (an elevated coordinate "
                     "reached 2^22; divide the features by a larger bandwidth)"
                   : "features must be finite (found NaN or Inf)");
    }
    for (const Table& t : local)
        if (t.outside) return false;
    Table table;
    std::vector<std::vector<int32_t>> global_of_local((size_t)nchunks);
    if (nchunks == 1) {
        table = std::move(local[0]);
    } else {
        int64_t total = 0;
        for (const Table& t : local) total += t.nv;
        table.init(std::max<int64_t>(16, total / 2), kw, box, 0, B);
        for (int64_t c = 0; c < nchunks; ++c) {
            Table& t = local[c];
            std::vector<int32_t>& g = global_of_local[c];
            g.resize((size_t)t.nv);
            for (int64_t v = 0; v < t.nv; ++v)
                g[v] = (int32_t)table.insert(t.hash_of(v), &t.keys[(size_t)v * kw], t.first[v]);
            t = Table();  // release it
        }
    }
    // renumber (chunk c's entries: local -> global); the ghost entries need no ids
    if (nchunks > 1) {
#pragma omp parallel for num_threads(threads) schedule(static, 1)
        for (int64_t c = 0; c < nchunks; ++c) {
            const int64_t lo = point_of_chunk[c] * D1, hi = std::min(point_of_chunk[c + 1] * D1, E);
            const int32_t* g = global_of_local[c].data();
            for (int64_t e = lo; e < hi; ++e) out.offsets[e] = g[out.offsets[e]];
        }
    }
    std::vector<int32_t>().swap(ghost_id);
    std::vector<std::vector<int32_t>>().swap(global_of_local);
    table.compact();  // a dense slot array for the neighbour look-ups below
    const int64_t M = table.nv;
    if (M >= (int64_t)INT32_MAX) throw std::invalid_argument("lattice_build: too many lattice vertices");
    out.num_vertices = M;

    // 3. splat CSR: entries of each vertex in point order (counting sort by vertex)
    if (with_csr) {
        out.splat_ptr.assign((size_t)M + 1, 0);
        for (int64_t e = 0; e < E; ++e) out.splat_ptr[(size_t)out.offsets[e] + 1]++;
        for (int64_t v = 0; v < M; ++v) out.splat_ptr[v + 1] += out.splat_ptr[v];
        out.splat_pt.resize_uninitialized((size_t)E);  // a permutation of the entries: all written
        out.splat_w.resize_uninitialized((size_t)E);
        std::vector<int64_t> pos(out.splat_ptr.begin(), out.splat_ptr.end() - 1);
        int64_t e = 0;
        for (int64_t p = 0; p < P; ++p)
            for (int r = 0; r <= d; ++r, ++e) {
                const int64_t o = pos[out.offsets[e]]++;
                out.splat_pt[o] = (int32_t)p;
                out.splat_w[o] = out.weights[e];
            }
    }

    // 4. blur neighbours (read-only look-ups, parallel) and vertices per image
    out.neighbors.resize_uninitialized((size_t)D1 * M * 2);  // all written by link_neighbors
    with_dim(d, [&](auto dc) { link_neighbors<Table, decltype(dc)::value>(table, d, mult, threads, out); });
    out.batch_vertices.assign((size_t)std::max<int64_t>(B, 0), 0);
    for (int64_t v = 0; v < M; ++v) out.batch_vertices[table.keys[(size_t)v * (d + 1)]]++;
    return true;
}

}  // namespace

void lattice_build(const float* features, int64_t B, int d, int64_t N, bool ghost_origin,
                   int num_threads, LatticeData& out, bool with_csr) {
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
    out.offsets.resize_uninitialized((size_t)E);  // every entry is written below (or we throw)
    out.weights.resize_uninitialized((size_t)E);

    float scale[SEG_LATTICE_MAX_D];
    for (int i = 0; i < d; ++i) scale[i] = lattice::scale_factor(i, d);
    uint64_t mult[SEG_LATTICE_MAX_D];
    lattice::hash_multipliers(d, mult);

    // Vertex keys go to a dense table over the box they can reach when it is small (the
    // spatial-only kernel's regular grid of features), to a hash table otherwise; the ids
    // are the same either way.
    const KeyBox box = lattice_tables::key_box(features, B, d, N, ghost_origin, scale,
                                               std::max<int64_t>(int64_t(1) << 16, 2 * N * D1));
    const BuildInput in{features, B, N, d, P, E, Pg, Eg, threads, with_csr, scale, mult, &box};
    if (box.per_image > 0 && number_and_link<BoxTable>(in, out)) return;
    number_and_link<HashTable>(in, out);
}

constexpr int64_t kRows = 256;  // rows per scheduling chunk
constexpr int kScatterParts = 4;
constexpr int64_t kScatterMin = 2;
constexpr double kScatterBytes = 8.0 * (1 << 20);  // a vertex buffer that stays in cache
constexpr int64_t kParallelMin = 1 << 18;  // floats touched below which a region runs serially

#define SEG_SPLAT_RANGE(T)                                                                          \
    SEG_MULTIVERSION void splat_range(int64_t lo, int64_t hi, const int64_t* ptr, const int32_t* pt, \
                                      const float* w, const T* in, int C, T* V) {                   \
        for (int64_t v = lo; v < hi; ++v)                                                           \
            lattice::splat_vertex<T>(v, ptr, pt, w, in, (const T*)nullptr, C, V + v * C);          \
    }                                                                                               \
    SEG_MULTIVERSION void blur_range(int64_t lo, int64_t hi, const int32_t* nb, const T* V, int C,   \
                                     T* out) {                                                      \
        for (int64_t v = lo; v < hi; ++v)                                                           \
            lattice::blur_vertex<T>(v, nb[2 * v], nb[2 * v + 1], V, C, out + v * C);                \
    }                                                                                               \
    SEG_MULTIVERSION void scatter_range(int64_t lo, int64_t hi, const int32_t* offsets,             \
                                        const float* weights, int d, const T* in, int C, T* V) {    \
        for (int64_t p = lo; p < hi; ++p)                                                           \
            lattice::scatter_point<T>(p, offsets, weights, d, in + p * C, C, V);                    \
    }                                                                                               \
    SEG_MULTIVERSION void sum_range(int64_t lo, int64_t hi, const T* parts, int64_t stride,         \
                                    int nparts, T* out) {                                           \
        for (int64_t i = lo; i < hi; ++i) {                                                         \
            T acc = parts[i];                                                                       \
            for (int b = 1; b < nparts; ++b) acc += parts[b * stride + i];                          \
            out[i] = acc;                                                                           \
        }                                                                                           \
    }                                                                                               \
    SEG_MULTIVERSION void slice_range(int64_t lo, int64_t hi, const int32_t* offsets,               \
                                      const float* weights, const T* V, T alpha, int d, int C,      \
                                      T* out) {                                                     \
        if (C == 1) { /* normalisers: the constant C lets the channel loops go */                   \
            for (int64_t p = lo; p < hi; ++p)                                                       \
                lattice::slice_point<T>(p, offsets, weights, V, (const T*)nullptr, alpha, d, 1, out + p); \
            return;                                                                                 \
        }                                                                                           \
        for (int64_t p = lo; p < hi; ++p)                                                           \
            lattice::slice_point<T>(p, offsets, weights, V, (const T*)nullptr, alpha, d, C,         \
                                    out + p * C);                                                   \
    }
SEG_SPLAT_RANGE(float)
SEG_SPLAT_RANGE(double)
#undef SEG_SPLAT_RANGE

namespace {

// Splat `in` into vertex values and blur them along the d+1 axes (in reverse
// order when `reverse`); a and b are the ping-pong buffers [M, C], `partial` the scatter
// parts' buffers. Returns the buffer holding the blurred values (a or b).
template <typename T>
const T* splat_blur(const T* in, int64_t P, int C, int d, int64_t M, const int32_t* offsets,
                    const float* weights, const int32_t* neighbors, const int64_t* splat_ptr,
                    const int32_t* splat_pt, const float* splat_w, bool reverse, int threads,
                    std::vector<T>& a, std::vector<T>& b, std::vector<T>& partial) {
    const size_t need = (size_t)M * C;
    a.resize(need);
    b.resize(need);
    const int64_t chunks = (M + kRows - 1) / kRows;
    // Splat strategy, chosen from the sizes only (so results never depend on the thread count):
    // few vertices (M <= P/2 and M*C values in cache, e.g. one image): kScatterParts fixed point
    // ranges scatter in point order into their own vertex buffers (sequential reads of the
    // values, cache-resident writes), summed in a fixed order; otherwise a gather over the CSR.
    const bool scatter = (int64_t)kScatterMin * M <= P &&
                         (double)need * sizeof(T) <= kScatterBytes;
    if (scatter) partial.resize(kScatterParts * need);
    // small lattices: one thread (d+2 barriers cost more than the work, worse on a busy machine)
#pragma omp parallel num_threads(threads) if ((int64_t)need * (d + 2) >= kParallelMin)
    {
        FlushDenormals ftz;
        T* cur = a.data();  // private ping-pong pointers: every thread swaps identically
        T* nxt = b.data();
        if (scatter) {
#pragma omp for schedule(static)
            for (int bp = 0; bp < kScatterParts; ++bp) {
                T* part = partial.data() + (size_t)bp * need;
                std::fill(part, part + need, T(0));
                scatter_range(P * bp / kScatterParts, P * (bp + 1) / kScatterParts, offsets, weights, d, in,
                              C, part);
            }
            const int64_t n = (int64_t)need;
            const int64_t sch = (n + kRows * 16 - 1) / (kRows * 16);
#pragma omp for schedule(static)
            for (int64_t ch = 0; ch < sch; ++ch)
                sum_range(ch * kRows * 16, std::min(n, (ch + 1) * kRows * 16), partial.data(), n,
                          kScatterParts, cur);
        } else {
#pragma omp for schedule(static)
            for (int64_t ch = 0; ch < chunks; ++ch)
                splat_range(ch * kRows, std::min(M, (ch + 1) * kRows), splat_ptr, splat_pt, splat_w, in, C,
                            cur);
        }
        for (int step = 0; step <= d; ++step) {
            const int j = reverse ? d - step : step;
            const int32_t* nb = neighbors + (size_t)j * M * 2;
#pragma omp for schedule(static)
            for (int64_t ch = 0; ch < chunks; ++ch)
                blur_range(ch * kRows, std::min(M, (ch + 1) * kRows), nb, cur, C, nxt);
            T* t = cur;  // after the implicit barrier of the loop above
            cur = nxt;
            nxt = t;
        }
    }
    return ((d + 1) % 2 == 0) ? a.data() : b.data();
}

}  // namespace

template <typename T>
void lattice_filter(const T* in, T* out, int64_t P, int C, int d, int64_t M,
                    const int32_t* offsets, const float* weights, const int32_t* neighbors,
                    const int64_t* splat_ptr, const int32_t* splat_pt, const float* splat_w,
                    bool reverse, int num_threads) {
    const int threads = resolve_threads(num_threads);
    std::vector<T> a, b, partial;
    const T* V = splat_blur<T>(in, P, C, d, M, offsets, weights, neighbors, splat_ptr, splat_pt, splat_w,
                               reverse, threads, a, b, partial);
    const T alpha = (T)lattice::slice_alpha(d);
    const int64_t chunks = (P + kRows - 1) / kRows;
#pragma omp parallel num_threads(threads) if (P * C * (d + 1) >= kParallelMin)
    {
        FlushDenormals ftz;
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < chunks; ++ch)
            slice_range(ch * kRows, std::min(P, (ch + 1) * kRows), offsets, weights, V, alpha, d, C, out);
    }
}

#define SEG_INSTANTIATE(T)                                                                   \
    template void lattice_filter<T>(const T*, T*, int64_t, int, int, int64_t, const int32_t*,    \
                                    const float*, const int32_t*, const int64_t*,               \
                                    const int32_t*, const float*, bool, int);
SEG_INSTANTIATE(float)
SEG_INSTANTIATE(double)
#undef SEG_INSTANTIATE

}  // namespace seg
