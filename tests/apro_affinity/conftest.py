"""Shared fixtures: a tiny toy world generated once per test session (64 px, 6 train / 3 val images)."""

import pytest


@pytest.fixture(scope="session")
def toy_world(tmp_path_factory):
    from vlzoo.toyworld import generate_world

    root = tmp_path_factory.mktemp("toyworld") / "world"
    generate_world(root, n_train=6, n_val=3, image_size=64, seed=0)
    return root
