"""Labelled training text for the text-only adapter: ``[{"id", "text", "labels": [names]}, ...]``.

Each sample is a sentence (e.g. an LLM-generated or caption-derived description) and the label names it
mentions; the text-as-image recipe trains a classifier on the text embeddings and applies it to image
embeddings. Labels are names from a fixed label list, which also fixes the target columns.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vlzoo.data._common import is_id, locator, read_json, short, type_name
from vlzoo.data.errors import DataError

__all__ = ["TextSample", "read_text_labels_json", "multi_hot_targets"]


@dataclass(frozen=True)
class TextSample:
    """One labelled text."""

    id: str | int
    """The sample id as in the file."""
    text: str
    """The text, as written."""
    labels: tuple[str, ...]
    """Label names in file order (a repeated name is kept once)."""
    label_indices: tuple[int, ...]
    """Positions of ``labels`` in the label list given to the reader."""


def read_text_labels_json(path: str | os.PathLike, labels: Sequence[str]) -> list[TextSample]:
    """Read and validate a text-labels JSON file.

    Checks: the top level is a list of objects with ``id`` (int or string, unique), ``text`` (a string that is
    not blank) and ``labels`` (a non-empty list of names from ``labels``).

    Args:
        path: the JSON file.
        labels: the label list (its order fixes ``label_indices``).

    Returns:
        The samples in file order.

    Raises:
        DataError: naming the file, the record (index and id) and the problem (e.g. the unknown label).
        ValueError: ``labels`` has a duplicate name.
    """
    path = Path(path)
    index: dict[str, int] = {}
    for i, name in enumerate(labels):
        if name in index:
            raise ValueError(f"label list names {name!r} twice")
        index[name] = i
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(path, f"the top level must be a list of samples, got {type_name(data)}")
    samples: list[TextSample] = []
    first_index: dict[Any, int] = {}
    for position, raw in enumerate(data):
        where = locator(position, raw)
        if not isinstance(raw, dict):
            raise DataError(path, f"must be a JSON object, got {type_name(raw)}", where)
        missing = [k for k in ("id", "text", "labels") if k not in raw]
        if missing:
            raise DataError(path, f"missing required key(s) {missing}", where)
        sample_id, text, names = raw["id"], raw["text"], raw["labels"]
        if not is_id(sample_id):
            raise DataError(path, f"id must be an integer or a non-empty string, got {short(sample_id)}", where)
        if sample_id in first_index:
            raise DataError(path, f"duplicate id {sample_id!r} (first at record {first_index[sample_id]})", where)
        first_index[sample_id] = position
        if not isinstance(text, str):
            raise DataError(path, f"text must be a string, got {type_name(text)}", where)
        if not text.strip():
            raise DataError(path, "text is empty", where)
        if not isinstance(names, list):
            raise DataError(path, f"labels must be a list of label names, got {type_name(names)}", where)
        if not names:
            raise DataError(path, "labels is empty: every sample needs at least one label", where)
        for name in names:
            if not isinstance(name, str):
                raise DataError(path, f"label {short(name)} is not a string", where)
            if name not in index:
                raise DataError(path, f"unknown label {name!r} (not in the label list)", where)
        unique = tuple(dict.fromkeys(names))
        samples.append(TextSample(sample_id, text, unique, tuple(index[n] for n in unique)))
    return samples


def multi_hot_targets(samples: Sequence[TextSample], num_labels: int) -> torch.Tensor:
    """``float32`` (N, num_labels) with 1 at each sample's label indices, 0 elsewhere."""
    targets = torch.zeros(len(samples), num_labels, dtype=torch.float32)
    rows = [i for i, s in enumerate(samples) for _ in s.label_indices]
    cols = [c for s in samples for c in s.label_indices]
    if rows:
        targets[torch.tensor(rows), torch.tensor(cols)] = 1.0
    return targets
