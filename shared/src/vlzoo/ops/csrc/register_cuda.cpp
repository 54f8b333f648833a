// The CUDA operators (torch.ops.vlzoo_cuda.*): tensor validation, workspaces and launches on the current
// stream. The caller (vlzoo.ops.dispatch) sorts the tree edges by cost and computes the scaled costs with
// torch on the device; these ops take them as they come. Shapes as in cpu_ops.h.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <optional>

#include "cuda_launch.h"

namespace vlzoo {
namespace {

void check_cuda(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK_VALUE(t.is_cuda(), op, ": ", name, " must be a CUDA tensor, got ", t.device());
}

void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA launch failed: ", cudaGetErrorString(err));
}

at::Tensor checked_tree(const at::Tensor& tree, int64_t B, int64_t N, const char* op) {
  check_cuda(tree, op, "tree");
  TORCH_CHECK_VALUE(tree.dim() == 3 && tree.size(0) == B && tree.size(1) == N - 1 && tree.size(2) == 2, op,
              ": tree must have shape (B, N - 1, 2) = (", B, ", ", N - 1, ", 2), got ", tree.sizes());
  TORCH_CHECK_VALUE(!at::isFloatingType(tree.scalar_type()), op, ": tree must hold integer pixel indices");
  at::Tensor t = tree.to(at::kLong).contiguous();
  if (t.numel() > 0) {
    TORCH_CHECK_VALUE(t.min().item<int64_t>() >= 0 && t.max().item<int64_t>() < N, op, ": tree holds pixel indices outside [0, ",
                N, ")");
  }
  return t;
}

at::Tensor gp_presorted_cuda(const at::Tensor& tree_sorted, const at::Tensor& scaled_cost, const at::Tensor& signal) {
  const char* op = "global_propagate (cuda)";
  check_cuda(signal, op, "signal");
  TORCH_CHECK_VALUE(signal.dim() == 4, op, ": signal must be (B, K, H, W)");
  const c10::cuda::CUDAGuard guard(signal.device());
  const int64_t B = signal.size(0), K = signal.size(1);
  const int64_t N = signal.size(2) * signal.size(3);
  TORCH_CHECK_VALUE(N >= 1 && N < (int64_t{1} << 31), op, ": H * W must be in [1, 2^31)");
  const int64_t E = N - 1;
  const at::Tensor t = checked_tree(tree_sorted, B, N, op);
  check_cuda(scaled_cost, op, "scaled_cost");
  TORCH_CHECK_VALUE(scaled_cost.sizes() == at::IntArrayRef({B, E}), op, ": scaled_cost must be (B, N - 1)");
  const at::Tensor sc = scaled_cost.to(at::kDouble).contiguous();
  const int64_t K1 = K + 1;
  const auto opts = signal.options();
  at::Tensor rows = at::zeros({B, N, 2, K1}, opts.dtype(at::kDouble));
  rows.select(2, 1).select(2, 0).fill_(1.0);
  rows.select(2, 1).narrow(2, 1, K).copy_(signal.reshape({B, K, N}).transpose(1, 2));
  at::Tensor parent = at::empty({B, N}, opts.dtype(at::kInt));
  at::Tensor size = at::empty({B, N}, opts.dtype(at::kInt));
  at::Tensor status = at::empty({B}, opts.dtype(at::kLong));
  // The merge logs (x, y) of every sample, E apart (one spare element so that no tensor is empty).
  at::Tensor logs = at::empty({2, B * E + 1}, opts.dtype(at::kInt));
  check_launch(launch_gp_presorted(t.const_data_ptr<int64_t>(), sc.const_data_ptr<double>(), B, E, N, K1,
                                   parent.mutable_data_ptr<int32_t>(), size.mutable_data_ptr<int32_t>(),
                                   logs[0].mutable_data_ptr<int32_t>(), logs[1].mutable_data_ptr<int32_t>(),
                                   status.mutable_data_ptr<int64_t>(), rows.mutable_data_ptr<double>(),
                                   c10::cuda::getCurrentCUDAStream()),
               op);
  const at::Tensor status_host = status.cpu();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t e = status_host[b].item<int64_t>();
    TORCH_CHECK_VALUE(e < 0, op, ": tree of sample ", b, " is not a spanning tree (its edge at sorted position ", e,
                " joins pixels that earlier edges already connect)");
  }
  const at::Tensor acc = rows.select(2, 0);
  const at::Tensor p = signal.reshape({B, K, N}).to(at::kDouble);
  const at::Tensor out = (acc.narrow(2, 1, K).transpose(1, 2) + p) / (acc.narrow(2, 0, 1).transpose(1, 2) + 1.0);
  return out.to(signal.scalar_type()).reshape(signal.sizes());
}

