"""Data for TokenPacker training and evaluation: image pipelines, LLaVA datasets, the collator.

Spec tokenpacker.md §3 (HD), §4 (templates, placeholder), §6 (formats), §7.1 (evaluation prompts).

One sample (what :class:`vlzoo.mllm.MultimodalCollator` batches)::

    input_ids     (L,)          text ids with each <image> expanded to its visual-token count
    labels        (L,)          -100 on the prompt / placeholders (training only)
    pixel_values  (T, 3, S, S)  T crops: 1 for "square"/"pad", rows*cols tiles (+ thumbnail) for "slice"
    image_grids   (rows, cols)  only for "slice": travels with the batch so the model assembles each
                                sample's tiles in its own sequence (the official collator dropped it, §5)

Image pipelines (``image_aspect_ratio``, the official config field):

- ``square``: resize the shortest side to S, centre crop (CLIPImageProcessor; official stage 1);
- ``pad``: pad to a square with the mean colour, centred, then resize (LLaVA ``expand2square``; stage 2);
- ``slice``: TokenPacker-HD: grid choice, resize-and-pad, tiles, thumbnail (``tokenpacker.hd``), tile = S.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from tokenpacker import hd
from vlzoo.clip import preprocess_images
from vlzoo.data import LlavaRecord, load_image
from vlzoo.mllm import (
    IMAGE_TOKEN,
    MultimodalCollator,
    build_prompt,
    encode_record,
    expand_image_tokens,
    tokenizer_image_token,
)

__all__ = [
    "ImagePipeline",
    "LlavaSupervisedDataset",
    "QuestionDataset",
    "length_grouped_order",
    "make_collator",
    "subset_per_category",
]


@dataclass(frozen=True)
class ImagePipeline:
    """PIL image -> (crops (T, 3, S, S), grid or None), as the vision tower and the model expect."""

    image_size: int
    """S: the vision tower's input side (336 for CLIP-L/336, 96 for the toy ViT); also the HD tile side."""
    mode: str = "pad"
    """"square", "pad" or "slice" (module docstring)."""
    patch_num: int = 9
    """TokenPacker-HD candidate list (only for "slice")."""

    def __post_init__(self) -> None:
        if self.mode not in ("square", "pad", "slice"):
            raise ValueError(f"image pipeline mode must be 'square', 'pad' or 'slice', got {self.mode!r}")

    def __call__(self, image) -> tuple[torch.Tensor, tuple[int, int] | None]:
        if self.mode == "slice":
            sliced = hd.slice_image(hd.to_normalized_tensor(image), self.patch_num, tile=self.image_size)
            return sliced.tiles, (sliced.rows, sliced.cols)
        pixels = torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)  # (3, H, W) uint8
        resize = "shortest" if self.mode == "square" else "longest"
        return preprocess_images(pixels, self.image_size, mode=resize), None

    def blank(self) -> torch.Tensor:
        """(3, S, S) zeros: the mean colour after normalisation (the collator's keep-alive image)."""
        return torch.zeros(3, self.image_size, self.image_size)


def _visual_counts(grids: Sequence[tuple[int, int] | None], tokens_per_crop: int) -> list[int]:
    return [tokens_per_crop if g is None else hd.num_visual_tokens(g[0], g[1], tokens_per_crop) for g in grids]


def _decode_base64_image(data: str, question_id):
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
    except (ValueError, UnidentifiedImageError) as exc:
        raise ValueError(f"question {question_id}: image_base64 is not a base64-encoded image ({exc})") from exc


def _load_images(record_id, paths: Sequence[Path], pipeline: ImagePipeline):
    crops, grids = [], []
    for path in paths:
        pixels, grid = pipeline(load_image(path))
        crops.append(pixels)
        grids.append(grid)
    if pipeline.mode == "slice" and len(paths) > 1:
        raise ValueError(f"record {record_id}: TokenPacker-HD ('slice') takes one image per sample, got {len(paths)}")
    return torch.cat(crops), grids


