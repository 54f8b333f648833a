"""A small generated world shared by the toy-world tests, and an independent reading of its annotations.

The "truth" the tests check answers against is rebuilt here from the files alone (decoded RLE masks and the
COCO ``attributes``), with its own position/relation thresholds written from the spec in WORLD.md, not by
calling the generator's language code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from vlzoo.toyworld import generate_world

SEED = 3
IMAGE_SIZE = 96
N_TRAIN = 16
N_VAL = 12


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    """A generated world: 16 train and 12 val images at 96 px, seed 3."""
    return generate_world(tmp_path_factory.mktemp("toyworld") / "world", N_TRAIN, N_VAL, IMAGE_SIZE, SEED)


@pytest.fixture
def concurrently():
    """``concurrently(fn, n=2)``: run ``fn()`` in ``n`` threads at once; returns (their results, the exceptions
    they raised). For the cache-lock tests."""
    return _call_concurrently


def _call_concurrently(fn, n: int = 2) -> tuple[list, list]:
    import threading

    results, errors = [], []

    def call():
        try:
            results.append(fn())
        except Exception as exc:  # surfaced by the caller's assertions
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


@dataclass
class Obj:
    """One object as the files describe it."""

    category: str
    color: str
    size: str
    rgb: tuple[int, int, int]
    depth: int
    mask: np.ndarray
    centroid: tuple[float, float]


def load_objects(split_dir: Path) -> dict[str, list[Obj]]:
    """file_name -> its objects (decoded from instances.json)."""
    coco = json.loads((split_dir / "instances.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    files = {im["id"]: im["file_name"] for im in coco["images"]}
    out: dict[str, list[Obj]] = {name: [] for name in files.values()}
    for ann in coco["annotations"]:
        rle = dict(ann["segmentation"])
        rle["counts"] = rle["counts"].encode("ascii")
        mask = mask_utils.decode(rle).astype(bool)
        rows, cols = np.nonzero(mask)
        out[files[ann["image_id"]]].append(
            Obj(
                category=names[ann["category_id"]],
                color=ann["attributes"]["color"],
                size=ann["attributes"]["size"],
                rgb=tuple(ann["attributes"]["rgb"]),
                depth=ann["depth"],
                mask=mask,
                centroid=(float(cols.mean() + 0.5), float(rows.mean() + 0.5)),
            )
        )
    return out


def third(value: float, size: int, words: tuple[str, str, str]) -> str | None:
    """The WORLD.md rule: thirds of the image with a 4 % dead zone around each cut."""
    t = value / size
    if t < 1 / 3 - 0.04:
        return words[0]
    if 1 / 3 + 0.04 < t < 2 / 3 - 0.04:
        return words[1]
    if t > 2 / 3 + 0.04:
        return words[2]
    return None


def position_of(obj: Obj, size: int) -> str | None:
    col = third(obj.centroid[0], size, ("left", "center", "right"))
    row = third(obj.centroid[1], size, ("top", "middle", "bottom"))
    if col is None or row is None:
        return None
    if row == "middle":
        return col
    return row if col == "center" else f"{row} {col}"


def relation_truth(relation: str, a: Obj, b: Obj, size: int) -> bool | None:
    """A <relation> B with the 10 % margin: True, False, or None when ambiguous."""
    dx = b.centroid[0] - a.centroid[0]
    dy = b.centroid[1] - a.centroid[1]
    d = {"to the left of": dx, "to the right of": -dx, "above": dy, "below": -dy}[relation]
    margin = 0.1 * size
    return True if d > margin else False if d < -margin else None


@pytest.fixture(scope="session")
def objects(world) -> dict[str, dict[str, list[Obj]]]:
    """split -> file_name -> objects."""
    return {split: load_objects(world / split) for split in ("train", "val")}


@pytest.fixture(scope="session")
def oracle() -> SimpleNamespace:
    """The helpers above, for test modules (conftest functions cannot be imported under importlib mode)."""
    return SimpleNamespace(load_objects=load_objects, position_of=position_of, relation_truth=relation_truth)
