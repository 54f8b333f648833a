// The C++ CPU operators of vlzoo.ops (registered as torch.ops.vlzoo_cpu.* in register_cpu.cpp).
// Shapes: B batch, K signal channels, C feature channels, N = H * W pixels (row-major), E = N - 1 tree edges.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <tuple>

namespace vlzoo {

// Kruskal MST of the 4-connected grid with squared-L2 costs of features (B, C, H, W), ties broken by
// (cost, edge index). Returns tree edges (B, E, 2) int64 in ascending (cost, index) order and their costs
// (B, E) float64.
std::tuple<at::Tensor, at::Tensor> grid_mst_cpu(const at::Tensor& features);

// Fused grid MST + global propagation (the Kruskal order is the propagation order: one sort).
// signal (B, K, H, W), features (B, C, H, W). Returns (output (B, K, H, W), tree edges (B, E, 2)).
std::tuple<at::Tensor, at::Tensor> mst_propagate_cpu(const at::Tensor& signal, const at::Tensor& features,
                                                     double zeta);

// Global propagation on a given spanning tree (B, E, 2), costs from features (B, C, H, W) on its edges,
// sorted only when the edges are not already in ascending cost order.
at::Tensor tree_propagate_cpu(const at::Tensor& signal, const at::Tensor& features, const at::Tensor& tree,
                              double zeta);

// Global propagation from edges already sorted by cost (B, E, 2) and their scaled costs w / zeta^2 (B, E),
// run with the CUDA kernel's decomposition (channels_per_call channels per "thread").
at::Tensor gp_presorted_cpu(const at::Tensor& tree_sorted, const at::Tensor& scaled_cost,
                            const at::Tensor& signal, int64_t channels_per_call);

// Local propagation. signal (B, K, H, W), image (B, C, H, W), mask (B, 1 or K, H, W) or undefined.
at::Tensor local_propagate_cpu(const at::Tensor& signal, const at::Tensor& image,
                               const std::optional<at::Tensor>& mask, int64_t kernel_size, double zeta,
                               int64_t iterations);

// Learnable-tree-filter on a spanning tree (B, E, 2): edge weights exp(-||dF||^2 / sigma).
at::Tensor tree_filter_cpu(const at::Tensor& signal, const at::Tensor& features, const at::Tensor& tree,
                           double sigma);

// Tree filter from per-edge scaled costs c_t (B, E) (s_t = exp(-c_t)), with the CUDA decomposition.
at::Tensor tree_filter_weighted_cpu(const at::Tensor& signal, const at::Tensor& tree,
                                    const at::Tensor& scaled_cost, int64_t channels_per_call);

}  // namespace vlzoo
