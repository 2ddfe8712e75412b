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
// How: values become order-preserving integer codes. Every in-mask pixel gets a level (the
// position of its code in the sorted order of the in-mask codes) and a slot: 8/16-bit images
// by a histogram of the grey levels, wider ones with at most 2^16 distinct values (a float
// copy of an 8-bit image, a filter of one) by a count per value in hash tables, others by a
// parallel sample sort (watershed_fast_levels.h); idle markers (all neighbours markers or
// outside the mask) get no level. The flood scans the levels in increasing order; a pixel
// queued above the level being emptied waits in its level's slots (one per pixel, so a level's
// queue needs no list), pixels clamped to the current level go to a FIFO: O(1) per pixel,
// slots read in order, the neighbourhoods of pixels a few levels ahead prefetched
// (watershed_fast_flood.h). Flags, codes, the sort and the slot setup run on `num_threads`
// threads; the flood itself is serial.
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
