"""QKS-format multi-label data: label lists and train/test CSVs (multilabel spec section 0.4).

Files of a dataset folder ``data/<ds>/`` in the QKS reference code:

- ``label_seen.txt`` / ``label_unseen.txt``: one label name per line; the line order is the column order.
- ``train.txt``: CSV with header ``image_path,posi_labels,nega_labels``.
- ``test.txt``: CSV with header
  ``image_path,unseen_posi_labels,unseen_nega_labels,seen_posi_labels,seen_nega_labels``.

A cell holds label names joined by ``|``; an empty cell or ``NaN`` (what pandas writes and reads for a
missing value) means no label. Targets follow the benchmarks' encoding (spec section 0.2): +1 positive,
-1 negative, 0 unannotated (Open Images). Test columns are seen labels first, then unseen (spec section 0.1),
so ``targets[:, :num_seen]`` is the SEEN subset, ``targets[:, num_seen:]`` the ZSL one and the whole the GZSL
one.

Targets are dense ``int8`` (N, C): 1 byte per entry (NUS-WIDE test, 107,859 x 1006, is 109 MB).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from vlzoo.data._common import read_text, split_lines
from vlzoo.data.errors import DataError

__all__ = [
    "TRAIN_COLUMNS",
    "TEST_COLUMNS",
    "MultiLabelSet",
    "QksDataset",
    "read_label_list",
    "read_multilabel_csv",
    "read_qks_dataset",
]

TRAIN_COLUMNS = ("image_path", "posi_labels", "nega_labels")
TEST_COLUMNS = ("image_path", "unseen_posi_labels", "unseen_nega_labels", "seen_posi_labels", "seen_nega_labels")
_EMPTY_CELLS = ("", "nan")
_ARTICLE = {"seen": "a seen", "unseen": "an unseen"}


@dataclass
class MultiLabelSet:
    """Images with multi-label targets."""

    image_paths: list[str]
    """Image paths as written in the CSV, one per row."""
    targets: torch.Tensor
    """``int8`` (N, C): +1 positive, -1 negative, 0 unannotated; columns follow ``label_names``."""
    label_names: list[str]
    """Column names: the seen labels, then (test split) the unseen labels."""
    num_seen: int
    """Number of seen-label columns (the first ``num_seen``); equals C for a train split."""

    def __len__(self) -> int:
        return len(self.image_paths)

    @property
    def seen_targets(self) -> torch.Tensor:
        """(N, S) view of the seen columns."""
        return self.targets[:, : self.num_seen]

    @property
    def unseen_targets(self) -> torch.Tensor:
        """(N, U) view of the unseen columns (empty for a train split)."""
        return self.targets[:, self.num_seen:]


@dataclass
class QksDataset:
    """A QKS dataset folder, read and cross-checked."""

    seen_labels: list[str]
    """From ``label_seen.txt``, in file order."""
    unseen_labels: list[str]
    """From ``label_unseen.txt``, in file order."""
    train: MultiLabelSet
    """``train.txt``: seen columns only."""
    test: MultiLabelSet
    """``test.txt``: seen then unseen columns."""


def read_label_list(path: str | os.PathLike) -> list[str]:
    """Read one label name per line (surrounding whitespace stripped).

    Raises:
        DataError: missing file, a blank line, or a name that appears twice (naming both lines).
    """
    path = Path(path)
    names: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(split_lines(read_text(path)), start=1):
        name = line.strip()
        if not name:
            raise DataError(path, "blank label name", f"line {number}")
        if name in first_line:
            raise DataError(path, f"duplicate label {name!r} (first on line {first_line[name]})", f"line {number}")
        first_line[name] = number
        names.append(name)
    if not names:
        raise DataError(path, "the label list is empty")
    return names


def _split_cell(cell: str) -> list[str] | None:
    """Label names of a cell; None when the cell has an empty name (``"a||b"``)."""
    text = cell.strip()
    if text.lower() in _EMPTY_CELLS:
        return []
    names = [name.strip() for name in text.split("|")]
    return None if any(not n for n in names) else names


def _label_index(labels: Sequence[str], what: str) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, name in enumerate(labels):
        if name in index:
            raise ValueError(f"{what} labels list {name!r} twice")
        index[name] = i
    return index


def _label_problem(column: str, name: str, kind: str, split: str, seen_index: dict, unseen_index: dict) -> str:
    """Why ``name`` may not appear in ``column`` (which accepts ``kind`` = "seen" or "unseen" labels)."""
    other_index = unseen_index if kind == "seen" else seen_index
    if name not in other_index:
        return f"{column} holds unknown label {name!r} (not in the {kind} label list)"
    if split == "train":
        return f"{column} holds {name!r}, an unseen label; a train file may only hold seen labels"
    other = "unseen" if kind == "seen" else "seen"
    return f"{column} holds {name!r}, which is {_ARTICLE[other]} label, not {_ARTICLE[kind]} one"


def read_multilabel_csv(path: str | os.PathLike, labels: Sequence[str], split: Literal["train", "test"] = "train",
                        unseen_labels: Sequence[str] | None = None) -> MultiLabelSet:
    """Read a QKS train or test CSV into targets.

    Args:
        path: the CSV file (``train.txt`` / ``test.txt``).
        labels: the seen label names (``label_seen.txt``), fixing the first columns.
        split: ``"train"`` (columns :data:`TRAIN_COLUMNS`) or ``"test"`` (columns :data:`TEST_COLUMNS`).
        unseen_labels: the unseen label names (``label_unseen.txt``): required for ``"test"``, where they follow
            the seen columns; for ``"train"`` they only sharpen the error for an unseen label in a train file.

    Returns:
        A :class:`MultiLabelSet` with C = len(labels) (train) or len(labels) + len(unseen_labels) (test).

    Raises:
        DataError: missing columns, a row with the wrong number of fields, an empty image path, an unknown
            label, an unseen label in a train file or in a seen column (and the reverse), or a label both
            positive and negative in one row; naming the file, the row and the label.
        ValueError: bad arguments (unknown split, duplicate names, seen/unseen overlap, test without unseen).
    """
    path = Path(path)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if split == "test" and unseen_labels is None:
        raise ValueError("a test split needs unseen_labels (its columns are seen labels, then unseen labels)")
    seen_index = _label_index(labels, "seen")
    unseen_index = _label_index(unseen_labels or [], "unseen")
    overlap = sorted(set(seen_index) & set(unseen_index))
    if overlap:
        raise ValueError(f"labels are both seen and unseen: {overlap[:5]}")
    num_seen = len(seen_index)
    # (column name, polarity, allowed names -> column offset, kind of the allowed names)
    if split == "train":
        columns = [("posi_labels", 1), ("nega_labels", -1)]
        allowed = {"posi_labels": (seen_index, 0, "seen"), "nega_labels": (seen_index, 0, "seen")}
        label_names = list(labels)
    else:
        columns = [("seen_posi_labels", 1), ("seen_nega_labels", -1),
                   ("unseen_posi_labels", 1), ("unseen_nega_labels", -1)]
        allowed = {"seen_posi_labels": (seen_index, 0, "seen"), "seen_nega_labels": (seen_index, 0, "seen"),
                   "unseen_posi_labels": (unseen_index, num_seen, "unseen"),
                   "unseen_nega_labels": (unseen_index, num_seen, "unseen")}
        label_names = list(labels) + list(unseen_labels)
    required = TRAIN_COLUMNS if split == "train" else TEST_COLUMNS

    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise DataError(path, "the file is empty (expected a header row)") from None
    except csv.Error as exc:
        raise DataError(path, f"malformed CSV header: {exc}", "line 1") from exc
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise DataError(path, f"duplicate header column(s) {duplicated}", "line 1")
    missing = [name for name in required if name not in header]
    if missing:
        raise DataError(path, f"missing column(s) {missing} for a {split} file (header: {header})", "line 1")
    position = {name: header.index(name) for name in required}

    image_paths: list[str] = []
    rows: list[int] = []
    cols: list[int] = []
    values: list[int] = []
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataError(path, f"malformed CSV: {exc}", f"line {reader.line_num}") from exc
        if not fields:  # blank line
            continue
        row = len(image_paths)
        where = f"row {row} (line {reader.line_num})"
        if len(fields) != len(header):
            raise DataError(path, f"has {len(fields)} fields but the header has {len(header)}", where)
        image_path = fields[position["image_path"]].strip()
        if not image_path:
            raise DataError(path, "empty image_path", where)
        where = f"row {row} (line {reader.line_num}, {image_path!r})"
        polarity_of: dict[int, tuple[int, str]] = {}
        for column, polarity in columns:
            names = _split_cell(fields[position[column]])
            if names is None:
                raise DataError(path, f"{column} has an empty label name in {fields[position[column]]!r}", where)
            index, offset, kind = allowed[column]
            for name in names:
                if name not in index:
                    raise DataError(path, _label_problem(column, name, kind, split, seen_index, unseen_index), where)
                col = offset + index[name]
                if col in polarity_of and polarity_of[col][0] != polarity:
                    raise DataError(path, f"label {name!r} is both positive and negative ({polarity_of[col][1]} and "
                                          f"{column})", where)
                polarity_of[col] = (polarity, column)
        for col, (polarity, _) in polarity_of.items():
            rows.append(row)
            cols.append(col)
            values.append(polarity)
        image_paths.append(image_path)

    targets = torch.zeros(len(image_paths), len(label_names), dtype=torch.int8)
    if rows:
        targets[torch.tensor(rows), torch.tensor(cols)] = torch.tensor(values, dtype=torch.int8)
    return MultiLabelSet(image_paths, targets, label_names, num_seen)


def read_qks_dataset(folder: str | os.PathLike) -> QksDataset:
    """Read ``label_seen.txt``, ``label_unseen.txt``, ``train.txt`` and ``test.txt`` of a QKS dataset folder.

    Raises:
        DataError: any file missing or malformed, or a name in both label lists.
    """
    folder = Path(folder)
    seen = read_label_list(folder / "label_seen.txt")
    unseen = read_label_list(folder / "label_unseen.txt")
    seen_set = set(seen)
    for number, name in enumerate(unseen, start=1):
        if name in seen_set:
            raise DataError(folder / "label_unseen.txt", f"label {name!r} is also in label_seen.txt",
                            f"line {number}")
    train = read_multilabel_csv(folder / "train.txt", seen, "train", unseen_labels=unseen)
    test = read_multilabel_csv(folder / "test.txt", seen, "test", unseen_labels=unseen)
    return QksDataset(seen, unseen, train, test)
