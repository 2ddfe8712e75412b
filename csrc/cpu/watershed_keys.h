// Heap keys of the watershed's flooding queues: what a queued pixel carries and how two are
// ordered. scikit-image orders by (value, age): the value first, then the insertion order.
//
//   * Item<K> / less: the exact-mode item (compact and watershed-line modes), with the seed
//     it was flooded from; K is the comparison type of the image (KeyOf).
//   * Standard mode (no compactness, no lines) packs the key tighter, one encoding per image
//     width: Encoding (<= 32-bit images: value code | age in one uint64), PairEncoding
//     (64-bit images below 2^32 - 4 pixels: double code, then 32-bit age and index),
//     WideEncoding (the rest: double, 64-bit age, 64-bit index).
//
// Internal to the watershed kernel; see watershed_queues.h for the queues that use them.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace seg {
namespace ws {
namespace detail {

// Images of 32-bit and 64-bit types with fewer pixels than this get 16-byte heap items (age
// and index in 32 bits); larger ones 24-byte items (see watershed.h: packed_limit).
constexpr int64_t kPackedLimit = (int64_t(1) << 32) - 4;

template <class S>
struct KeyOf {
    using type = S;
};
template <>
struct KeyOf<int64_t> {
    using type = double;  // scikit-image compares float64 copies
};
template <>
struct KeyOf<uint64_t> {
    using type = double;
};

template <class K>
struct Item {
    K value;
    int64_t age;
    int64_t index;
    int64_t source;
};

template <class K>
inline bool less(const Item<K>& a, const Item<K>& b) {
    if (a.value != b.value) return a.value < b.value;
    return a.age < b.age;
}


// ---- standard mode (no compactness, no lines) for images of at most 32 bits -------------
// The key (value, age) is packed into one uint64: an order-preserving code of the value in the
// high bits, the age in the low bits (48 bits for 8/16-bit images, 32 bits otherwise: the
// caller guarantees fewer pushes than that, as each pixel is pushed at most once here).

// Item of the standard-mode heap for images of at most 32 bits: (value code | age), index.
struct Packed {
    uint64_t key;
    int64_t index;
};

// Item of the standard-mode heap for 64-bit images (compared as double, like scikit-image).
struct Wide {
    double value;
    uint64_t age;
    int64_t index;
};

struct PackedTraits {
    using Item = Packed;
    static bool less(const Packed& x, const Packed& y) { return x.key < y.key; }
};

struct WideTraits {
    using Item = Wide;
    static bool less(const Wide& x, const Wide& y) {
        return (x.value < y.value) | ((x.value == y.value) & (x.age < y.age));
    }
};

template <class S>
struct Encoding {  // images of at most 32 bits: packed keys
    using Traits = PackedTraits;
    static constexpr int kAgeBits = sizeof(S) <= 2 ? 48 : 32;
    static constexpr uint64_t kValueMask = ~((uint64_t(1) << kAgeBits) - 1);
    using Code = uint64_t;
    static Code code(S v) {
        if constexpr (std::is_same<S, float>::value) {
            if (v == 0.0f) v = 0.0f;  // -0 and +0 tie, as in scikit-image
            uint32_t u;
            std::memcpy(&u, &v, sizeof u);
            u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
            return static_cast<uint64_t>(u) << kAgeBits;
        } else if constexpr (std::is_signed<S>::value) {
            using U = std::make_unsigned_t<S>;
            const U u = static_cast<U>(static_cast<U>(v) ^ (U(1) << (8 * sizeof(S) - 1)));
            return static_cast<uint64_t>(u) << kAgeBits;
        } else {
            return static_cast<uint64_t>(v) << kAgeBits;
        }
    }
    static Packed make(Code c, uint64_t age, int64_t index) { return Packed{c | age, index}; }
    static int64_t index(const Packed& it) { return it.index; }
    static Code value(const Packed& it) { return it.key & kValueMask; }
    static int64_t level(const Packed& it) { return static_cast<int64_t>(it.key >> kAgeBits); }
    // order-preserving code of the (clamped) value without the age, for the radix heap
    static uint64_t rcode(const Packed& it) { return it.key >> kAgeBits; }
    static uint64_t rcode_v(S v) { return code(v) >> kAgeBits; }
};

template <class S>
struct WideEncoding {  // 64-bit images and float64: compared as double
    using Traits = WideTraits;
    using Code = double;
    static Code code(S v) { return static_cast<double>(v); }
    static Wide make(Code c, uint64_t age, int64_t index) { return Wide{c, age, index}; }
    static int64_t index(const Wide& it) { return it.index; }
    static Code value(const Wide& it) { return it.value; }
    static int64_t level(const Wide&) { return 0; }
    static uint64_t ordered(double v) {
        if (v == 0.0) v = 0.0;  // -0 and +0 tie
        uint64_t u;
        std::memcpy(&u, &v, sizeof u);
        return (u >> 63) ? ~u : (u | (uint64_t(1) << 63));
    }
    static uint64_t rcode(const Wide& it) { return ordered(it.value); }
    static uint64_t rcode_v(S v) { return ordered(static_cast<double>(v)); }
};


// 64-bit images with fewer than 2^32 - 4 pixels: 16-byte items, the order-preserving code of
// the double value, then age (high 32 bits) and index (low 32 bits); only the age breaks ties.
struct Pair {
    uint64_t code;
    uint64_t age_index;
};

struct PairTraits {
    using Item = Pair;
    static bool less(const Pair& x, const Pair& y) {
        return (x.code < y.code) | ((x.code == y.code) & ((x.age_index >> 32) < (y.age_index >> 32)));
    }
};

template <class S>
struct PairEncoding {
    using Traits = PairTraits;
    using Code = uint64_t;
    static Code code(S v) { return WideEncoding<S>::ordered(static_cast<double>(v)); }
    static Pair make(Code c, uint64_t age, int64_t index) {
        return Pair{c, (age << 32) | static_cast<uint64_t>(index)};
    }
    static Code value(const Pair& it) { return it.code; }
    static int64_t level(const Pair&) { return 0; }
    static uint64_t rcode(const Pair& it) { return it.code; }
    static uint64_t rcode_v(S v) { return code(v); }
    static int64_t index(const Pair& it) { return static_cast<int64_t>(it.age_index & 0xffffffffu); }
};


}  // namespace detail
}  // namespace ws
}  // namespace seg
