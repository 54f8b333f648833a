"""Every .cu source of the repository compiles with the local nvcc (no GPU needed; `make test-slow`)."""

import pytest
import torch

from vlzoo.ops import _ext, build


@pytest.mark.slow
@pytest.mark.skipif(_ext.nvcc_path() is None, reason="no CUDA toolkit (nvcc) on this machine")
def test_every_cuda_source_compiles(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))  # a fresh build, not the cached one
    assert build.main(["--skip-cpu"]) == 0
    printed = capsys.readouterr().out
    library = tmp_path / f"torch-{torch.__version__}" / "vlzoo_ops_cuda" / "vlzoo_ops_cuda.so"
    assert library.is_file() and library.stat().st_size > 0
    sources = build.repo_cuda_sources()
    assert {s.name for s in sources} >= {"gp_cuda.cu", "lp_cuda.cu", "tree_filter_cuda.cu"}
    for source in sources:
        assert str(source) in printed, f"{source} was not compiled"


def test_cuda_sources_are_discovered():
    names = {s.name for s in build.repo_cuda_sources()}
    assert {"gp_cuda.cu", "lp_cuda.cu", "tree_filter_cuda.cu"} <= names
