"""Test-wide settings: offline, quiet progress bars, few threads (the CI machine has 2 cores)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLZOO_NO_PROGRESS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

# Tiny models: thread start-up and contention cost more than they save (measured 5-20x slower tiny-ViT
# forwards with 2 contended threads). Override with VLZOO_TEST_THREADS.
torch.set_num_threads(int(os.environ.get("VLZOO_TEST_THREADS", "1")))


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)
