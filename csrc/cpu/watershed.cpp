// Marker-based watershed, scikit-image 0.26 semantics: the entry points of watershed.h.
// See watershed.h for the contract and the file map.
//
// Flooding order (what scikit-image's Cython kernel does, restated):
//   * every marker pixel is pushed first, in raster order, with key (image value, age 0);
//   * each push of a neighbour gets the next age (1, 2, ... never reused), and its value is
//     max(image[neighbour] (+ compactness * distance to the seed), value of the popped pixel);
//   * items leave a binary min-heap ordered by (value, age). Markers share age 0, so equal-valued
//     markers tie and leave in the order the heap's layout dictates: we keep a binary heap
//     with exactly the same push (sift-up) and pop (last to root, sift-down, left child first)
//     rules, so the layout and therefore the order are the same.
//   * standard mode labels a pixel when it is pushed; compact and watershed-line modes label
//     it when it is popped (a pixel may be pushed several times).
// Speed: in standard mode, once no two differently-labelled markers that share a value are
// left in the heap, every remaining key is unique and any queue popping in (value, age) order
// gives the same result: a bucket queue (one FIFO per grey level, O(1)) for 8/16-bit images,
// a monotone radix heap on 64-bit value codes for the others. Equal-valued markers of the
// same label may leave in any order there: they leave consecutively and push the same pixels
// with the same label, so the labelling does not depend on their order. Until then, the heap
// has 16-byte packed keys (value code | age) for images of at most 32 bits, is laid out so a
// node's grandchildren share a cache line, and prefetches two levels ahead.

#include "watershed.h"

#include <exception>
#include <stdexcept>

#include "parallel.h"
#include "watershed_batch.h"
#include "watershed_dispatch.h"
#include "watershed_flood.h"
#include "watershed_grid.h"
#include "watershed_minima.h"

namespace seg {
namespace ws {

void watershed(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
               const Geometry& geom, double compactness, bool watershed_line, int64_t packed_limit) {
    detail::Grid g(geom);
    detail::watershed_one(image, dtype, mask, labels, label_bytes, g, compactness, watershed_line,
                          packed_limit);
}

void watershed_levels(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
                      const Geometry& geom, const double* level_value, double* levels) {
    if (!level_value || !levels) throw std::invalid_argument("watershed_levels: null level arrays");
    detail::Grid g(geom);
    detail::watershed_one(image, dtype, mask, labels, label_bytes, g, 0.0, false, -1,
                          detail::Levels{level_value, levels});
}

int64_t local_minima_markers(const void* image, int dtype, const uint8_t* mask, int32_t* labels,
                             const Geometry& geom) {
    detail::Grid g(geom);
    return detail::minima_one(image, dtype, mask, labels, g);
}

void watershed_batch(const void* images, int dtype, const uint8_t* masks, void* labels,
                     int label_bytes, int64_t batch, const Geometry& geom,
                     const Geometry* minima_geom, double compactness, bool watershed_line,
                     int num_threads) {
    detail::for_each_item(images, dtype, masks, labels, label_bytes, batch, geom, minima_geom,
                          resolve_threads(num_threads),
                          [&](const void* img, const uint8_t* m, void* lab, const detail::Grid& g) {
                              detail::watershed_one(img, dtype, m, lab, label_bytes, g, compactness,
                                                    watershed_line, -1);
                          });
}

}  // namespace ws
}  // namespace seg
