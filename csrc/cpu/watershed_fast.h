// Marker-based watershed, "fast" tie order (segengine.watershed(..., tie_order="fast")).
//
// Flooding rule (a stable priority flood):
//   * every queued pixel has a priority, max(image value, priority of the pixel that reached
//     it); markers (nonzero labels inside the mask) have their own value;
//   * pixels leave the queue in order of (priority, arrival): markers arrive first, in raster
//     (C) order, then every newly reached pixel in the order it is reached;
//   * a pixel leaving the queue gives its label to each of its unlabelled, in-mask neighbours
//     (visited in the footprint order of watershed.h), which then arrive in the queue.
// This is scikit-image's rule with one change: scikit-image gives every marker age 0, so
// equal-valued markers leave in the order of its binary heap's layout; here they leave in
// raster order. The result therefore equals the exact mode (watershed.h) whenever no two
// markers of different labels share a value (in particular on images with distinct values),
// and it never depends on the thread count.
//
// How: values become order-preserving integer codes; for 8/16-bit images the code is the
// grey level, for wider images the rank of the code among the in-mask pixels (a stable,
// OpenMP-parallel LSD radix sort). The flood is then a bucket queue with one FIFO (a linked
// list through a per-pixel `next` array) per priority level: O(1) per pixel. The codes,
// flags, NaN check and sort run on `num_threads` threads; the flood itself is serial.
// Arguments as in watershed.h (compact and watershed-line modes are not offered here).
// Errors: std::invalid_argument (NaN in a float image, bad arguments), std::bad_alloc.
#pragma once

#include <cstdint>

#include "watershed.h"

namespace seg {
namespace ws {

// Flood `image` from the markers in `labels` (in place; `label_bytes` 4 or 8) with the fast
// tie order; `num_threads` <= 0: all OpenMP threads.
void watershed_fast(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
                    const Geometry& geom, int num_threads);

// Batch of `batch` items of prod(shape) pixels each, as watershed_batch in watershed.h
// (minima_geom != NULL: seed each item from its local minima, int32 labels), fast tie order.
// Items run in parallel; a batch of one item gives its threads to the item.
void watershed_fast_batch(const void* images, int dtype, const uint8_t* masks, void* labels,
                          int label_bytes, int64_t batch, const Geometry& geom,
                          const Geometry* minima_geom, int num_threads);

}  // namespace ws
}  // namespace seg