at::Tensor local_propagate_cuda(const at::Tensor& signal, const at::Tensor& image, const std::optional<at::Tensor>& mask,
                                int64_t kernel_size, double zeta, int64_t iterations) {
  const char* op = "local_propagate (cuda)";
  check_cuda(signal, op, "signal");
  check_cuda(image, op, "image");
  TORCH_CHECK_VALUE(signal.dim() == 4 && image.dim() == 4, op, ": signal and image must be 4-D");
  TORCH_CHECK_VALUE(kernel_size >= 1 && kernel_size % 2 == 1, op, ": kernel_size must be odd");
  TORCH_CHECK_VALUE(zeta > 0.0, op, ": zeta must be positive");
  TORCH_CHECK_VALUE(iterations >= 0, op, ": iterations must be >= 0");
  const c10::cuda::CUDAGuard guard(signal.device());
  const int64_t B = signal.size(0), K = signal.size(1), H = signal.size(2), W = signal.size(3);
  const int64_t C = image.size(1);
  TORCH_CHECK_VALUE(image.size(0) == B && image.size(2) == H && image.size(3) == W, op, ": image must share B, H, W");
  const at::Tensor p = signal.to(at::kDouble).contiguous();
  const at::Tensor img = image.to(at::kDouble).contiguous();
  at::Tensor m;
  int64_t mask_channels = 0;
  if (mask.has_value() && mask->defined()) {
    check_cuda(*mask, op, "mask");
    TORCH_CHECK_VALUE(mask->dim() == 4 && mask->size(0) == B && (mask->size(1) == 1 || mask->size(1) == K) &&
                    mask->size(2) == H && mask->size(3) == W,
                op, ": mask must be (B, 1 or K, H, W)");
    m = mask->to(at::kDouble).contiguous();
    mask_channels = m.size(1);
  }
  const int64_t r = kernel_size / 2;
  const auto opts = p.options();
  at::Tensor weights = at::empty({B, kernel_size * kernel_size, H * W}, opts);
  at::Tensor pad_a = at::empty({B, K, H + 2 * r, W + 2 * r}, opts);
  at::Tensor pad_b = at::empty_like(pad_a);
  at::Tensor out = at::empty({B, K, H, W}, opts);
  check_launch(launch_local_propagate(p.const_data_ptr<double>(), img.const_data_ptr<double>(),
                                      m.defined() ? m.const_data_ptr<double>() : nullptr, B, K, C, H, W, mask_channels,
                                      static_cast<int>(kernel_size), zeta * zeta, iterations,
                                      weights.mutable_data_ptr<double>(), pad_a.mutable_data_ptr<double>(),
                                      pad_b.mutable_data_ptr<double>(), out.mutable_data_ptr<double>(),
                                      c10::cuda::getCurrentCUDAStream()),
               op);
  return out.to(signal.scalar_type());
}

