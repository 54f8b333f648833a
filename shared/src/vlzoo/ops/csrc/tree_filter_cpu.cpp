// Learnable-tree-filter on the CPU (LTF / TEL baseline, APro spec §3.3). Shapes: signal (B, K, H, W),
// features (B, C, H, W), tree (B, N - 1, 2). Per sample: edge costs in float64, BFS from pixel 0, then the
// two O(N) passes with all K + 1 channels (ones first) in one contiguous row per pixel. The BFS and pass
// bodies are the ones the CUDA kernels run (tree_filter_bodies.h). Parallel over the batch.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "costs.h"
#include "cpu_ops.h"
#include "tree_filter_bodies.h"

namespace vlzoo {
namespace {

struct BfsWorkspace {
  std::vector<int32_t> offsets, adjacency, adjacency_edge, order, parent, parent_edge;
  std::vector<double> cost, rows;

  void resize(int64_t N) {
    const int64_t E = std::max<int64_t>(N - 1, 1);
    offsets.resize(N + 1);
    adjacency.resize(2 * E);
    adjacency_edge.resize(2 * E);
    order.resize(N);
    parent.resize(N);
    parent_edge.resize(N);
    cost.resize(E);
  }

  int64_t bfs(const int64_t* edges, int64_t N) {
    return tf_bfs(edges, N - 1, N, offsets.data(), adjacency.data(), adjacency_edge.data(), order.data(),
                  parent.data(), parent_edge.data());
  }
};

at::Tensor checked_tree(const at::Tensor& tree, int64_t B, int64_t N) {
  TORCH_CHECK_VALUE(tree.dim() == 3 && tree.size(0) == B && tree.size(1) == N - 1 && tree.size(2) == 2,
              "tree_filter: tree must have shape (B, N - 1, 2) = (", B, ", ", N - 1, ", 2), got ", tree.sizes());
  TORCH_CHECK_VALUE(!at::isFloatingType(tree.scalar_type()) && tree.device().is_cpu(),
              "tree_filter: tree must be an integer CPU tensor");
  at::Tensor t = tree.to(at::kLong).contiguous();
  if (t.numel() > 0) {
    TORCH_CHECK_VALUE(t.min().item<int64_t>() >= 0 && t.max().item<int64_t>() < N,
                "tree_filter: tree holds pixel indices outside [0, ", N, ")");
  }
  return t;
}

void raise_not_spanning(const std::vector<int64_t>& reached, int64_t N) {
  for (size_t b = 0; b < reached.size(); ++b) {
    TORCH_CHECK_VALUE(reached[b] == N, "tree_filter: tree of sample ", b, " is not a spanning tree (a BFS from pixel 0 ",
                "reaches ", reached[b], " of ", N, " pixels)");
  }
}

}  // namespace

at::Tensor tree_filter_cpu(const at::Tensor& signal, const at::Tensor& features, const at::Tensor& tree,
                           double sigma) {
  TORCH_CHECK_VALUE(signal.dim() == 4 && features.dim() == 4, "tree_filter: signal and features must be 4-D");
  TORCH_CHECK_VALUE(signal.device().is_cpu() && features.device().is_cpu(), "tree_filter: tensors must be on the CPU");
  TORCH_CHECK_VALUE(sigma > 0.0 && std::isfinite(sigma), "tree_filter: sigma must be positive and finite, got ", sigma);
  const int64_t B = signal.size(0), K = signal.size(1);
  const int64_t N = signal.size(2) * signal.size(3);
  const int64_t C = features.size(1);
  TORCH_CHECK_VALUE(features.size(0) == B && features.size(2) == signal.size(2) && features.size(3) == signal.size(3),
              "tree_filter: features ", features.sizes(), " must share B, H, W with signal ", signal.sizes());
  TORCH_CHECK_VALUE(N >= 1 && N < (int64_t{1} << 31), "tree_filter: H * W must be in [1, 2^31)");
  const at::Tensor t = checked_tree(tree, B, N);
  const at::Tensor p = signal.to(at::kDouble).contiguous();
  const at::Tensor f = features.to(at::kDouble).contiguous();
  at::Tensor out = at::empty({B, K, N}, p.options());
  std::vector<int64_t> reached(B, N);
  std::vector<char> bad(B, 0);
  const int64_t K1 = K + 1;
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    BfsWorkspace ws;
    ws.resize(N);
    ws.rows.resize(N * K1);
    for (int64_t b = begin; b < end; ++b) {
      const int64_t* edges = t.const_data_ptr<int64_t>() + b * (N - 1) * 2;
      if (!tree_costs(f.const_data_ptr<double>() + b * C * N, C, N, edges, N - 1, ws.cost.data())) {
        bad[b] = 1;
        continue;
      }
      for (int64_t e = 0; e + 1 < N; ++e) ws.cost[e] /= sigma;
      reached[b] = ws.bfs(edges, N);
      if (reached[b] != N) continue;
      const double* pb = p.const_data_ptr<double>() + b * K * N;
      double* rows = ws.rows.data();
      for (int64_t v = 0; v < N; ++v) rows[v * K1] = 1.0;
      for (int64_t k = 0; k < K; ++k) {
        for (int64_t v = 0; v < N; ++v) rows[v * K1 + 1 + k] = pb[k * N + v];
      }
      if (K1 == 2) {
        tf_passes<2>(ws.order.data(), ws.parent.data(), ws.parent_edge.data(), ws.cost.data(), N, rows, K1, 2);
      } else {
        tf_passes<0>(ws.order.data(), ws.parent.data(), ws.parent_edge.data(), ws.cost.data(), N, rows, K1,
                     static_cast<int>(K1));
      }
      double* ob = out.mutable_data_ptr<double>() + b * K * N;
      for (int64_t k = 0; k < K; ++k) {
        for (int64_t v = 0; v < N; ++v) ob[k * N + v] = rows[v * K1 + 1 + k] / rows[v * K1];
      }
    }
  });
  for (int64_t b = 0; b < B; ++b) TORCH_CHECK_VALUE(!bad[b], "tree_filter: features of sample ", b, " contain NaN");
  raise_not_spanning(reached, N);
  return out.to(signal.scalar_type()).reshape(signal.sizes());
}

