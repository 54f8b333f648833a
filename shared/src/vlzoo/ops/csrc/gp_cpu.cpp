// Grid MST and global affinity propagation on the CPU (APro spec §2.2, §3.1, §3.2, §9.3).
//
// Shapes: features (B, C, H, W), signal (B, K, H, W), N = H * W, E = N - 1 tree edges.
//
// grid_mst: Kruskal on the 4-grid. The ~2N squared-L2 costs are computed in float64 and sorted by a stable
// LSD radix sort on their bit patterns, starting from edge-index order, so the order is (cost, edge index)
// and the tree is the unique MST under that total order (identical to the reference's Boruvka tree). The
// official op uses Boruvka; Kruskal is chosen here because it yields the tree edges already in ascending
// cost order, which is exactly the order global propagation needs: MST + propagation share one sort.
//
// Propagation: phase 1 (per sample) produces the merge log (which root absorbed which, per tree edge, in
// ascending cost); phase 2 (per sample x channel chunk) replays it with float64 lazy accumulators, all
// channels of a chunk in one contiguous row per pixel (spec §9.3), and finalises by an iterative reverse
// sweep. Both phases run under at::parallel_for (OpenMP), over batch and over batch x channel chunks.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "costs.h"
#include "cpu_ops.h"
#include "gp_bodies.h"
#include "radix_sort.h"

