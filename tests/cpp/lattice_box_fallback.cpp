// The lattice build's fallback from the dense BoxTable to the HashTable (csrc/cpu/permutohedral.cpp,
// lattice_tables.h): a key outside the box cannot happen through lattice_build (the box has a
// margin), so this driver builds with a box shrunk on purpose. number_and_link<BoxTable> must
// report the outside key (false), and number_and_link<HashTable> on the same, partly written
// output must give exactly lattice_build's lattice. Prints "ok" or what differs; exit 1 then.
//
// Built and run by tests/test_lattice_box_fallback.py: g++ -std=c++17 -fopenmp -DSEGENGINE_OPENMP
// -I csrc/cpu -I csrc -I csrc/common <this file>.
#include "permutohedral.cpp"

#include <cstdio>
#include <random>
#include <vector>

namespace {

template <class V>
bool same(const V& a, const V& b, size_t n, const char* what) {
    for (size_t i = 0; i < n; ++i)
        if (!(a[i] == b[i])) {
            std::printf("%s differs at %zu\n", what, i);
            return false;
        }
    return true;
}

// A 2-D spatial grid (the BoxTable's case) of B images h x w, scaled as a Gaussian kernel.
bool check(int64_t B, int64_t h, int64_t w, float sxy, bool ghost, int threads) {
    using namespace seg;
    const int d = 2;
    const int64_t N = h * w;
    std::vector<float> f((size_t)(B * d * N));
    for (int64_t b = 0; b < B; ++b)
        for (int64_t p = 0; p < N; ++p) {
            f[(size_t)((b * d + 0) * N + p)] = (float)(p / w) / sxy;
            f[(size_t)((b * d + 1) * N + p)] = (float)(p % w) / sxy;
        }
    LatticeData ref;
    lattice_build(f.data(), B, d, N, ghost, threads, ref, true);

    // lattice_build's set-up, then its two steps with a box half as wide as the keys need
    const int D1 = d + 1;
    const int64_t P = B * N, E = P * D1, Pg = P + (ghost ? B : 0), Eg = Pg * D1;
    float scale[SEG_LATTICE_MAX_D];
    for (int i = 0; i < d; ++i) scale[i] = lattice::scale_factor(i, d);
    uint64_t mult[SEG_LATTICE_MAX_D];
    lattice::hash_multipliers(d, mult);
    KeyBox box = lattice_tables::key_box(f.data(), B, d, N, ghost, scale, int64_t(1) << 40);
    if (box.per_image <= 0) {
        std::printf("no key box for this grid\n");
        return false;
    }
    box.ext[0] /= 2;
    box.per_image = box.ext[0] * box.ext[1];
    LatticeData out;
    out.d = d;
    out.num_points = P;
    out.offsets.resize_uninitialized((size_t)E);
    out.weights.resize_uninitialized((size_t)E);
    const BuildInput in{f.data(), B, N, d, P, E, Pg, Eg, resolve_threads(threads), true, scale, mult, &box};
    if (number_and_link<BoxTable>(in, out)) {
        std::printf("the shrunk box held every key\n");
        return false;
    }
    number_and_link<HashTable>(in, out);
    return out.num_vertices == ref.num_vertices &&
           same(out.offsets, ref.offsets, (size_t)E, "offsets") &&
           same(out.weights, ref.weights, (size_t)E, "weights") &&
           same(out.neighbors, ref.neighbors, (size_t)(2 * D1 * ref.num_vertices), "neighbors") &&
           same(out.splat_ptr, ref.splat_ptr, ref.splat_ptr.size(), "splat_ptr") &&
           same(out.splat_pt, ref.splat_pt, (size_t)E, "splat_pt") &&
           same(out.splat_w, ref.splat_w, (size_t)E, "splat_w") &&
           same(out.batch_vertices, ref.batch_vertices, ref.batch_vertices.size(), "batch_vertices");
}

}  // namespace

int main() {
    // one chunk and several (kMinBuildChunk points each), with and without ghost points
    const bool ok = check(1, 37, 53, 3.0f, false, 1) && check(2, 181, 197, 3.0f, true, 2) &&
                    check(3, 130, 170, 1.5f, false, 2);
    std::printf(ok ? "ok\n" : "FAILED\n");
    return ok ? 0 : 1;
}
