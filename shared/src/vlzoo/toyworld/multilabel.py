"""QKS-format multi-label files: the label split and the train/test CSV rows.

Label space: the 16 shape categories. The 4 :data:`~vlzoo.toyworld.world.UNSEEN_CATEGORIES` never appear
in ``train.txt`` (neither as positive nor as negative), although the training *images* do contain them (as
real CLIP knows concepts no classifier was trained on). Every image is fully annotated: a label is positive
when the shape is visible in the image, negative otherwise.

Files (``<split>/multilabel/``): ``label_seen.txt``, ``label_unseen.txt`` (one name per line, CATEGORIES
order), ``train.txt`` (``image_path,posi_labels,nega_labels``) and ``test.txt``
(``image_path,unseen_posi_labels,unseen_nega_labels,seen_posi_labels,seen_nega_labels``); names joined by
``|``, an empty cell when there are none; ``image_path`` is relative to the split folder.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from vlzoo.toyworld.world import SEEN_CATEGORIES, UNSEEN_CATEGORIES

__all__ = ["TRAIN_HEADER", "TEST_HEADER", "train_row", "test_row", "csv_text", "label_list_text"]

TRAIN_HEADER = ("image_path", "posi_labels", "nega_labels")
TEST_HEADER = (
    "image_path",
    "unseen_posi_labels",
    "unseen_nega_labels",
    "seen_posi_labels",
    "seen_nega_labels",
)


def _split(present: set[str], labels: Sequence[str]) -> tuple[str, str]:
    return "|".join(c for c in labels if c in present), "|".join(c for c in labels if c not in present)


def train_row(image_path: str, present: Iterable[str]) -> tuple[str, str, str]:
    """One ``train.txt`` row: seen labels only."""
    pos, neg = _split(set(present), SEEN_CATEGORIES)
    return image_path, pos, neg


def test_row(image_path: str, present: Iterable[str]) -> tuple[str, str, str, str, str]:
    """One ``test.txt`` row: unseen then seen labels."""
    present = set(present)
    unseen_pos, unseen_neg = _split(present, UNSEEN_CATEGORIES)
    seen_pos, seen_neg = _split(present, SEEN_CATEGORIES)
    return image_path, unseen_pos, unseen_neg, seen_pos, seen_neg


def csv_text(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """CSV with a header line and ``\\n`` line ends (what pandas writes; the csv default is ``\\r\\n``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def label_list_text(labels: Sequence[str]) -> str:
    """One label name per line."""
    return "".join(f"{label}\n" for label in labels)
