// One watershed item: the flooding mode (compact / watershed line / standard) and, in the
// standard mode, the heap key layout for the image's width. See watershed.h for the contract
// and watershed_standard.h / watershed_exact.h for the flooding order.
#include "watershed_flood.h"

#include <stdexcept>
#include <type_traits>
#include <vector>

#include "watershed_dispatch.h"
#include "watershed_exact.h"
#include "watershed_keys.h"
#include "watershed_standard.h"

// The compact cost value + c * d must round exactly like scikit-image's (no fused multiply-add):
// setup.py builds with -ffp-contract=off; clang also gets the pragma.
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

namespace seg {
namespace ws {
namespace detail {
namespace {

template <class S, class L>
void watershed_typed(const S* img, const uint8_t* mask, L* lab, const Grid& g, double compactness,
                     bool wsl, int64_t packed_limit, const Levels& lv_out) {
    if (g.n == 0) return;
    if (lv_out.out && (compactness > 0 || wsl))
        throw std::invalid_argument("watershed: flooding levels are only computed in the standard mode");
    std::vector<uint8_t> flags(static_cast<size_t>(g.n));
    build_flags(img, mask, flags.data(), g);
    if (compactness > 0) {
        flood<S, double, L, true>(img, flags.data(), lab, g, compactness, wsl);
        return;
    }
    if (!wsl) {
        if constexpr (sizeof(S) <= 4) {
            // at most n + 1 pushes: the age must fit the packed key
            if (sizeof(S) <= 2 || g.n < packed_limit) {
                flood_standard<S, L, Encoding<S>>(img, flags.data(), lab, g, lv_out);
                return;
            }
        }
        if (g.n < packed_limit) flood_standard<S, L, PairEncoding<S>>(img, flags.data(), lab, g, lv_out);
        else flood_standard<S, L, WideEncoding<S>>(img, flags.data(), lab, g, lv_out);
        return;
    }
    flood<S, typename KeyOf<S>::type, L, false>(img, flags.data(), lab, g, compactness, wsl);
}

}  // namespace

void watershed_one(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
                   const Grid& g, double compactness, bool wsl, int64_t packed_limit,
                   const Levels& lv_out) {
    if (label_bytes != 4 && label_bytes != 8) throw std::invalid_argument("watershed: labels must be int32 or int64");
    // Packed items hold 32-bit ages and indices: never above the default limit.
    const int64_t limit = (packed_limit < 0 || packed_limit > kPackedLimit) ? kPackedLimit : packed_limit;
    dispatch(dtype, [&](auto tag) {
        using S = std::remove_const_t<std::remove_pointer_t<decltype(tag)>>;
        const S* img = static_cast<const S*>(image);
        if (label_bytes == 4) watershed_typed(img, mask, static_cast<int32_t*>(labels), g, compactness, wsl, limit, lv_out);
        else watershed_typed(img, mask, static_cast<int64_t*>(labels), g, compactness, wsl, limit, lv_out);
    });
}

}  // namespace detail
}  // namespace ws
}  // namespace seg
