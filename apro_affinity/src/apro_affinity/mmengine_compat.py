"""Let mmengine 0.10.7 resume from and ``load_from`` its own checkpoints under torch >= 2.6.

torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine's checkpoints carry a few non-tensor
objects in their ``meta``: the message hub's ``HistoryBuffer`` logs (numpy arrays, and its statistics methods,
pickled as ``getattr(HistoryBuffer, "min")``), a ``collections.Counter`` of the scheduler milestones, and the
bytes of the arrays (``_codecs.encode``). Registering exactly those with ``torch.serialization.add_safe_globals``
keeps weights-only loading on (no ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``). ``getattr`` is on the list because
of the statistics methods; the weights-only unpickler still refuses to *call* anything that is not allow-listed,
so it only lets a file read attributes of the allowed classes.
"""

from __future__ import annotations

import _codecs
import collections

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

__all__ = ["MMENGINE_SAFE_GLOBALS", "allow_mmengine_checkpoints"]

_multiarray = getattr(np, "_core", np.core).multiarray

MMENGINE_SAFE_GLOBALS: tuple = (
    HistoryBuffer,
    getattr,
    _codecs.encode,
    collections.Counter,
    collections.OrderedDict,
    np.ndarray,
    np.dtype,
    _multiarray._reconstruct,
    _multiarray.scalar,
    *{type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_)},
)
"""The globals an mmengine 0.10.7 checkpoint's ``meta`` needs beyond tensors and plain containers."""


def allow_mmengine_checkpoints() -> None:
    """Register :data:`MMENGINE_SAFE_GLOBALS` with torch's weights-only unpickler (idempotent)."""
    torch.serialization.add_safe_globals(list(MMENGINE_SAFE_GLOBALS))