namespace vlzoo {
namespace {

// Per-thread scratch, kept between calls so repeated calls do not page-fault fresh buffers.
struct Workspace {
  std::vector<double> cost;
  std::vector<uint64_t> keys, tmp_keys;
  std::vector<uint32_t> vals, tmp_vals, hist;
  std::vector<int32_t> parent, size;
  std::vector<int64_t> sorted_edges;
  std::vector<double> rows;
};

Workspace& workspace() {
  static thread_local Workspace ws;
  return ws;
}

void check_image_tensor(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK_VALUE(t.dim() == 4, op, ": ", name, " must be a (B, C, H, W) tensor, got shape ", t.sizes());
  TORCH_CHECK_VALUE(t.device().is_cpu(), op, ": ", name, " must be on the CPU, got ", t.device());
  TORCH_CHECK_VALUE(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, op, ": ", name,
              " must be float32 or float64, got ", t.scalar_type());
}

void check_same_grid(const at::Tensor& a, const at::Tensor& b, const char* op) {
  TORCH_CHECK_VALUE(a.size(0) == b.size(0) && a.size(2) == b.size(2) && a.size(3) == b.size(3), op,
              ": signal ", a.sizes(), " and features ", b.sizes(), " must share B, H and W");
}

at::Tensor checked_tree(const at::Tensor& tree, int64_t B, int64_t N, const char* op) {
  TORCH_CHECK_VALUE(tree.dim() == 3 && tree.size(0) == B && tree.size(1) == N - 1 && tree.size(2) == 2, op,
              ": tree must have shape (B, N - 1, 2) = (", B, ", ", N - 1, ", 2), got ", tree.sizes());
  TORCH_CHECK_VALUE(!at::isFloatingType(tree.scalar_type()) && tree.scalar_type() != at::kBool, op,
              ": tree must hold integer pixel indices, got ", tree.scalar_type());
  TORCH_CHECK_VALUE(tree.device().is_cpu(), op, ": tree must be on the CPU, got ", tree.device());
  at::Tensor t = tree.to(at::kLong).contiguous();
  if (t.numel() > 0) {
    const int64_t lo = t.min().item<int64_t>();
    const int64_t hi = t.max().item<int64_t>();
    TORCH_CHECK_VALUE(lo >= 0 && hi < N, op, ": tree holds pixel index ", (lo < 0 ? lo : hi), " outside [0, ", N, ")");
  }
  return t;
}

// Kruskal on one grid. Writes the tree edges (E, 2) in ascending (cost, index) order, their raw costs and
// the merge log. Returns false when a cost is NaN.
template <typename scalar_t>
bool kruskal_grid(const scalar_t* f, int64_t C, int64_t H, int64_t W, int64_t* tree, double* tree_cost,
                  int32_t* log_x, int32_t* log_y) {
  Workspace& ws = workspace();
  const int64_t N = H * W;
  const int64_t n_edges = H * (W - 1) + (H - 1) * W;
  ws.cost.resize(n_edges);
  ws.keys.resize(n_edges);
  ws.tmp_keys.resize(n_edges);
  ws.vals.resize(n_edges);
  ws.tmp_vals.resize(n_edges);
  grid_costs(f, C, H, W, ws.cost.data());
  // Value = (first pixel << 1) | vertical: the endpoints follow without a division in the hot loop.
  int64_t idx = 0;
  bool has_nan = false;
  for (int64_t r = 0; r < H; ++r) {
    for (int64_t x = 0; x + 1 < W; ++x, ++idx) {
      ws.vals[idx] = static_cast<uint32_t>((r * W + x) << 1);
    }
  }
  for (int64_t r = 0; r + 1 < H; ++r) {
    for (int64_t x = 0; x < W; ++x, ++idx) {
      ws.vals[idx] = static_cast<uint32_t>(((r * W + x) << 1) | 1);
    }
  }
  for (int64_t i = 0; i < n_edges; ++i) {
    has_nan |= std::isnan(ws.cost[i]);
    ws.keys[i] = double_key(ws.cost[i]);
  }
  if (has_nan) return false;
  uint64_t* keys = ws.keys.data();
  uint64_t* tmp_keys = ws.tmp_keys.data();
  uint32_t* vals = ws.vals.data();
  uint32_t* tmp_vals = ws.tmp_vals.data();
  radix_sort_pairs<11>(keys, vals, tmp_keys, tmp_vals, n_edges, ws.hist);

  ws.parent.resize(N);
  ws.size.resize(N);
  int32_t* parent = ws.parent.data();
  int32_t* size = ws.size.data();
  for (int64_t i = 0; i < N; ++i) {
    parent[i] = static_cast<int32_t>(i);
    size[i] = 1;
  }
  int64_t t = 0;
  for (int64_t i = 0; i < n_edges && t < N - 1; ++i) {
    const uint32_t val = vals[i];
    const int32_t u = static_cast<int32_t>(val >> 1);
    const int32_t v = u + ((val & 1u) ? static_cast<int32_t>(W) : 1);
    int32_t x = uf_find(parent, u);
    int32_t y = uf_find(parent, v);
    if (x == y) continue;
    if (size[x] < size[y]) swap_values(x, y);
    parent[y] = x;
    size[x] += size[y];
    log_x[t] = x;
    log_y[t] = y;
    tree[2 * t] = u;
    tree[2 * t + 1] = v;
    tree_cost[t] = key_double(keys[i]);
    ++t;
  }
  return true;
}

// Channel chunks. A replay pass touches two random pixel rows per merge, each 2 * (its channels) doubles.
// All 21 channels of a VOC signal and the ones channel in one pass make 352-byte rows, 23 MiB at 256^2, more
// than the last-level cache holds, and the pass runs at memory latency; the same log replayed over narrower
// chunks stays in cache. The channels of a sample are "slots": slot 0 is the ones channel (the normaliser),
// slots 1..K the signal. Chunks hold at most 4 slots (64-byte rows) while the image's rows fit in
// kChunkCacheBytes (up to about 362^2 pixels); beyond that even narrow rows spill and fewer, wider passes
// (8 slots, 128-byte rows) cost less. Measured on one core of the (shared) 2-core machine, best of 7-40,
// 21 channels, MST included, with the ones channel repeated in every chunk (before it was shared): 96^2 one
// pass 2.09 ms, chunks of 4 / 7 channels 1.89 / 1.71 ms; 256^2 one pass 22.1-30.5 ms, chunks of 4:
// 13.8-16.6 ms, of 7: 14.6-18.8 ms; 512^2 one pass 160 ms, chunks of 4 / 7: 178 / 150 ms. Numbering the rows
// by absorption order or by 8 x 8 / 16 x 16 pixel tiles instead of row-major order was slower at 96^2 and
// 256^2 (row-major keeps the two components of a merge, spatial neighbours, close in memory).
constexpr int64_t kNarrowSlots = 4;
constexpr int64_t kWideSlots = 8;
constexpr int64_t kChunkCacheBytes = int64_t{8} << 20;

// Slots per chunk for an image of N pixels.
int64_t chunk_width(int64_t N) {
  const int64_t narrow_bytes = N * 2 * kNarrowSlots * static_cast<int64_t>(sizeof(double));
  return narrow_bytes <= kChunkCacheBytes ? kNarrowSlots : kWideSlots;
}

// Phase 2 for slots [s0, s1) of one sample (a row = [acc of the slots | sum of the slots]). The chunk that
// holds slot 0 replays the ones channel too and, when `inv_norm` is given, stores 1 / normaliser per pixel
// there; a chunk without slot 0 reads the normalisers from `inv_norm`. Writes out = (acc + p) / normaliser
// for its signal channels. weights[t] = exp(-w_t / zeta^2) of merge t.
template <typename scalar_t>
void replay_chunk(const scalar_t* p, scalar_t* out, int64_t N, int64_t s0, int64_t s1, double* inv_norm,
                  const int32_t* log_x, const int32_t* log_y, const double* weights, int64_t n_edges) {
  Workspace& ws = workspace();
  const bool ones = s0 == 0;
  const int64_t K1 = s1 - s0;             // channels in a row
  const int64_t first = ones ? 1 : 0;     // row column of the first signal channel
  const int64_t k0 = ones ? 0 : s0 - 1;   // first signal channel
  const int64_t kc = K1 - first;          // signal channels
  const int64_t stride = 2 * K1;
  // Rows start on a cache line (a 4-slot row is then exactly one line).
  ws.rows.resize(N * stride + 8);
  double* rows = ws.rows.data();
  rows += (64 - reinterpret_cast<uintptr_t>(rows) % 64) % 64 / sizeof(double);
  // Transposition between the (K, N) planes and the pixel rows in blocks of kBlock pixels: the rows of a
  // block stay in L1 while each plane is read / written as one contiguous run (a pixel-outer loop over K
  // interleaved planes thrashes the write-combining buffers).
  constexpr int64_t kBlock = 64;
  double inv[kBlock];  // reciprocals of the normalisers of the block's pixels
  for (int64_t v0 = 0; v0 < N; v0 += kBlock) {
    const int64_t v1 = std::min(N, v0 + kBlock);
    if (ones) {
      for (int64_t v = v0; v < v1; ++v) {
        double* r = rows + v * stride;
        r[0] = 0.0;
        r[K1] = 1.0;
      }
    }
    for (int64_t j = 0; j < kc; ++j) {
      const scalar_t* pj = p + (k0 + j) * N;
      for (int64_t v = v0; v < v1; ++v) {
        double* r = rows + v * stride;
        r[first + j] = 0.0;
        r[K1 + first + j] = static_cast<double>(pj[v]);
      }
    }
  }
  // Compile-time widths for the chunk sizes the dispatcher produces, so the per-merge loops unroll.
  switch (K1) {
    case 1: gp_replay<1, true>(log_x, log_y, weights, n_edges, rows, stride, K1, 1); break;
    case 2: gp_replay<2, true>(log_x, log_y, weights, n_edges, rows, stride, K1, 2); break;
    case 3: gp_replay<3, true>(log_x, log_y, weights, n_edges, rows, stride, K1, 3); break;
    case 4: gp_replay<4, true>(log_x, log_y, weights, n_edges, rows, stride, K1, 4); break;
    case 5: gp_replay<5, true>(log_x, log_y, weights, n_edges, rows, stride, K1, 5); break;
    case 6: gp_replay<6, true>(log_x, log_y, weights, n_edges, rows, stride, K1, 6); break;
    case 7: gp_replay<7, true>(log_x, log_y, weights, n_edges, rows, stride, K1, 7); break;
    case 8: gp_replay<8, true>(log_x, log_y, weights, n_edges, rows, stride, K1, 8); break;
    default: gp_replay<0, true>(log_x, log_y, weights, n_edges, rows, stride, K1, static_cast<int>(K1));
  }
  for (int64_t v0 = 0; v0 < N; v0 += kBlock) {
    const int64_t v1 = std::min(N, v0 + kBlock);
    // One division per pixel, not per pixel and channel.
    if (ones) {
      for (int64_t v = v0; v < v1; ++v) inv[v - v0] = 1.0 / (rows[v * stride] + 1.0);
      if (inv_norm != nullptr) std::copy(inv, inv + (v1 - v0), inv_norm + v0);
    } else {
      std::copy(inv_norm + v0, inv_norm + v1, inv);
    }
    for (int64_t j = 0; j < kc; ++j) {
      const scalar_t* pj = p + (k0 + j) * N;
      scalar_t* oj = out + (k0 + j) * N;
      for (int64_t v = v0; v < v1; ++v) {
        oj[v] = static_cast<scalar_t>((rows[v * stride + first + j] + static_cast<double>(pj[v])) * inv[v - v0]);
      }
    }
  }
}

// Phase 2 for every sample: y = (acc + p) / (acc_ones + 1).
//
// One thread (or at least as many samples as threads): the K + 1 slots of a sample are cut into chunks and
// the ones channel is replayed once, in the first chunk, whose normalisers the other chunks then reuse (two
// parallel phases). Fewer samples than threads: the threads also need the chunks of one sample in parallel,
// so every chunk carries its own copy of the ones channel and all chunks run at once.
void replay_all(const at::Tensor& signal, at::Tensor& out, const at::Tensor& log_x, const at::Tensor& log_y,
                const at::Tensor& scaled_cost) {
  const int64_t B = signal.size(0);
  const int64_t K = signal.size(1);
  const int64_t N = signal.size(2) * signal.size(3);
  const int64_t n_edges = N - 1;
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t width = chunk_width(N);
  // The merge weights once per sample (every chunk replays the same log).
  at::Tensor weights = at::exp(-scaled_cost);
  AT_DISPATCH_FLOATING_TYPES(signal.scalar_type(), "vlzoo_gp_replay", [&] {
    const scalar_t* p = signal.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    const int32_t* lx = log_x.const_data_ptr<int32_t>();
    const int32_t* ly = log_y.const_data_ptr<int32_t>();
    const double* w = weights.const_data_ptr<double>();
    auto run = [&](int64_t b, int64_t s0, int64_t s1, double* inv_norm) {
      replay_chunk<scalar_t>(p + b * K * N, o + b * K * N, N, s0, s1, inv_norm, lx + b * n_edges, ly + b * n_edges,
                             w + b * n_edges, n_edges);
    };
    if (threads == 1 || B >= threads) {
      const int64_t slots = K + 1;
      const int64_t chunks = (slots + width - 1) / width;
      std::vector<double> inv_norm(chunks > 1 ? B * N : 0);
      double* inv = chunks > 1 ? inv_norm.data() : nullptr;
      at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) run(b, 0, slots / chunks, inv ? inv + b * N : nullptr);
      });
      if (chunks > 1) {
        at::parallel_for(0, B * (chunks - 1), 1, [&](int64_t begin, int64_t end) {
          for (int64_t task = begin; task < end; ++task) {
            const int64_t b = task / (chunks - 1);
            const int64_t c = 1 + task % (chunks - 1);
            run(b, c * slots / chunks, (c + 1) * slots / chunks, inv + b * N);
          }
        });
      }
    } else {
      const int64_t per_chunk = std::max<int64_t>(1, width - 1);  // signal channels next to the ones copy
      const int64_t chunks = std::max<int64_t>((K + per_chunk - 1) / per_chunk, std::min<int64_t>(K, (threads + B - 1) / B));
      at::parallel_for(0, B * chunks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t task = begin; task < end; ++task) {
          const int64_t b = task / chunks;
          const int64_t c = task % chunks;
          // The ones channel + signal channels [k0, k1), passed as a view whose channel 0 is k0.
          const int64_t k0 = c * K / chunks;
          const int64_t k1 = (c + 1) * K / chunks;
          replay_chunk<scalar_t>(p + b * K * N + k0 * N, o + b * K * N + k0 * N, N, 0, k1 - k0 + 1, nullptr,
                                 lx + b * n_edges, ly + b * n_edges, w + b * n_edges, n_edges);
        }
      });
    }
  });
}

