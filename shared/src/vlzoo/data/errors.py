"""The one exception type of every ``vlzoo.data`` reader.

A reader that meets bad input raises :class:`DataError` naming the file, the record (its index, its id, or a
short locator such as ``"annotations[12] (id 345)"``) and the problem, so a user can open the file and go
straight to the offending entry::

    instances_val2017.json: record annotations[12] (id 345): bbox width is 0 (bbox [10, 20, 0, 5])
"""

from __future__ import annotations

import os

__all__ = ["DataError", "ImageError"]


class DataError(ValueError):
    """Bad content in a data file.

    Attributes:
        file: the file that holds the problem (as a string).
        record: the index, id or locator of the offending record, or ``None`` when the problem concerns the
            file as a whole (missing file, invalid JSON, wrong top-level type).
        problem: what is wrong, in words.
    """

    def __init__(self, file: str | os.PathLike, problem: str, record: int | str | None = None):
        self.file = os.fspath(file)
        self.problem = problem
        self.record = record
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"record {self.record}: " if self.record is not None else ""
        return f"{self.file}: {where}{self.problem}"

    def __str__(self) -> str:
        return self._message()

    def __reduce__(self):
        # The default pickling passes only ``args`` back to ``__init__``; DataLoader workers pickle errors.
        return (type(self), (self.file, self.problem, self.record))


class ImageError(DataError):
    """An image file that is missing, corrupt, truncated or in a mode that cannot become RGB."""
