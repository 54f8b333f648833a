// Learnable Tree Filter (Song et al. 2019; APro spec §3.3): the path-product filter in O(N), two passes.
//
//   S_ij = prod_{e on the tree path i..j} s_e,  s_e = exp(-c_e),   y_i = sum_j S_ij f_j / sum_j S_ij.
//   Over a BFS order rooted at pixel 0:
//     leaf -> root:  A_v = f_v + sum_{children c} s_c A_c
//     root -> leaf:  O_root = A_root,  O_v = s_v O_parent + (1 - s_v^2) A_v
//   with 1 - s^2 = -expm1(-2 c) computed without cancellation. The normaliser is channel 0 (f = 1).
#pragma once

#include "common.h"

namespace vlzoo {

// Builds the adjacency (CSR) of one tree and its BFS order from pixel 0. For every pixel v: parent[v]
// (the root is its own parent) and parent_edge[v] (index of the edge to the parent, -1 at the root).
// Returns the number of pixels reached; it equals n_nodes exactly when the n_nodes - 1 edges span.
// Workspaces: offsets (n_nodes + 1), adjacency and adjacency_edge (2 * n_edges).
VLZOO_HD int64_t tf_bfs(const int64_t* edges, int64_t n_edges, int64_t n_nodes, int32_t* offsets,
                        int32_t* adjacency, int32_t* adjacency_edge, int32_t* order, int32_t* parent,
                        int32_t* parent_edge) {
  for (int64_t i = 0; i <= n_nodes; ++i) offsets[i] = 0;
  for (int64_t t = 0; t < n_edges; ++t) {
    offsets[edges[2 * t] + 1] += 1;
    offsets[edges[2 * t + 1] + 1] += 1;
  }
  for (int64_t i = 0; i < n_nodes; ++i) offsets[i + 1] += offsets[i];
  for (int64_t i = 0; i < n_nodes; ++i) parent[i] = offsets[i];  // parent[] doubles as the fill cursor
  for (int64_t t = 0; t < n_edges; ++t) {
    const int64_t u = edges[2 * t];
    const int64_t v = edges[2 * t + 1];
    adjacency[parent[u]] = static_cast<int32_t>(v);
    adjacency_edge[parent[u]++] = static_cast<int32_t>(t);
    adjacency[parent[v]] = static_cast<int32_t>(u);
    adjacency_edge[parent[v]++] = static_cast<int32_t>(t);
  }
  for (int64_t i = 0; i < n_nodes; ++i) parent[i] = -1;  // -1 = not reached yet
  if (n_nodes == 0) return 0;
  order[0] = 0;
  parent[0] = 0;
  parent_edge[0] = -1;
  int64_t head = 0;
  int64_t tail = 1;
  while (head < tail) {
    const int32_t v = order[head++];
    for (int32_t j = offsets[v]; j < offsets[v + 1]; ++j) {
      const int32_t w = adjacency[j];
      if (parent[w] == -1) {
        parent[w] = v;
        parent_edge[w] = adjacency_edge[j];
        order[tail++] = w;
      }
    }
  }
  return tail;
}

// The two passes on rows (node v's channel k at rows[v * stride + k]); on entry rows hold f (channel 0 = 1),
// on exit the unnormalised filter output O. scaled_cost[t] = c_t of tree edge t.
template <int kFixed>
VLZOO_HD void tf_passes(const int32_t* order, const int32_t* parent, const int32_t* parent_edge,
                        const double* scaled_cost, int64_t n_nodes, double* rows, int64_t stride, int n_channels) {
  const int nc = kFixed > 0 ? kFixed : n_channels;
  for (int64_t i = n_nodes - 1; i >= 1; --i) {
    const int32_t v = order[i];
    const double s = exp(-scaled_cost[parent_edge[v]]);
    const double* rv = rows + static_cast<int64_t>(v) * stride;
    double* rp = rows + static_cast<int64_t>(parent[v]) * stride;
    for (int k = 0; k < nc; ++k) rp[k] += s * rv[k];
  }
  for (int64_t i = 1; i < n_nodes; ++i) {
    const int32_t v = order[i];
    const double c = scaled_cost[parent_edge[v]];
    const double s = exp(-c);
    const double one_minus_s2 = -expm1(-2.0 * c);
    const double* rp = rows + static_cast<int64_t>(parent[v]) * stride;  // already O_parent
    double* rv = rows + static_cast<int64_t>(v) * stride;
    for (int k = 0; k < nc; ++k) rv[k] = s * rp[k] + one_minus_s2 * rv[k];
  }
}

}  // namespace vlzoo
