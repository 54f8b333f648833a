"""Build and load the compiled kernels of :mod:`vlzoo.ops` (JIT, cached, never required).

Two extensions, both built with :func:`torch.utils.cpp_extension.load` and registered through
``TORCH_LIBRARY`` (no pybind module, loaded with ``torch.ops.load_library``):

- ``vlzoo_ops_cpu`` (``torch.ops.vlzoo_cpu.*``): the C++ CPU kernels, ``-O3`` with OpenMP so that
  ``at::parallel_for`` spreads batch x channel work over ``torch.get_num_threads()`` threads. Needs only a
  C++ compiler; about 30-60 s the first time, then it loads from the cache in ~0.1 s.
- ``vlzoo_ops_cuda`` (``torch.ops.vlzoo_cuda.*``): the CUDA kernels (``csrc/*.cu``). Built on first use only
  where a CUDA device is usable and nvcc exists; ``python -m vlzoo.ops.build`` also compiles it on machines
  without a GPU (it then cannot run there).

Build folder: ``$TORCH_EXTENSIONS_DIR`` if set, else ``vlzoo.paths.cache_dir("torch_extensions")``, with a
``torch-<version>`` sub-folder so that a torch upgrade never loads a stale binary (the "undefined symbol"
failures the official TreeFilter/APro ops are known for). ``VLZOO_OPS_DISABLE_EXT=1`` turns both
extensions off (every ``impl="auto"`` call then uses the PyTorch reference).

A failed build gives one clear warning and ``None``; callers fall back to the reference.
"""

from __future__ import annotations

import functools
import os
import threading
import warnings
from pathlib import Path

import torch

from vlzoo.paths import cache_dir

__all__ = [
    "CSRC",
    "CPU_SOURCES",
    "CUDA_SOURCES",
    "build_directory",
    "build_cpu",
    "build_cuda",
    "cpu_ops",
    "cuda_ops",
    "nvcc_path",
    "cuda_home",
    "disabled",
    "load_or_warn",
]

CSRC = Path(__file__).resolve().parent / "csrc"
CPU_NAME = "vlzoo_ops_cpu"
CUDA_NAME = "vlzoo_ops_cuda"
CPU_SOURCES = ("gp_cpu.cpp", "lp_cpu.cpp", "tree_filter_cpu.cpp", "register_cpu.cpp")
CUDA_SOURCES = ("gp_cuda.cu", "lp_cuda.cu", "tree_filter_cuda.cu", "register_cuda.cpp")
# -ffp-contract=off: no fused multiply-add, so edge costs are bit-identical to the PyTorch reference and
# ties (hence the MST) agree exactly between implementations.
CPU_CFLAGS = ("-O3", "-fopenmp", "-ffp-contract=off")
CPU_LDFLAGS = ("-fopenmp",)
CUDA_CFLAGS = ("-O3",)
NVCC_FLAGS = ("-O3", "--fmad=false")
DEFAULT_CUDA_ARCH = "9.0"

_lock = threading.Lock()


def disabled() -> bool:
    """True when ``VLZOO_OPS_DISABLE_EXT`` is set to a true value (1/true/yes)."""
    return os.environ.get("VLZOO_OPS_DISABLE_EXT", "").strip().lower() in ("1", "true", "yes")


def build_directory(name: str) -> Path:
    """The build folder of extension ``name`` (created), keyed by the torch version."""
    base = os.environ.get("TORCH_EXTENSIONS_DIR")
    root = Path(base) if base else cache_dir("torch_extensions")
    path = root / f"torch-{torch.__version__}" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def cuda_home() -> str | None:
    """The CUDA toolkit to build with: ``$CUDA_HOME``, ``$CUDA_PATH``, ``/usr/local/cuda``, else torch's guess."""
    from torch.utils import cpp_extension

    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda", cpp_extension.CUDA_HOME):
        if home and (Path(home) / "bin" / "nvcc").is_file():
            return home
    return None


def nvcc_path() -> str | None:
    """The nvcc of :func:`cuda_home`, or None when there is no CUDA toolkit."""
    home = cuda_home()
    return str(Path(home) / "bin" / "nvcc") if home else None


def _load(name: str, sources: tuple[str, ...], verbose: bool, **kwargs) -> str:
    from torch.utils import cpp_extension

    return cpp_extension.load(
        name=name,
        sources=[str(CSRC / s) if not os.path.isabs(s) else s for s in sources],
        extra_include_paths=[str(CSRC)],
        build_directory=str(build_directory(name)),
        verbose=verbose,
        is_python_module=False,
        **kwargs,
    )