void raise_nan(const std::vector<char>& bad, const char* op, const char* what) {
  for (size_t b = 0; b < bad.size(); ++b) {
    TORCH_CHECK_VALUE(!bad[b], op, ": ", what, " of sample ", b, " contain NaN");
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> grid_mst_cpu(const at::Tensor& features) {
  check_image_tensor(features, "grid_mst", "features");
  const at::Tensor f = features.contiguous();
  const int64_t B = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3);
  const int64_t N = H * W;
  TORCH_CHECK_VALUE(N >= 1 && 2 * N < (int64_t{1} << 31), "grid_mst: H * W = ", N, " must be in [1, 2^30)");
  const int64_t n_edges = N - 1;
  at::Tensor tree = at::empty({B, n_edges, 2}, f.options().dtype(at::kLong));
  at::Tensor cost = at::empty({B, n_edges}, f.options().dtype(at::kDouble));
  at::Tensor log_x = at::empty({B, std::max<int64_t>(n_edges, 1)}, f.options().dtype(at::kInt));
  at::Tensor log_y = at::empty_like(log_x);
  std::vector<char> bad(B, 0);
  AT_DISPATCH_FLOATING_TYPES(f.scalar_type(), "vlzoo_grid_mst", [&] {
    const scalar_t* fp = f.const_data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const int64_t lb = b * log_x.size(1);
        bad[b] = !kruskal_grid<scalar_t>(fp + b * C * N, C, H, W, tree.mutable_data_ptr<int64_t>() + b * n_edges * 2,
                                         cost.mutable_data_ptr<double>() + b * n_edges,
                                         log_x.mutable_data_ptr<int32_t>() + lb,
                                         log_y.mutable_data_ptr<int32_t>() + lb);
      }
    });
  });
  raise_nan(bad, "grid_mst", "features");
  return {tree, cost};
}

