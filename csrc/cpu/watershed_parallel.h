// Marker-based watershed, "parallel" tie order (segengine.watershed(..., tie_order="parallel")).
//
// Rule: a pure function of the image, the markers and the footprint, so the result is the
// same for any thread count and any cut of the image into blocks.
//   * Every pixel reached from a marker has a key (C, D). C, its priority, is the smallest,
//     over the paths from a marker to it, of the largest value on the path; D counts the
//     steps since that path last rose to C. Markers (nonzero labels inside the mask) have
//     (their value, 0); any other reached pixel q, with (Cp, Dp) the smallest key among its
//     neighbours, has (v_q, 1) when v_q > Cp and (Cp, Dp + 1) otherwise. Keys compare by C,
//     then D.
//   * A pixel takes the label of its neighbour of smallest key; among neighbours of equal
//     keys, the first in the footprint's neighbour order (watershed.h).
// A priority flood that lets pixels leave in key order and labels every pixel from the first
// of its neighbours to leave computes exactly this, with that neighbour order breaking ties
// between equal keys. The fast tie order (watershed_fast.h) is such a flood with ties broken
// by arrival instead, so the two differ only at pixels two of whose neighbours of different
// labels share the smallest key: where fronts meet at equal (priority, distance), never on an
// image of distinct values, where both equal scikit-image's result.
//
// How: the image is cut along its first axis into one block of planes per thread (at least
// as many planes as the footprint reaches, and 2^14 pixels). Each block is flooded on its
// own thread from its own markers by the fast tie order's scan restricted to the block (its
// own levels and slots), which records every pixel's key beside its label. Keys restricted
// to a block can only be too large: the blocks then repair their keys from copies of the
// planes across their faces (a Dijkstra over the pixels whose key decreases, labels carried
// along), in rounds, until no face plane changes. Last, every pixel finds its parent (its
// neighbour of smallest key, in parallel); where a label differs from its parent's (a tie
// the scan broke by arrival, or a parent that changed in the repair without a key change),
// the pixel and its subtree in the parent forest are relabelled, in key order.
// Arguments as in watershed.h (compact and watershed-line modes are not offered here).
// Errors: std::invalid_argument (NaN in a float image, bad arguments), std::bad_alloc.
#pragma once

#include <cstdint>

#include "watershed.h"

namespace seg {
namespace ws {

// Flood `image` from the markers in `labels` (in place; `label_bytes` 4 or 8) with the
// parallel tie order; `num_threads` <= 0: all OpenMP threads.
void watershed_parallel(const void* image, int dtype, const uint8_t* mask, void* labels, int label_bytes,
                        const Geometry& geom, int num_threads);

// Batch of `batch` items, as watershed_fast_batch (watershed_fast.h), parallel tie order.
// Items run in parallel; a batch of one item gives its threads to the item.
void watershed_parallel_batch(const void* images, int dtype, const uint8_t* masks, void* labels,
                              int label_bytes, int64_t batch, const Geometry& geom,
                              const Geometry* minima_geom, int num_threads);

}  // namespace ws
}  // namespace seg
