// Local-minima markers (markers=None): connected plateaus with no lower neighbour, numbered in
// raster order of their first pixel like scipy.ndimage.label; see watershed.h.
#include "watershed_minima.h"

#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "watershed_dispatch.h"

namespace seg {
namespace ws {
namespace detail {
namespace {

template <class S>
int64_t minima_typed(const S* img, const uint8_t* mask, int32_t* lab, const Grid& g) {
    const int64_t n = g.n;
    if (n == 0) return 0;
    std::vector<uint8_t> flags(static_cast<size_t>(n));
    build_flags(img, mask, flags.data(), g);
    S gmax = img[0];
    for (int64_t p = 1; p < n; ++p)
        if (img[p] > gmax) gmax = img[p];
    std::vector<uint8_t> st(static_cast<size_t>(n), 0);  // 1 visited, 2 local minimum
    std::vector<int64_t> queue;
    for (int64_t p = 0; p < n; ++p) {
        if (st[p]) continue;
        const S v = img[p];
        queue.clear();
        queue.push_back(p);
        st[p] = 1;
        bool is_min = true;
        for (size_t qi = 0; qi < queue.size(); ++qi) {
            const int64_t c = queue[qi];
            // skimage pads with the global maximum: a plateau at that value touching the
            // border has an equal neighbour outside the image and is not a minimum.
            if ((flags[c] & kBorder) && v == gmax && g.leaves_image(c)) is_min = false;
            g.for_neighbors(c, flags.data(), [&](int64_t q) {
                const S w = img[q];
                if (w == v) {
                    if (!st[q]) {
                        st[q] = 1;
                        queue.push_back(q);
                    }
                } else if (w < v) {
                    is_min = false;
                }
            });
        }
        if (is_min)
            for (int64_t q : queue) st[q] = 2;
    }
    // Label the minima inside the mask, numbered in raster order of their first pixel.
    for (int64_t p = 0; p < n; ++p) lab[p] = 0;
    int64_t next = 0;
    for (int64_t p = 0; p < n; ++p) {
        if (st[p] != 2 || !(flags[p] & kInside) || lab[p]) continue;
        if (next >= std::numeric_limits<int32_t>::max())
            throw std::invalid_argument("watershed: more than 2**31-1 local minima");
        const int32_t l = static_cast<int32_t>(++next);
        queue.clear();
        queue.push_back(p);
        lab[p] = l;
        for (size_t qi = 0; qi < queue.size(); ++qi) {
            g.for_neighbors(queue[qi], flags.data(), [&](int64_t q) {
                if (st[q] == 2 && (flags[q] & kInside) && !lab[q]) {
                    lab[q] = l;
                    queue.push_back(q);
                }
            });
        }
    }
    return next;
}

}  // namespace

int64_t minima_one(const void* image, int dtype, const uint8_t* mask, int32_t* labels, const Grid& g) {
    int64_t count = 0;
    dispatch(dtype, [&](auto tag) {
        using S = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
        count = minima_typed(static_cast<const S*>(image), mask, labels, g);
    });
    return count;
}

}  // namespace detail
}  // namespace ws
}  // namespace seg