std::tuple<at::Tensor, at::Tensor> mst_propagate_cpu(const at::Tensor& signal, const at::Tensor& features,
                                                     double zeta) {
  check_image_tensor(signal, "global_propagate", "signal");
  check_image_tensor(features, "global_propagate", "features");
  check_same_grid(signal, features, "global_propagate");
  TORCH_CHECK_VALUE(zeta > 0.0 && std::isfinite(zeta), "global_propagate: zeta must be positive and finite, got ", zeta);
  const at::Tensor f = features.contiguous();
  const at::Tensor p = signal.contiguous();
  const int64_t B = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3);
  const int64_t N = H * W;
  TORCH_CHECK_VALUE(N >= 1 && 2 * N < (int64_t{1} << 31), "global_propagate: H * W = ", N, " must be in [1, 2^30)");
  const int64_t n_edges = N - 1;
  const double zeta2 = zeta * zeta;
  at::Tensor tree = at::empty({B, n_edges, 2}, f.options().dtype(at::kLong));
  at::Tensor scaled = at::empty({B, n_edges}, f.options().dtype(at::kDouble));
  at::Tensor log_x = at::empty({B, n_edges}, f.options().dtype(at::kInt));
  at::Tensor log_y = at::empty_like(log_x);
  std::vector<char> bad(B, 0);
  AT_DISPATCH_FLOATING_TYPES(f.scalar_type(), "vlzoo_mst_propagate", [&] {
    const scalar_t* fp = f.const_data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        double* sc = scaled.mutable_data_ptr<double>() + b * n_edges;
        bad[b] = !kruskal_grid<scalar_t>(fp + b * C * N, C, H, W, tree.mutable_data_ptr<int64_t>() + b * n_edges * 2,
                                         sc, log_x.mutable_data_ptr<int32_t>() + b * n_edges,
                                         log_y.mutable_data_ptr<int32_t>() + b * n_edges);
        for (int64_t t = 0; t < n_edges; ++t) sc[t] /= zeta2;
      }
    });
  });
  raise_nan(bad, "global_propagate", "features");
  at::Tensor out = at::empty_like(p);
  replay_all(p, out, log_x, log_y, scaled);
  return {out, tree};
}