def build_cpu(verbose: bool = False, *, name: str = CPU_NAME, sources: tuple[str, ...] = CPU_SOURCES) -> str:
    """Compile (if needed) and load the C++ CPU extension; returns the library path. Raises on failure."""
    with _lock:
        return _load(name, sources, verbose, extra_cflags=list(CPU_CFLAGS), extra_ldflags=list(CPU_LDFLAGS))


def build_cuda(verbose: bool = False, *, load: bool = True) -> str:
    """Compile (if needed) the CUDA extension; returns the library path. Raises on failure.

    Without a visible GPU, ``TORCH_CUDA_ARCH_LIST`` defaults to 9.0 (compile-only machines). With
    ``load=False`` the library is built but not loaded into this process.
    """
    from torch.utils import cpp_extension

    home = cuda_home()
    if home is None:
        raise RuntimeError("vlzoo.ops: nvcc not found (set CUDA_HOME to a CUDA toolkit)")
    os.environ["CUDA_HOME"] = home
    # torch resolves CUDA_HOME once at import (here it may pick /usr/local from a wrapper script on PATH,
    # whose include/ has no CUDA headers): point it at the toolkit actually found.
    cpp_extension.CUDA_HOME = home
    if not torch.cuda.is_available():
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", DEFAULT_CUDA_ARCH)
    with _lock:
        if load:
            return _load(
                CUDA_NAME,
                CUDA_SOURCES,
                verbose,
                extra_cflags=list(CUDA_CFLAGS),
                extra_cuda_cflags=list(NVCC_FLAGS),
                with_cuda=True,
            )
        return _build_only(CUDA_NAME, CUDA_SOURCES, verbose)


def _build_only(name: str, sources: tuple[str, ...], verbose: bool) -> str:
    """Compile and link without loading (torch's ``load`` always loads; this uses its ninja builder)."""
    from torch.utils import cpp_extension

    directory = build_directory(name)
    cpp_extension._write_ninja_file_and_build_library(  # noqa: SLF001 - the same builder load() uses
        name=name,
        sources=[str(CSRC / s) for s in sources],
        extra_cflags=list(CUDA_CFLAGS),
        extra_cuda_cflags=list(NVCC_FLAGS),
        extra_sycl_cflags=[],
        extra_ldflags=[],
        extra_include_paths=[str(CSRC)],
        build_directory=str(directory),
        verbose=verbose,
        with_cuda=True,
        with_sycl=False,
        is_standalone=False,
    )
    return str(directory / f"{name}.so")


class _Ops:
    """The loaded operators (``torch.ops.<namespace>``) plus where they came from."""

    def __init__(self, namespace: str, path: str):
        self.namespace = namespace
        self.path = path
        self._ops = getattr(torch.ops, namespace)

    def __getattr__(self, item: str):
        return getattr(self._ops, item)


def load_or_warn(builder, namespace: str, what: str, fallback: str) -> _Ops | None:
    """Run ``builder`` (returns a library path); on any failure warn once, naming ``fallback``, and return None."""
    try:
        path = builder()
    except Exception as err:  # noqa: BLE001 - any build/load failure means "fall back"
        lines = [line for line in str(err).strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else repr(err)
        warnings.warn(
            f"vlzoo.ops: {what} could not be built or loaded ({type(err).__name__}: {reason}); {fallback}. "
            "Run `python -m vlzoo.ops.build` to see the compiler output.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return _Ops(namespace, path)


@functools.cache
def cpu_ops() -> _Ops | None:
    """The C++ CPU operators, building them on first use; None (after one warning) when they cannot be built."""
    if disabled():
        return None
    return load_or_warn(build_cpu, "vlzoo_cpu", "the C++ CPU extension", "falling back to the PyTorch reference")


@functools.cache
def cuda_ops() -> _Ops | None:
    """The CUDA operators when a GPU is usable and they build; None otherwise (one warning if a build fails)."""
    if disabled() or not torch.cuda.is_available() or nvcc_path() is None:
        return None
    return load_or_warn(
        build_cuda, "vlzoo_cuda", "the CUDA extension", "CUDA tensors use the C++ CPU kernel on a host copy"
    )
