"""Shared tiny CLIPs for the vlzoo.clip tests (random init, built once per session; tests that mutate a
model build their own)."""

import contextlib

import pytest
import torch

import vlzoo.clip as vc


@contextlib.contextmanager
def single_thread():
    """One intra-op thread. These models are tiny, and on the shared 2-core machine two OpenMP threads
    competing with other processes made a tiny-ViT forward 5-20x slower (0.3-1.4 s against 0.06 s)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(scope="module", autouse=True)
def _single_thread_per_module():
    with single_thread():
        yield


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every test gets its own vlzoo cache folder, so label-embedding caches never leak between tests."""
    monkeypatch.setenv("VLZOO_CACHE", str(tmp_path / "vlzoo_cache"))


@pytest.fixture(scope="session")
def tiny_vit() -> vc.ClipModel:
    with single_thread():
        torch.manual_seed(0)
        return vc.create_clip("vlzoo-tiny-vit")


@pytest.fixture(scope="session")
def tiny_convnext() -> vc.ClipModel:
    with single_thread():
        torch.manual_seed(1)
        return vc.create_clip("vlzoo-tiny-convnext")


@pytest.fixture(scope="session")
def hf_folder(tiny_vit, tmp_path_factory):
    """The tiny ViT saved as a complete HF folder (model, tokenizer, image processor)."""
    with single_thread():
        return vc.save_hf_clip(tiny_vit, tmp_path_factory.mktemp("hf_tiny_vit"))


@pytest.fixture(scope="session")
def hf_clip(hf_folder) -> vc.HfClip:
    with single_thread():
        return vc.load_hf_clip(hf_folder)


@pytest.fixture
def vit_images() -> torch.Tensor:
    return torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(2))


@pytest.fixture
def convnext_images() -> torch.Tensor:
    return torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(3))
