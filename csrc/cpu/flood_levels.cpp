#include "flood_levels.h"

#include <algorithm>
#include <limits>
#include <queue>
#include <stdexcept>
#include <utility>
#include <vector>

namespace seg {
namespace ws {

void flood_levels(const double* priority, const uint8_t* seeds, const uint8_t* inside, double* level,
                  int64_t n, const int64_t* offsets, int noffsets) {
    if (n < 0 || noffsets < 0) throw std::invalid_argument("flood_levels: negative size");
    const double inf = std::numeric_limits<double>::infinity();
    std::fill(level, level + n, inf);
    // Every pixel is pushed once, with its own priority: all its incoming edges weigh the
    // same, so the first push is as good as any (Prim's algorithm on vertex weights).
    // Pixels at or below the water level take the current level whatever their order, so
    // they go to a plain stack; only pixels above it need the heap (as in Barnes et al.'s
    // Priority-Flood).
    std::vector<uint8_t> pushed(static_cast<size_t>(n), 0);
    using Item = std::pair<double, int64_t>;
    std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;
    std::vector<int64_t> low;
    for (int64_t i = 0; i < n; ++i) {
        if (seeds[i] && inside[i]) {
            pushed[i] = 1;
            heap.emplace(priority[i], i);
        }
    }
    double water = -inf;
    while (!heap.empty() || !low.empty()) {
        int64_t p;
        if (!low.empty()) {
            p = low.back();
            low.pop_back();
        } else {
            p = heap.top().second;
            water = std::max(water, heap.top().first);
            heap.pop();
        }
        level[p] = water;
        for (int k = 0; k < noffsets; ++k) {
            const int64_t q = p + offsets[k];
            if (q < 0 || q >= n) throw std::invalid_argument("flood_levels: a neighbour left the padded grid");
            if (!inside[q] || pushed[q]) continue;
            pushed[q] = 1;
            if (priority[q] <= water) low.push_back(q);
            else heap.emplace(priority[q], q);
        }
    }
}

}  // namespace ws
}  // namespace seg
