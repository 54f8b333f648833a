"""impl= dispatch, the extension flags, fallbacks and the build-failure warning."""

import pytest
import torch

import vlzoo.ops as O
from vlzoo.ops import _ext, dispatch, reference


def test_flags_are_booleans_and_the_cpu_extension_builds(ops):
    ops.cpu_ops()
    assert O.HAS_CPU_EXT is True
    if not torch.cuda.is_available():  # (with a GPU, reading the flag would compile the CUDA extension)
        assert O.HAS_CUDA_EXT is False
    assert _ext.cpu_ops().path.endswith(".so")
    with pytest.raises(AttributeError):
        O.NOT_A_FLAG  # noqa: B018


def test_impl_names_are_checked(rng):
    p = torch.rand(1, 1, 3, 3, generator=rng)
    with pytest.raises(ValueError, match="impl must be one of \\('auto', 'reference', 'cpu', 'cuda'\\), got 'gpu'"):
        O.global_propagate(p, p, 0.1, impl="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="impl='cuda' needs CUDA tensors"):
            O.local_propagate(p, p, impl="cuda")


def test_auto_prefers_the_cpu_kernel_and_resolves_per_device(ops):
    ops.cpu_ops()
    assert dispatch.resolve_impl("auto", torch.device("cpu"), "op") == "cpu"
    assert dispatch.resolve_impl("reference", torch.device("cpu"), "op") == "reference"


def test_auto_falls_back_to_the_reference_when_no_extension(monkeypatch, rng):
    monkeypatch.setattr(_ext, "cpu_ops", lambda: None)
    monkeypatch.setattr(_ext, "cuda_ops", lambda: None)
    p = torch.rand(2, 2, 5, 6, generator=rng, dtype=torch.float64)
    f = torch.rand(2, 3, 5, 6, generator=rng, dtype=torch.float64)
    assert dispatch.resolve_impl("auto", torch.device("cpu"), "op") == "reference"
    torch.testing.assert_close(O.global_propagate(p, f, 0.2), reference.global_propagate(p, f, 0.2), rtol=0, atol=0)
    torch.testing.assert_close(O.grid_mst(f), reference.grid_mst(f))
    with pytest.raises(RuntimeError, match="impl='cpu' but the C\\+\\+ CPU extension is not available"):
        O.global_propagate(p, f, 0.2, impl="cpu")


def test_disable_switch(monkeypatch):
    monkeypatch.setenv("VLZOO_OPS_DISABLE_EXT", "1")
    assert _ext.disabled()
    monkeypatch.setenv("VLZOO_OPS_DISABLE_EXT", "0")
    assert not _ext.disabled()


def test_a_failed_build_warns_once_and_falls_back(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    broken = tmp_path / "broken.cpp"
    broken.write_text("this is not C++\n")

    def build():
        return _ext.build_cpu(name="vlzoo_ops_broken_probe", sources=(str(broken),))

    with pytest.warns(RuntimeWarning, match="could not be built or loaded .*falling back to the PyTorch reference") as record:
        assert _ext.load_or_warn(build, "vlzoo_broken", "the probe", "falling back to the PyTorch reference") is None
    assert len(record) == 1


def test_build_directory_is_keyed_by_torch_version(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    path = _ext.build_directory("x")
    assert path == tmp_path / f"torch-{torch.__version__}" / "x" and path.is_dir()
