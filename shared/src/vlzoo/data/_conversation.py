"""Private: validation of LLaVA-style ``conversations`` lists, shared by the LLaVA and region readers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlzoo.data._common import short, type_name
from vlzoo.data.errors import DataError

ROLES = ("human", "gpt")
"""Roles in order: turn 2k is ``human``, turn 2k + 1 is ``gpt``."""


@dataclass(frozen=True)
class Turn:
    """One conversation turn."""

    role: str
    """``"human"`` (the question side) or ``"gpt"`` (the answer the model is trained on)."""
    value: str
    """The turn text, placeholders (``<image>``, ``<region1>``) included."""


def parse_conversations(path: Path, record: str, raw: Any, key: str = "conversations") -> list[Turn]:
    """Check a ``[{"from": ..., "value": ...}, ...]`` list and return its turns.

    Rules: a non-empty list of objects; ``from`` alternates ``human``, ``gpt``, ``human``, ... starting with
    ``human`` (a leading ``system`` turn is an error, LLaVA's data never has one); every ``value`` is a string.
    """
    if not isinstance(raw, list):
        raise DataError(path, f"{key} must be a list of turns, got {type_name(raw)}", record)
    if not raw:
        raise DataError(path, f"{key} is empty", record)
    turns = []
    for k, turn in enumerate(raw):
        where = f"{key}[{k}]"
        if not isinstance(turn, dict):
            raise DataError(path, f"{where} must be an object with 'from' and 'value', got {type_name(turn)}", record)
        missing = [name for name in ("from", "value") if name not in turn]
        if missing:
            raise DataError(path, f"{where} lacks {missing}", record)
        expected = ROLES[k % 2]
        if turn["from"] != expected:
            raise DataError(path, f"{where} has role {short(turn['from'])}, expected {expected!r} (roles must "
                                  "alternate human, gpt, human, ... starting with human)", record)
        if not isinstance(turn["value"], str):
            raise DataError(path, f"{where} value must be a string, got {type_name(turn['value'])}", record)
        turns.append(Turn(turn["from"], turn["value"]))
    return turns