at::Tensor tree_filter_weighted_cpu(const at::Tensor& signal, const at::Tensor& tree,
                                    const at::Tensor& scaled_cost, int64_t channels_per_call) {
  TORCH_CHECK_VALUE(signal.dim() == 4 && signal.device().is_cpu(), "tree_filter_weighted: signal must be a 4-D CPU tensor");
  TORCH_CHECK_VALUE(channels_per_call >= 1, "tree_filter_weighted: channels_per_call must be >= 1");
  const int64_t B = signal.size(0), K = signal.size(1);
  const int64_t N = signal.size(2) * signal.size(3);
  const at::Tensor t = checked_tree(tree, B, N);
  TORCH_CHECK_VALUE(scaled_cost.sizes() == at::IntArrayRef({B, N - 1}), "tree_filter_weighted: scaled_cost must be (B, N - 1)");
  const at::Tensor sc = scaled_cost.to(at::kDouble).contiguous();
  const int64_t K1 = K + 1;
  // The CUDA layout: rows (B, N, K1), channel 0 = ones; BFS arrays (B, N).
  at::Tensor rows = at::empty({B, N, K1}, signal.options().dtype(at::kDouble));
  rows.select(2, 0).fill_(1.0);
  rows.narrow(2, 1, K).copy_(signal.reshape({B, K, N}).transpose(1, 2));
  at::Tensor order = at::empty({B, N}, signal.options().dtype(at::kInt));
  at::Tensor parent = at::empty_like(order);
  at::Tensor parent_edge = at::empty_like(order);
  std::vector<int64_t> reached(B, N);
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    BfsWorkspace ws;
    ws.resize(N);
    for (int64_t b = begin; b < end; ++b) {
      reached[b] = tf_bfs(t.const_data_ptr<int64_t>() + b * (N - 1) * 2, N - 1, N, ws.offsets.data(),
                          ws.adjacency.data(), ws.adjacency_edge.data(), order.mutable_data_ptr<int32_t>() + b * N,
                          parent.mutable_data_ptr<int32_t>() + b * N, parent_edge.mutable_data_ptr<int32_t>() + b * N);
    }
  });
  raise_not_spanning(reached, N);
  const int64_t groups = (K1 + channels_per_call - 1) / channels_per_call;
  at::parallel_for(0, B * groups, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / groups;
      const int64_t k0 = (task % groups) * channels_per_call;
      const int nc = static_cast<int>(std::min<int64_t>(channels_per_call, K1 - k0));
      tf_passes<0>(order.const_data_ptr<int32_t>() + b * N, parent.const_data_ptr<int32_t>() + b * N,
                   parent_edge.const_data_ptr<int32_t>() + b * N, sc.const_data_ptr<double>() + b * (N - 1), N,
                   rows.mutable_data_ptr<double>() + b * N * K1 + k0, K1, nc);
    }
  });
  const at::Tensor out = rows.narrow(2, 1, K) / rows.narrow(2, 0, 1);
  return out.transpose(1, 2).to(signal.scalar_type()).reshape(signal.sizes());
}

}  // namespace vlzoo
