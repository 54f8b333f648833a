"""JSON Lines files (one JSON value per line): reading with line-numbered errors, atomic writing.

Blank lines are skipped on reading (editors and ``cat`` of several files leave them); line numbers in errors
are 1-based and count every physical line, so they match an editor's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from vlzoo.data._common import read_text, split_lines
from vlzoo.data.errors import DataError
from vlzoo.run import atomic_write_text

__all__ = ["read_jsonl", "iter_jsonl_lines", "write_jsonl"]


def iter_jsonl_lines(path: str | os.PathLike) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, value)`` for each non-blank line of a JSONL file.

    Raises:
        DataError: missing file, invalid UTF-8, or a line that is not valid JSON (naming the line).
    """
    path = Path(path)
    for number, line in enumerate(split_lines(read_text(path)), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"invalid JSON at column {exc.colno}: {exc.msg}", f"line {number}") from exc


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """All values of a JSONL file, in order (blank lines skipped)."""
    return [value for _, value in iter_jsonl_lines(path)]


def write_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> Path:
    """Write one JSON value per line (UTF-8, non-ASCII kept as is), atomically.

    Raises:
        ValueError: a record that JSON cannot represent (NaN/inf, or an object such as a tensor), naming its
            index; nothing is written then.
    """
    lines = []
    for index, record in enumerate(records):
        try:
            lines.append(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: record {index} cannot be written as JSON: {exc}") from exc
    return atomic_write_text(path, "".join(lines))