class LlavaSupervisedDataset(Dataset):
    """LLaVA conversation records -> training samples (lazy: images are read in ``__getitem__``).

    Args:
        records: from :func:`vlzoo.data.read_llava_json`.
        image_folder: the folder the records' image paths are relative to.
        tokenizer: LLaMA-like HF tokenizer with ``<image>`` added.
        template: "plain" (stage 1) or "vicuna_v1" (stage 2).
        image_token_id: id of ``<image>``.
        tokens_per_crop: M, visual tokens per crop (``model.num_image_tokens()``).
        pipeline: the image pipeline.
        max_length: truncate text ids (before expansion, as the official collator) to this many tokens.
    """

    def __init__(
        self,
        records: Sequence[LlavaRecord],
        image_folder: str | os.PathLike,
        tokenizer,
        template: str,
        image_token_id: int,
        tokens_per_crop: int,
        pipeline: ImagePipeline,
        max_length: int | None = None,
    ):
        self.records = list(records)
        self.image_folder = Path(image_folder)
        self.tokenizer = tokenizer
        self.template = template
        self.image_token_id = image_token_id
        self.tokens_per_crop = tokens_per_crop
        self.pipeline = pipeline
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self.records)

    def text_lengths(self) -> list[int]:
        """Text tokens of every record (no image is read), for length grouping."""
        return [
            len(encode_record(r, self.tokenizer, self.template, self.image_token_id, self.max_length).input_ids)
            for r in self.records
        ]

    def group_by_length(self, batch_size: int, seed: int) -> None:
        """Reorder the records so that consecutive batches hold records of similar length (read sequentially).

        LLaVA / HF ``LengthGroupedSampler`` scheme: a seeded permutation cut into mega-batches of 50 batches,
        each sorted by length, longest first; padding then costs little.
        """
        order = length_grouped_order(self.text_lengths(), batch_size, seed)
        self.records = [self.records[i] for i in order]

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        encoded = encode_record(record, self.tokenizer, self.template, self.image_token_id, self.max_length)
        sample: dict = {}
        grids: list = []
        if not record.is_text_only:
            sample["pixel_values"], grids = _load_images(
                record.id, record.image_paths(self.image_folder), self.pipeline
            )
        counts = _visual_counts(grids, self.tokens_per_crop)
        n_placeholders = int((encoded.input_ids == self.image_token_id).sum())
        if n_placeholders != len(counts):  # truncation cut a placeholder: drop the text after the last kept one
            raise ValueError(
                f"record {record.id}: {n_placeholders} {IMAGE_TOKEN} left after truncation to {self.max_length} "
                f"tokens, but the record has {len(counts)} image(s); raise model.max_length"
            )
        sample["input_ids"], sample["labels"] = expand_image_tokens(
            encoded.input_ids, encoded.labels, self.image_token_id, counts
        )
        if self.pipeline.mode == "slice" and grids:
            sample["image_grids"] = grids[0]
        return sample


class QuestionDataset(Dataset):
    """LLaVA evaluation questions -> generation prompts (``model_vqa_loader``: ``<image>\\n`` + question).

    Each item: ``input_ids`` (prompt ids, placeholders expanded), ``pixel_values``, optionally
    ``image_grids``; ``self.prompts[i]`` is the text prompt and ``self.questions[i]`` the question line.
    """

    def __init__(
        self,
        questions: Sequence[Mapping],
        image_folder: str | os.PathLike,
        tokenizer,
        template: str,
        image_token_id: int,
        tokens_per_crop: int,
        pipeline: ImagePipeline,
    ):
        self.questions = list(questions)
        self.image_folder = Path(image_folder)
        self.tokenizer = tokenizer
        self.image_token_id = image_token_id
        self.tokens_per_crop = tokens_per_crop
        self.pipeline = pipeline
        self.prompts = [
            build_prompt([{"from": "human", "value": IMAGE_TOKEN + "\n" + q["text"]}], template) for q in self.questions
        ]

    def __len__(self) -> int:
        return len(self.questions)

    def __getitem__(self, index: int) -> dict:
        question = self.questions[index]
        if "image_base64" in question:  # MMBench TSV rows carry the image inline
            pixels, grid = self.pipeline(_decode_base64_image(question["image_base64"], question["question_id"]))
            grids = [grid]
        else:
            pixels, grids = _load_images(
                question["question_id"], [self.image_folder / question["image"]], self.pipeline
            )
        ids = torch.tensor(tokenizer_image_token(self.prompts[index], self.tokenizer, self.image_token_id))
        ids, _ = expand_image_tokens(ids, None, self.image_token_id, _visual_counts(grids, self.tokens_per_crop))
        sample = {"input_ids": ids, "pixel_values": pixels}
        if grids[0] is not None:
            sample["image_grids"] = grids[0]
        return sample


def length_grouped_order(lengths: Sequence[int], batch_size: int, seed: int, mega_batches: int = 50) -> list[int]:
    """A seeded permutation of ``range(len(lengths))`` in mega-batches of ``mega_batches * batch_size`` items,
    each sorted by decreasing length (HF ``get_length_grouped_indices`` without the longest-first swap)."""
    generator = torch.Generator().manual_seed(seed)
    permutation = torch.randperm(len(lengths), generator=generator).tolist()
    size = max(1, mega_batches * batch_size)
    return [i for start in range(0, len(permutation), size)
            for i in sorted(permutation[start : start + size], key=lambda i: -lengths[i])]


def make_collator(tokenizer, pipeline: ImagePipeline, padding_side: str = "right") -> MultimodalCollator:
    """The batch collator: pad with ``tokenizer.pad_token_id``, one keep-alive blank image for text-only batches."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.unk_token_id
    if pad is None:
        raise ValueError(f"tokenizer {type(tokenizer).__name__} has neither a pad nor an unk token")
    return MultimodalCollator(pad_token_id=int(pad), padding_side=padding_side, dummy_image=pipeline.blank())


def subset_per_category(questions: Sequence[Mapping], per_category: int | None, seed: int = 0) -> list[Mapping]:
    """At most ``per_category`` questions of every ``category``, drawn with a seeded generator; file order kept.

    None keeps every question. Categories are visited in sorted order, each drawing from its own questions
    with ``numpy.random.default_rng(seed)``, so the subset depends only on the file and the seed.
    """
    if per_category is None:
        return list(questions)
    if per_category < 1:
        raise ValueError(f"questions_per_category must be >= 1, got {per_category}")
    by_category: dict[str, list[int]] = {}
    for index, question in enumerate(questions):
        by_category.setdefault(str(question.get("category", "")), []).append(index)
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for category in sorted(by_category):
        indices = by_category[category]
        keep.extend(rng.choice(indices, size=min(per_category, len(indices)), replace=False).tolist())
    return [questions[i] for i in sorted(keep)]
