"""``python -m vlzoo.ops.build`` (what ``make build-ext`` runs): compile the repo's C++ / CUDA kernels.

1. Builds the C++ CPU extension of :mod:`vlzoo.ops` (always; needs only a C++ compiler).
2. When nvcc is found (``$CUDA_HOME``, ``/usr/local/cuda``): builds the CUDA extension of :mod:`vlzoo.ops`
   (on a machine without a GPU it is compiled for ``TORCH_CUDA_ARCH_LIST``, default 9.0, but not loaded), and
   compiles every other ``.cu`` file of the repository to an object file with torch's include paths and
   flags, so that CUDA sources elsewhere are at least known to compile with this toolkit.

Prints what it built; returns 0 when everything compiled, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from vlzoo.ops import _ext
from vlzoo.paths import repo_root

__all__ = ["main", "repo_cuda_sources", "compile_cuda_object"]

_SKIP_DIRS = {".venv", ".cache", ".git", "build", "dist", "node_modules", "__pycache__"}


def repo_cuda_sources(root: Path | None = None) -> list[Path]:
    """Every ``.cu`` file under the repository root (or this package when not in a checkout), sorted."""
    base = root or repo_root() or Path(__file__).resolve().parent
    found = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.startswith(".")]
        found += [Path(dirpath) / f for f in filenames if f.endswith(".cu")]
    return sorted(found)


def compile_cuda_object(source: Path, out_dir: Path, verbose: bool = False) -> Path:
    """``nvcc -c`` one ``.cu`` file with torch's CUDA include paths and arch flags; returns the object path."""
    from torch.utils import cpp_extension

    nvcc = _ext.nvcc_path()
    if nvcc is None:
        raise RuntimeError("nvcc not found")
    if not torch.cuda.is_available():
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", _ext.DEFAULT_CUDA_ARCH)
    cpp_extension.CUDA_HOME = _ext.cuda_home()
    includes = [f"-I{p}" for p in cpp_extension.include_paths(device_type="cuda")]
    includes += [f"-I{source.parent}", f"-I{_ext.CSRC}"]
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:8]  # two files may share a stem
    obj = out_dir / f"{source.stem}-{tag}.o"
    command = [
        nvcc, "-c", str(source), "-o", str(obj), "-std=c++20", "-O3", "--compiler-options", "-fPIC",
        *cpp_extension._get_cuda_arch_flags(),  # noqa: SLF001 - the flags torch's own builds use
        *includes,
    ]
    if verbose:
        print(" ".join(command))
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"nvcc failed on {source}:\n{result.stderr[-4000:]}")
    return obj


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vlzoo.ops.build", description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="show the compiler command lines")
    parser.add_argument("--skip-cpu", action="store_true", help="do not build the C++ CPU extension")
    parser.add_argument("--skip-cuda", action="store_true", help="do not compile any CUDA source")
    args = parser.parse_args(argv)
    failures = 0

    if not args.skip_cpu:
        start = time.perf_counter()
        try:
            path = _ext.build_cpu(verbose=args.verbose)
            print(f"built  C++ CPU extension  {path}  ({time.perf_counter() - start:.1f} s)")
        except Exception as err:  # noqa: BLE001 - report and continue with CUDA
            failures += 1
            print(f"FAILED C++ CPU extension: {err}", file=sys.stderr)

    if args.skip_cuda:
        return 1 if failures else 0
    if _ext.nvcc_path() is None:
        print("skip   CUDA sources (no nvcc: set CUDA_HOME to a CUDA toolkit to compile them)")
        return 1 if failures else 0

    start = time.perf_counter()
    try:
        path = _ext.build_cuda(verbose=args.verbose, load=torch.cuda.is_available())
        arch = os.environ.get("TORCH_CUDA_ARCH_LIST", "the visible GPUs")
        print(f"built  CUDA extension     {path}  (arch {arch}, {time.perf_counter() - start:.1f} s)")
        for name in _ext.CUDA_SOURCES:
            print(f"         {_ext.CSRC / name}")
    except Exception as err:  # noqa: BLE001
        failures += 1
        print(f"FAILED CUDA extension: {err}", file=sys.stderr)

    own = {(_ext.CSRC / s).resolve() for s in _ext.CUDA_SOURCES}
    objects = _ext.build_directory("cuda_objects")
    for source in repo_cuda_sources():
        if source.resolve() in own:
            continue
        start = time.perf_counter()
        try:
            obj = compile_cuda_object(source, objects, verbose=args.verbose)
            print(f"built  {source}  ->  {obj}  ({time.perf_counter() - start:.1f} s)")
        except Exception as err:  # noqa: BLE001
            failures += 1
            print(f"FAILED {source}: {err}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