at::Tensor tree_propagate_cpu(const at::Tensor& signal, const at::Tensor& features, const at::Tensor& tree,
                              double zeta) {
  check_image_tensor(signal, "global_propagate", "signal");
  check_image_tensor(features, "global_propagate", "features");
  check_same_grid(signal, features, "global_propagate");
  TORCH_CHECK_VALUE(zeta > 0.0 && std::isfinite(zeta), "global_propagate: zeta must be positive and finite, got ", zeta);
  const at::Tensor f = features.contiguous();
  const at::Tensor p = signal.contiguous();
  const int64_t B = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3);
  const int64_t N = H * W;
  TORCH_CHECK_VALUE(N >= 1 && N < (int64_t{1} << 31), "global_propagate: H * W = ", N, " must be in [1, 2^31)");
  const int64_t n_edges = N - 1;
  const at::Tensor t = checked_tree(tree, B, N, "global_propagate");
  const double zeta2 = zeta * zeta;
  at::Tensor scaled = at::empty({B, n_edges}, f.options().dtype(at::kDouble));
  at::Tensor log_x = at::empty({B, n_edges}, f.options().dtype(at::kInt));
  at::Tensor log_y = at::empty_like(log_x);
  std::vector<char> bad(B, 0);
  std::vector<int64_t> cycle(B, -1);
  AT_DISPATCH_FLOATING_TYPES(f.scalar_type(), "vlzoo_tree_propagate", [&] {
    const scalar_t* fp = f.const_data_ptr<scalar_t>();
    const int64_t* tp = t.const_data_ptr<int64_t>();
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      Workspace& ws = workspace();
      for (int64_t b = begin; b < end; ++b) {
        const int64_t* edges = tp + b * n_edges * 2;
        double* sc = scaled.mutable_data_ptr<double>() + b * n_edges;
        ws.cost.resize(std::max<int64_t>(n_edges, 1));
        if (!tree_costs(fp + b * C * N, C, N, edges, n_edges, ws.cost.data())) {
          bad[b] = 1;
          continue;
        }
        const int64_t* order_edges = edges;
        std::vector<uint32_t>* perm = nullptr;
        if (!std::is_sorted(ws.cost.begin(), ws.cost.begin() + n_edges)) {
          ws.keys.resize(n_edges);
          ws.tmp_keys.resize(n_edges);
          ws.vals.resize(n_edges);
          ws.tmp_vals.resize(n_edges);
          for (int64_t i = 0; i < n_edges; ++i) {
            ws.keys[i] = double_key(ws.cost[i]);
            ws.vals[i] = static_cast<uint32_t>(i);
          }
          uint64_t* keys = ws.keys.data();
          uint64_t* tmp_keys = ws.tmp_keys.data();
          uint32_t* vals = ws.vals.data();
          uint32_t* tmp_vals = ws.tmp_vals.data();
          radix_sort_pairs<11>(keys, vals, tmp_keys, tmp_vals, n_edges, ws.hist);
          ws.sorted_edges.resize(2 * n_edges);
          for (int64_t i = 0; i < n_edges; ++i) {
            ws.sorted_edges[2 * i] = edges[2 * vals[i]];
            ws.sorted_edges[2 * i + 1] = edges[2 * vals[i] + 1];
            sc[i] = key_double(keys[i]) / zeta2;
          }
          // The sorted permutation may sit in either buffer; keep it for the error message.
          if (vals != ws.vals.data()) std::copy(vals, vals + n_edges, ws.vals.data());
          perm = &ws.vals;
          order_edges = ws.sorted_edges.data();
        } else {
          for (int64_t i = 0; i < n_edges; ++i) sc[i] = ws.cost[i] / zeta2;
        }
        ws.parent.resize(N);
        ws.size.resize(N);
        const int64_t failed =
            gp_merge_log(order_edges, n_edges, N, ws.parent.data(), ws.size.data(),
                         log_x.mutable_data_ptr<int32_t>() + b * n_edges, log_y.mutable_data_ptr<int32_t>() + b * n_edges);
        if (failed >= 0) cycle[b] = perm ? static_cast<int64_t>((*perm)[failed]) : failed;
      }
    });
  });
  raise_nan(bad, "global_propagate", "features");
  const int64_t* tp = t.const_data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    if (cycle[b] >= 0) {
      const int64_t e = cycle[b];
      TORCH_CHECK_VALUE(false, "global_propagate: tree of sample ", b, " is not a spanning tree: edge ", e, " (",
                  tp[(b * n_edges + e) * 2], ", ", tp[(b * n_edges + e) * 2 + 1],
                  ") joins pixels that earlier edges already connect");
    }
  }
  at::Tensor out = at::empty_like(p);
  replay_all(p, out, log_x, log_y, scaled);
  return out;
}

