"""tqdm progress bars with the repo's defaults (quiet when VLZOO_NO_PROGRESS=1, e.g. in CI logs)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

__all__ = ["progress"]


def progress(iterable: Iterable[T] | None = None, desc: str | None = None, total: int | None = None, **kwargs) -> tqdm:
    """A tqdm bar; disabled when ``VLZOO_NO_PROGRESS`` is set to a non-empty, non-zero value."""
    disable = os.environ.get("VLZOO_NO_PROGRESS", "0") not in ("", "0")
    kwargs.setdefault("mininterval", 1.0)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, desc=desc, total=total, disable=disable, **kwargs)
