// Global affinity propagation (APro, spec §2.2 / §3.2): the sorted union with lazy accumulators.
//
// For tree edges processed in ascending cost, the edge (u, v, w) that joins components X and Y is the
// largest edge on the tree path of every pair (x in X, y in Y), so every pixel of X gains e * (sums of Y)
// and every pixel of Y gains e * (sums of X), with e = exp(-w / zeta^2). The gains are kept lazily at the
// component roots ("tags"); the tag forest is the merge log (x_t absorbs y_t at step t), and the final
// per-pixel value is the sum of tags on its path to the last root.
//
// Channel layout of a node row (double): [acc_0 .. acc_{K1-1} | sum_0 .. sum_{K1-1}], channel 0 is the
// normaliser (signal of ones), channels 1..K the signal. `rows` points at channel 0 of node 0, `stride` is
// the distance between nodes and `sum_offset` the distance from acc_k to sum_k. One call processes
// n_channels consecutive channels: the CPU passes a chunk of up to 8 (contiguous updates), one CUDA
// thread passes a single channel.
#pragma once

#include "common.h"

namespace vlzoo {

// Distance (in merges) at which the CPU replay prefetches the two rows of an upcoming merge: the log is
// known in advance, and without it a wide multi-channel row costs one memory latency per merge.
constexpr int64_t kPrefetchAhead = 8;

// Prefetches `bytes` bytes starting at p into the cache (no-op in device code).
VLZOO_HD void prefetch_row(const double* p, int64_t bytes) {
#if !defined(__CUDA_ARCH__) && (defined(__GNUC__) || defined(__clang__))
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(c + b, 1);
#else
  (void)p;
  (void)bytes;
#endif
}

// Union-find over edges in the given order, union by size (equal sizes: the root of the first endpoint
// absorbs). Writes the merge log (log_x[t] absorbs log_y[t]). Returns -1, or the index of the first edge
// whose endpoints are already connected (the edges are then not a spanning tree).
VLZOO_HD int64_t gp_merge_log(const int64_t* edges, int64_t n_edges, int64_t n_nodes, int32_t* parent,
                              int32_t* size, int32_t* log_x, int32_t* log_y) {
  for (int64_t i = 0; i < n_nodes; ++i) {
    parent[i] = static_cast<int32_t>(i);
    size[i] = 1;
  }
  for (int64_t t = 0; t < n_edges; ++t) {
    int32_t x = uf_find(parent, static_cast<int32_t>(edges[2 * t]));
    int32_t y = uf_find(parent, static_cast<int32_t>(edges[2 * t + 1]));
    if (x == y) return t;
    if (size[x] < size[y]) swap_values(x, y);
    parent[y] = x;
    size[x] += size[y];
    log_x[t] = x;
    log_y[t] = y;
  }
  return -1;
}

// One merge's update of the rows of x (absorbing) and y (absorbed), acc at [0, nc), sums at
// [sum_offset, sum_offset + nc). The two rows never overlap (x != y); __restrict__ says so, which lets the
// compiler keep the loads in registers and use packed operations instead of a scalar load-modify-store per
// channel (5-8 % less median time at 21 channels, apro_affinity/README.md). Per channel the operations and
// their order are unchanged, so the results are bit-identical.
VLZOO_HD void merge_update(double* __restrict__ ax, double* __restrict__ ay, int64_t sum_offset, double e,
                           int nc) {
  double* sx = ax + sum_offset;
  const double* sy = ay + sum_offset;
  for (int k = 0; k < nc; ++k) ax[k] += e * sy[k];          // X gains e * (sums of Y)
  for (int k = 0; k < nc; ++k) ay[k] += e * sx[k] - ax[k];  // Y gains e * (sums of X), minus what it
                                                            // will inherit from x in the final sweep
  for (int k = 0; k < nc; ++k) sx[k] += sy[k];
}

// Final-sweep step: y inherits x's accumulators.
VLZOO_HD void inherit(const double* __restrict__ ax, double* __restrict__ ay, int nc) {
  for (int k = 0; k < nc; ++k) ay[k] += ax[k];
}

// Replays the merge log with the lazy accumulators, then pushes the tags down the tag forest.
// scaled_cost[t] = w_t / zeta^2 of merge t. On entry acc = 0 and sum = the node's own signal; on exit
// acc_k[v] = sum_{j != v} exp(-w_vj / zeta^2) * p_k[j] (sum is left holding component sums).
// kFixed > 0 fixes the channel count at compile time (n_channels is then ignored). kWeights: the array
// holds the merge weights exp(-w_t / zeta^2) themselves (the CPU computes them once per sample, not once
// per channel chunk).
template <int kFixed, bool kWeights = false>
VLZOO_HD void gp_replay(const int32_t* log_x, const int32_t* log_y, const double* scaled_cost,
                        int64_t n_edges, double* rows, int64_t stride, int64_t sum_offset, int n_channels) {
  const int nc = kFixed > 0 ? kFixed : n_channels;
  // Bytes of a node row actually touched: from acc_0 to the last sum channel.
  const int64_t row_bytes = (sum_offset + nc) * static_cast<int64_t>(sizeof(double));
  for (int64_t t = 0; t < n_edges; ++t) {
    if (t + kPrefetchAhead < n_edges) {
      prefetch_row(rows + static_cast<int64_t>(log_x[t + kPrefetchAhead]) * stride, row_bytes);
      prefetch_row(rows + static_cast<int64_t>(log_y[t + kPrefetchAhead]) * stride, row_bytes);
    }
    const double e = kWeights ? scaled_cost[t] : exp(-scaled_cost[t]);
    double* ax = rows + static_cast<int64_t>(log_x[t]) * stride;
    double* ay = rows + static_cast<int64_t>(log_y[t]) * stride;
    merge_update(ax, ay, sum_offset, e, nc);
  }
  // Final sweep: y_t was linked under x_t at step t, and x_t's own link (if any) happened later, so in
  // reverse order x_t already holds its final value when y_t inherits it. Iterative, no DFS.
  const int64_t acc_bytes = nc * static_cast<int64_t>(sizeof(double));
  for (int64_t t = n_edges - 1; t >= 0; --t) {
    if (t >= kPrefetchAhead) {
      prefetch_row(rows + static_cast<int64_t>(log_x[t - kPrefetchAhead]) * stride, acc_bytes);
      prefetch_row(rows + static_cast<int64_t>(log_y[t - kPrefetchAhead]) * stride, acc_bytes);
    }
    const double* ax = rows + static_cast<int64_t>(log_x[t]) * stride;
    double* ay = rows + static_cast<int64_t>(log_y[t]) * stride;
    inherit(ax, ay, nc);
  }
}

}  // namespace vlzoo
