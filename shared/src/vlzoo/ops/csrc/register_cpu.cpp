// Registers the CPU operators as torch.ops.vlzoo_cpu.* (TORCH_LIBRARY: no pybind, loadable with
// torch.ops.load_library). See cpu_ops.h for the contracts.
#include <torch/library.h>

#include "cpu_ops.h"

TORCH_LIBRARY(vlzoo_cpu, m) {
  m.def("grid_mst(Tensor features) -> (Tensor, Tensor)");
  m.def("mst_propagate(Tensor signal, Tensor features, float zeta) -> (Tensor, Tensor)");
  m.def("tree_propagate(Tensor signal, Tensor features, Tensor tree, float zeta) -> Tensor");
  m.def("gp_presorted(Tensor tree_sorted, Tensor scaled_cost, Tensor signal, int channels_per_call) -> Tensor");
  m.def(
      "local_propagate(Tensor signal, Tensor image, Tensor? mask, int kernel_size, float zeta, int iterations)"
      " -> Tensor");
  m.def("tree_filter(Tensor signal, Tensor features, Tensor tree, float sigma) -> Tensor");
  m.def("tree_filter_weighted(Tensor signal, Tensor tree, Tensor scaled_cost, int channels_per_call) -> Tensor");
}

TORCH_LIBRARY_IMPL(vlzoo_cpu, CPU, m) {
  m.impl("grid_mst", &vlzoo::grid_mst_cpu);
  m.impl("mst_propagate", &vlzoo::mst_propagate_cpu);
  m.impl("tree_propagate", &vlzoo::tree_propagate_cpu);
  m.impl("gp_presorted", &vlzoo::gp_presorted_cpu);
  m.impl("local_propagate", &vlzoo::local_propagate_cpu);
  m.impl("tree_filter", &vlzoo::tree_filter_cpu);
  m.impl("tree_filter_weighted", &vlzoo::tree_filter_weighted_cpu);
}
