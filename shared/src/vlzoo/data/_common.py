"""Private helpers shared by the readers: reading files with errors that name them, and type checks.

JSON ``true``/``false`` are Python ``bool``, a subclass of ``int``: every integer check here rejects them, so a
``"height": true`` is an error rather than a height of 1.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from vlzoo.data.errors import DataError


def read_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of ``path``; :class:`DataError` when it is missing or unreadable."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    if not path.is_file():
        raise DataError(path, "not a regular file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read the file ({exc.strerror or exc})") from exc


def read_text(path: str | os.PathLike) -> str:
    """The UTF-8 text of ``path`` (a leading byte-order mark is dropped)."""
    data = read_bytes(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not valid UTF-8 text (byte {exc.start})") from exc


def read_json(path: str | os.PathLike) -> Any:
    """Parse the JSON file ``path``; a syntax error names its line and column."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc


_NUMBER_TYPES = {int, float}


def split_lines(text: str) -> list[str]:
    """Lines split on ``\n`` only (``\r\n`` endings handled): ``str.splitlines`` also splits on U+2028 and
    other separators that JSON allows inside strings, which would break JSONL lines and shift line numbers."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float (not bool, not NaN, not infinite)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_number_list(value: Any, length: int | None = None) -> bool:
    """A list of finite ints/floats (of ``length`` items when given); one set of types and one sum rather than a
    call per item, as polygons and boxes make this the innermost loop of reading a COCO file."""
    return (isinstance(value, list) and (length is None or len(value) == length)
            and {type(v) for v in value} <= _NUMBER_TYPES and math.isfinite(sum(value)))


def is_id(value: Any) -> bool:
    """Record ids are ints or non-empty strings."""
    return is_int(value) or (isinstance(value, str) and value != "")


def type_name(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def short(value: Any, limit: int = 80) -> str:
    """``repr`` of a value cut to ``limit`` characters, for messages about big records."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def locator(index: int, record: Any, key: str = "id") -> str:
    """``"3 (id 'abc')"`` when the record has an id, else ``"3"``."""
    if isinstance(record, dict) and key in record and is_id(record[key]):
        return f"{index} ({key} {record[key]!r})"
    return str(index)
