// Image dtype dispatch of the watershed kernel: a seg::codes::ImageDType code to the C++
// element type (csrc/common/seg_codes.h, mirrored by segengine._codes.ImageDType).
//
// Internal to the watershed kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "seg_codes.h"

namespace seg {
namespace ws {
namespace detail {

// Calls f(static_cast<const S*>(nullptr)) with S the element type of `dtype`.
template <class F>
void dispatch(int dtype, F&& f) {
    using namespace seg::codes;
    switch (dtype) {
        case DTYPE_U8: f(static_cast<const uint8_t*>(nullptr)); break;
        case DTYPE_I8: f(static_cast<const int8_t*>(nullptr)); break;
        case DTYPE_U16: f(static_cast<const uint16_t*>(nullptr)); break;
        case DTYPE_I16: f(static_cast<const int16_t*>(nullptr)); break;
        case DTYPE_U32: f(static_cast<const uint32_t*>(nullptr)); break;
        case DTYPE_I32: f(static_cast<const int32_t*>(nullptr)); break;
        case DTYPE_U64: f(static_cast<const uint64_t*>(nullptr)); break;
        case DTYPE_I64: f(static_cast<const int64_t*>(nullptr)); break;
        case DTYPE_F32: f(static_cast<const float*>(nullptr)); break;
        case DTYPE_F64: f(static_cast<const double*>(nullptr)); break;
        default: throw std::invalid_argument("watershed: unsupported image dtype code " + std::to_string(dtype));
    }
}

// Bytes per element of `dtype`.
inline size_t dtype_size(int dtype) {
    size_t s = 0;
    dispatch(dtype, [&](auto tag) { s = sizeof(*tag); });
    return s;
}

}  // namespace detail
}  // namespace ws
}  // namespace seg