at::Tensor gp_presorted_cpu(const at::Tensor& tree_sorted, const at::Tensor& scaled_cost,
                            const at::Tensor& signal, int64_t channels_per_call) {
  check_image_tensor(signal, "gp_presorted", "signal");
  const int64_t B = signal.size(0), K = signal.size(1);
  const int64_t N = signal.size(2) * signal.size(3);
  TORCH_CHECK_VALUE(N >= 1 && N < (int64_t{1} << 31), "gp_presorted: H * W = ", N, " must be in [1, 2^31)");
  TORCH_CHECK_VALUE(channels_per_call >= 1, "gp_presorted: channels_per_call must be >= 1");
  const int64_t n_edges = N - 1;
  const at::Tensor t = checked_tree(tree_sorted, B, N, "gp_presorted");
  TORCH_CHECK_VALUE(scaled_cost.sizes() == at::IntArrayRef({B, n_edges}), "gp_presorted: scaled_cost must be (B, N - 1)");
  const at::Tensor sc = scaled_cost.to(at::kDouble).contiguous();
  const int64_t K1 = K + 1;
  // The CUDA layout: rows (B, N, 2, K1), [.., 0, :] accumulators, [.., 1, :] sums; channel 0 = ones.
  at::Tensor rows = at::zeros({B, N, 2, K1}, signal.options().dtype(at::kDouble));
  rows.select(2, 1).select(2, 0).fill_(1.0);
  rows.select(2, 1).narrow(2, 1, K).copy_(signal.reshape({B, K, N}).transpose(1, 2));
  at::Tensor log_x = at::empty({B, std::max<int64_t>(n_edges, 1)}, signal.options().dtype(at::kInt));
  at::Tensor log_y = at::empty_like(log_x);
  std::vector<int64_t> cycle(B, -1);
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    Workspace& ws = workspace();
    for (int64_t b = begin; b < end; ++b) {
      ws.parent.resize(N);
      ws.size.resize(N);
      cycle[b] = gp_merge_log(t.const_data_ptr<int64_t>() + b * n_edges * 2, n_edges, N, ws.parent.data(),
                              ws.size.data(), log_x.mutable_data_ptr<int32_t>() + b * log_x.size(1),
                              log_y.mutable_data_ptr<int32_t>() + b * log_x.size(1));
    }
  });
  for (int64_t b = 0; b < B; ++b) {
    TORCH_CHECK_VALUE(cycle[b] < 0, "gp_presorted: tree of sample ", b, " is not a spanning tree (edge ", cycle[b],
                " closes a cycle)");
  }
  const int64_t groups = (K1 + channels_per_call - 1) / channels_per_call;
  at::parallel_for(0, B * groups, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / groups;
      const int64_t k0 = (task % groups) * channels_per_call;
      const int nc = static_cast<int>(std::min<int64_t>(channels_per_call, K1 - k0));
      gp_replay<0>(log_x.const_data_ptr<int32_t>() + b * log_x.size(1),
                   log_y.const_data_ptr<int32_t>() + b * log_x.size(1), sc.const_data_ptr<double>() + b * n_edges,
                   n_edges, rows.mutable_data_ptr<double>() + b * N * 2 * K1 + k0, 2 * K1, K1, nc);
    }
  });
  const at::Tensor acc = rows.select(2, 0);  // (B, N, K1)
  const at::Tensor p = signal.reshape({B, K, N}).to(at::kDouble);
  const at::Tensor out = (acc.narrow(2, 1, K).transpose(1, 2) + p) / (acc.narrow(2, 0, 1).transpose(1, 2) + 1.0);
  return out.to(signal.scalar_type()).reshape(signal.sizes());
}

}  // namespace vlzoo
