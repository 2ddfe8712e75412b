// Local-minima markers of one watershed item (markers=None): see watershed.h,
// local_minima_markers. Internal to the watershed kernel.
#pragma once

#include <cstdint>

#include "watershed_grid.h"

namespace seg {
namespace ws {
namespace detail {

// Labelled local minima of `image` (a seg::codes::ImageDType `dtype`) inside `mask`, written
// to `labels` (int32, one per pixel of `g`); returns their number.
int64_t minima_one(const void* image, int dtype, const uint8_t* mask, int32_t* labels, const Grid& g);

}  // namespace detail
}  // namespace ws
}  // namespace seg
