"""A content hash of a module's weights, cached per module object, for keying on-disk caches.

The digest is SHA-256 over every selected state-dict entry's name, dtype, shape and raw bytes, so two
models with equal weights share cache entries and any changed value gives a new key. Hashing a large tower
takes a while, so the digest is cached on the module together with a cheap fingerprint of each tensor's
storage pointer and autograd version counter: in-place updates (optimizer steps, ``load_state_dict``,
``with torch.no_grad(): p.add_(...)``) and replaced tensors (``.to()``, ``p.data = ...``) change the
fingerprint and force a re-hash. One blind spot: an in-place edit through ``p.data`` does not bump the
version counter; pass ``refresh=True`` after such edits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["weights_hash"]

_CACHE_ATTR = "_vlzoo_weights_hash_cache"


def _selected(module: nn.Module, exclude_prefixes: Sequence[str]) -> list[tuple[str, torch.Tensor]]:
    items = module.state_dict(keep_vars=True).items()
    return sorted((k, v) for k, v in items if not any(k.startswith(p) for p in exclude_prefixes))


def weights_hash(module: nn.Module, exclude_prefixes: Sequence[str] = (), refresh: bool = False) -> str:
    """SHA-256 hex digest of ``module``'s state dict, leaving out keys that start with ``exclude_prefixes``.

    Args:
        module: any module; its state dict (parameters and persistent buffers) is hashed.
        exclude_prefixes: key prefixes to leave out (e.g. ``("visual.",)`` to hash a CLIP text tower only).
        refresh: ignore the cached digest.

    Raises:
        ValueError: a selected tensor lives on the meta device (it has no values).
    """
    entries = _selected(module, tuple(exclude_prefixes))
    fingerprint = tuple(
        (k, v.data_ptr(), v._version, tuple(v.shape), str(v.dtype), str(v.device)) for k, v in entries
    )
    cache: dict = module.__dict__.setdefault(_CACHE_ATTR, {})
    key = tuple(exclude_prefixes)
    hit = cache.get(key)
    if hit is not None and not refresh and hit[0] == fingerprint:
        return hit[1]
    digest = hashlib.sha256()
    for name, tensor in entries:
        if tensor.device.type == "meta":
            raise ValueError(f"cannot hash {name!r}: it is on the meta device and holds no values")
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(memoryview(flat.view(torch.uint8).numpy()))
    result = digest.hexdigest()
    cache[key] = (fingerprint, result)
    return result