at::Tensor tree_filter_weighted_cuda(const at::Tensor& signal, const at::Tensor& tree, const at::Tensor& scaled_cost) {
  const char* op = "tree_filter (cuda)";
  check_cuda(signal, op, "signal");
  TORCH_CHECK_VALUE(signal.dim() == 4, op, ": signal must be (B, K, H, W)");
  const c10::cuda::CUDAGuard guard(signal.device());
  const int64_t B = signal.size(0), K = signal.size(1);
  const int64_t N = signal.size(2) * signal.size(3);
  TORCH_CHECK_VALUE(N >= 1 && N < (int64_t{1} << 31), op, ": H * W must be in [1, 2^31)");
  const int64_t E = N - 1;
  const at::Tensor t = checked_tree(tree, B, N, op);
  check_cuda(scaled_cost, op, "scaled_cost");
  TORCH_CHECK_VALUE(scaled_cost.sizes() == at::IntArrayRef({B, E}), op, ": scaled_cost must be (B, N - 1)");
  const at::Tensor sc = scaled_cost.to(at::kDouble).contiguous();
  const int64_t K1 = K + 1;
  const auto opts = signal.options();
  at::Tensor rows = at::empty({B, N, K1}, opts.dtype(at::kDouble));
  rows.select(2, 0).fill_(1.0);
  rows.narrow(2, 1, K).copy_(signal.reshape({B, K, N}).transpose(1, 2));
  const auto iopts = opts.dtype(at::kInt);
  at::Tensor offsets = at::empty({B, N + 1}, iopts);
  at::Tensor adjacency = at::empty({B * 2 * E + 1}, iopts);
  at::Tensor adjacency_edge = at::empty({B * 2 * E + 1}, iopts);
  at::Tensor order = at::empty({B, N}, iopts);
  at::Tensor parent = at::empty({B, N}, iopts);
  at::Tensor parent_edge = at::empty({B, N}, iopts);
  at::Tensor reached = at::empty({B}, opts.dtype(at::kLong));
  check_launch(launch_tree_filter(t.const_data_ptr<int64_t>(), sc.const_data_ptr<double>(), B, E, N, K1,
                                  offsets.mutable_data_ptr<int32_t>(), adjacency.mutable_data_ptr<int32_t>(),
                                  adjacency_edge.mutable_data_ptr<int32_t>(), order.mutable_data_ptr<int32_t>(),
                                  parent.mutable_data_ptr<int32_t>(), parent_edge.mutable_data_ptr<int32_t>(),
                                  reached.mutable_data_ptr<int64_t>(), rows.mutable_data_ptr<double>(),
                                  c10::cuda::getCurrentCUDAStream()),
               op);
  const at::Tensor reached_host = reached.cpu();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = reached_host[b].item<int64_t>();
    TORCH_CHECK_VALUE(n == N, op, ": tree of sample ", b, " is not a spanning tree (a BFS from pixel 0 reaches ", n, " of ",
                N, " pixels)");
  }
  const at::Tensor out = rows.narrow(2, 1, K) / rows.narrow(2, 0, 1);
  return out.transpose(1, 2).to(signal.scalar_type()).reshape(signal.sizes());
}

}  // namespace
}  // namespace vlzoo

TORCH_LIBRARY(vlzoo_cuda, m) {
  m.def("gp_presorted(Tensor tree_sorted, Tensor scaled_cost, Tensor signal) -> Tensor");
  m.def(
      "local_propagate(Tensor signal, Tensor image, Tensor? mask, int kernel_size, float zeta, int iterations)"
      " -> Tensor");
  m.def("tree_filter_weighted(Tensor signal, Tensor tree, Tensor scaled_cost) -> Tensor");
}

TORCH_LIBRARY_IMPL(vlzoo_cuda, CUDA, m) {
  m.impl("gp_presorted", &vlzoo::gp_presorted_cuda);
  m.impl("local_propagate", &vlzoo::local_propagate_cuda);
  m.impl("tree_filter_weighted", &vlzoo::tree_filter_weighted_cuda);
}
