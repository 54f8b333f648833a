"""Batch LLaVA samples: pad ids/labels/attention mask, gather images, carry per-sample extras untouched.

A sample is a dict with
- ``input_ids``: (L_b,) ids, placeholders already expanded (:func:`vlzoo.mllm.expand_image_tokens`);
- ``labels``: (L_b,) targets (optional, but all samples or none);
- ``pixel_values``: (3, H, W) for one image, (T_b, 3, H, W) for T_b images/tiles, or None / absent (text only);
- any key of ``extra_keys`` (default ``image_grids``, ``region_masks``): one value per sample.

The batch has ``input_ids`` / ``attention_mask`` (B, L_max) and ``labels`` (B, L_max) padded (right for
training, left for generation), ``pixel_values`` (N_img, 3, H, W) with the images of sample 0, then sample 1,
..., ``images_per_sample`` (B,), and each extra key as a list of length B (None where a sample lacks it).
Keeping the extras per sample is what lets each sample's tiles be assembled in its own sequence: the
official TokenPacker collator dropped ``mode`` and broke HD training (spec tokenpacker.md §5).

``attention_mask`` comes from the lengths, not from ``ids != pad`` (pad is ``<unk>`` for LLaMA, which may
also occur as a real token).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from vlzoo.mllm.tokens import IGNORE_INDEX

__all__ = ["MultimodalCollator", "pad_sequences"]


def pad_sequences(
    sequences: Sequence[torch.Tensor], padding_value: int, side: str = "right"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad 1-D tensors to (B, L_max); returns (padded, mask) with mask 1 on real entries."""
    if side not in ("right", "left"):
        raise ValueError(f"padding side must be 'right' or 'left', got {side!r}")
    if not sequences:
        raise ValueError("cannot pad an empty list of sequences")
    lengths = torch.tensor([len(s) for s in sequences])
    longest = int(lengths.max())
    positions = torch.arange(longest).unsqueeze(0)  # (1, L_max)
    if side == "right":
        mask = positions < lengths.unsqueeze(1)
    else:
        mask = positions >= (longest - lengths).unsqueeze(1)
    padded = torch.full((len(sequences), longest), padding_value, dtype=torch.long)
    padded[mask] = torch.cat([torch.as_tensor(s, dtype=torch.long) for s in sequences])
    return padded, mask.long()


@dataclass
class MultimodalCollator:
    """Collate LLaVA samples (see the module docstring)."""

    pad_token_id: int
    """Id written into padded ``input_ids`` positions (LLaVA: ``<unk>``)."""
    padding_side: str = "right"
    """``"right"`` for training, ``"left"`` for batched generation."""
    extra_keys: tuple[str, ...] = ("image_grids", "region_masks")
    """Per-sample keys carried through as lists; any other unknown key is an error."""
    dummy_image: torch.Tensor | None = None
    """(3, H, W). When set and some sample has no image, one such image is appended after the real ones
    (counted by no sample), so the vision tower and projector run on every rank (LLaVA's ZeRO-3 trick)."""

    def __call__(self, samples: Sequence[Mapping]) -> dict:
        if not samples:
            raise ValueError("cannot collate an empty list of samples")
        known = {"input_ids", "labels", "pixel_values", *self.extra_keys}
        for index, sample in enumerate(samples):
            unknown = sorted(set(sample) - known)
            if unknown:
                raise ValueError(
                    f"sample {index}: unknown keys {unknown}; add them to MultimodalCollator.extra_keys to carry "
                    f"them to the model, or drop them in the dataset"
                )
            ids = sample.get("input_ids")
            if ids is None or torch.as_tensor(ids).ndim != 1:
                raise ValueError(f"sample {index}: 'input_ids' must be a 1-D sequence of ids")
        has_labels = ["labels" in s and s["labels"] is not None for s in samples]
        if any(has_labels) and not all(has_labels):
            raise ValueError(f"samples {[i for i, h in enumerate(has_labels) if not h]} have no 'labels' but others do")

        input_ids = [torch.as_tensor(s["input_ids"], dtype=torch.long) for s in samples]
        batch: dict = {}
        batch["input_ids"], batch["attention_mask"] = pad_sequences(input_ids, self.pad_token_id, self.padding_side)
        if all(has_labels):
            labels = [torch.as_tensor(s["labels"], dtype=torch.long) for s in samples]
            for index, (ids, lab) in enumerate(zip(input_ids, labels)):
                if lab.shape != ids.shape:
                    raise ValueError(
                        f"sample {index}: labels have {lab.numel()} entries but input_ids have {ids.numel()}"
                    )
            batch["labels"], _ = pad_sequences(labels, IGNORE_INDEX, self.padding_side)

        images = self._gather_images(samples)
        if images is not None:
            batch["pixel_values"], batch["images_per_sample"] = images
        for key in self.extra_keys:
            if any(key in s for s in samples):
                batch[key] = [s.get(key) for s in samples]
        return batch

    def _gather_images(self, samples: Sequence[Mapping]):
        per_sample = []
        for index, sample in enumerate(samples):
            pixels = sample.get("pixel_values")
            if pixels is None:
                per_sample.append(None)
                continue
            pixels = torch.as_tensor(pixels)
            if pixels.ndim == 3:
                pixels = pixels.unsqueeze(0)
            if pixels.ndim != 4:
                raise ValueError(
                    f"sample {index}: pixel_values must be (3, H, W) or (T, 3, H, W), got {tuple(pixels.shape)}"
                )
            per_sample.append(pixels)
        present = [p for p in per_sample if p is not None]
        needs_dummy = self.dummy_image is not None and len(present) < len(per_sample)
        if not present and not needs_dummy:
            return None
        counts = torch.tensor([0 if p is None else p.shape[0] for p in per_sample], dtype=torch.long)
        rows = [image for p in present for image in p]
        if needs_dummy:
            rows.append(torch.as_tensor(self.dummy_image).to(rows[0].dtype if rows else torch.float32))
        if len({tuple(r.shape) for r in rows}) == 1:
            return torch.stack(rows), counts
        return rows, counts  # different sizes: a list, for towers that take one
