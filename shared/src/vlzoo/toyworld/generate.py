"""Writing a toy world to disk: :func:`generate_world` (any folder) and :func:`default_world` (cached).

A world is written into a temporary sibling folder and renamed into place once complete, with
``world.json`` (the manifest and statistics) written last: a half-written world is never mistaken for a
finished one. JSON is written with sorted keys and fixed separators and PNGs with a fixed encoder, so the
same arguments give the same bytes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from vlzoo.paths import staged_dir
from vlzoo.toyworld.annotate import TEXTS_PER_IMAGE, ImageRecords, build_image
from vlzoo.toyworld.multilabel import TEST_HEADER, TRAIN_HEADER, csv_text, label_list_text
from vlzoo.toyworld.world import (
    CATEGORIES,
    COLORS,
    PARTS,
    SEEN_CATEGORIES,
    SIZES,
    SUPERCATEGORIES,
    UNSEEN_CATEGORIES,
    WORLD_VERSION,
    check_image_size,
)

__all__ = [
    "DEFAULT_N_TRAIN",
    "DEFAULT_N_VAL",
    "DEFAULT_IMAGE_SIZE",
    "DEFAULT_SEED",
    "TEXTS_PER_IMAGE",
    "EVAL_SPLITS",
    "MANIFEST",
    "world_key",
    "generate_split",
    "generate_world",
    "default_world",
    "read_manifest",
]

DEFAULT_N_TRAIN = 4000
"""Default training images: enough for a tiny CLIP and stage-1/2 MLLM runs on a CPU in minutes."""
DEFAULT_N_VAL = 500
"""Default validation images (about 5,000 VQA/POPE questions)."""
DEFAULT_IMAGE_SIZE = 96
"""Default image size: small objects are 14-18 px, so token compression visibly costs detail."""
DEFAULT_SEED = 0
EVAL_SPLITS = ("val",)
"""Splits that also get the LLaVA evaluation files ``vqa_questions.jsonl`` / ``vqa_answers.jsonl``."""
MANIFEST = "world.json"
"""Name of the manifest in the world folder (written last)."""


def world_key(n_train: int, n_val: int, image_size: int, seed: int) -> str:
    """Cache-folder name of a world: version, size, counts and seed."""
    return f"{WORLD_VERSION}_s{image_size}_train{n_train}_val{n_val}_seed{seed}"


def _json_text(obj, indent: int | None = None) -> str:
    separators = (",", ": ") if indent else (",", ":")
    return json.dumps(obj, sort_keys=True, indent=indent, separators=separators) + "\n"


def _write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def _counts(counter: Counter, order=None) -> dict:
    keys = order if order is not None else sorted(counter)
    return {str(k): int(counter.get(k, 0)) for k in keys}


def _build(args: tuple[int, str, int, int, bool]) -> ImageRecords:
    """Worker entry: one image's records, without the in-memory masks (they are not written)."""
    rec = build_image(*args)
    rec.summary = _summary(rec)
    rec.views, rec.scene = [], None
    return rec


def _summary(rec: ImageRecords) -> dict:
    return {
        "background": rec.scene.background.kind,
        "objects": [(v.obj.category, v.obj.color, v.obj.size, v.area < v.full_area) for v in rec.views],
        "parts": [p.name for v in rec.views for p in v.parts],
    }


def _records(split: str, n_images: int, image_size: int, seed: int, workers: int) -> Iterator[ImageRecords]:
    jobs = ((seed, split, index, image_size, split in EVAL_SPLITS) for index in range(n_images))
    if workers <= 1:
        yield from map(_build, jobs)
        return
    # "spawn": workers start clean (no forked copy of a parent's threads, e.g. torch's); imap keeps the
    # order, so the files are identical to a single-process run.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(_build, jobs, chunksize=32)


def generate_split(
    folder: Path,
    split: str,
    n_images: int,
    image_size: int,
    seed: int,
    show_progress: bool = False,
    workers: int = 1,
) -> dict:
    """Write one split folder and return its statistics.

    Args:
        folder: the split folder (created; ``images/``, ``semantic/``, ... go inside).
        split: split name (part of every RNG seed and record id).
        n_images: number of images.
        image_size: S.
        seed: world seed.
        show_progress: draw a progress bar.
        workers: processes building images (1 = this process); the output does not depend on it.

    Returns:
        Statistics (object, category, colour, size, question and text counts) for the manifest.
    """
    folder = Path(folder)
    with_eval = split in EVAL_SPLITS
    for sub in ("images", "semantic", "scribbles", "points", "multilabel"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    coco_images, coco_annotations, caption_records = [], [], []
    pretrain, llava, regions, train_rows, test_rows = [], [], [], [], []
    questions, answers, texts = [], [], []
    stats = {
        k: Counter() for k in ("n_objects", "category", "color", "size", "background", "part", "llava", "vqa")
    }
    occluded = 0
    records = _records(split, n_images, image_size, seed, workers)
    if show_progress:
        from vlzoo.run.progress import progress

        records = progress(records, desc=f"toyworld {split}", total=n_images)
    for rec in records:
        name = rec.coco_image["file_name"]
        (folder / "images" / name).write_bytes(rec.image_png)
        (folder / "semantic" / name).write_bytes(rec.semantic_png)
        (folder / "scribbles" / name).write_bytes(rec.scribbles_png)
        (folder / "points" / name).write_bytes(rec.points_png)
        coco_images.append(rec.coco_image)
        coco_annotations += rec.coco_annotations
        caption_records += rec.captions
        pretrain.append(rec.llava_pretrain)
        llava.append(rec.llava)
        regions += rec.regions
        train_rows.append(rec.train_row)
        test_rows.append(rec.test_row)
        questions += rec.vqa_questions
        answers += rec.vqa_answers
        texts += rec.texts
        summary = rec.summary
        stats["n_objects"][len(summary["objects"])] += 1
        stats["background"][summary["background"]] += 1
        for category, color, size, hidden in summary["objects"]:
            stats["category"][category] += 1
            stats["color"][color] += 1
            stats["size"][size] += 1
            occluded += hidden
        stats["part"].update(summary["parts"])
        stats["llava"].update(rec.llava_categories)
        stats["vqa"].update(q["category"] for q in rec.vqa_questions)

    categories = [
        {"id": i + 1, "name": c, "supercategory": SUPERCATEGORIES[c]} for i, c in enumerate(CATEGORIES)
    ]
    info = {"description": "vlzoo toy world", "version": WORLD_VERSION, "split": split, "seed": seed}
    instances = {
        "info": info,
        "images": coco_images,
        "categories": categories,
        "annotations": coco_annotations,
    }
    _write(folder / "instances.json", _json_text(instances))
    _write(
        folder / "captions.json",
        _json_text({"info": info, "images": coco_images, "annotations": caption_records}),
    )
    _write(folder / "llava_pretrain.json", _json_text(pretrain))
    _write(folder / "llava.json", _json_text(llava))
    _write(folder / "regions.json", _json_text(regions))
    _write(folder / "multilabel" / "label_seen.txt", label_list_text(SEEN_CATEGORIES))
    _write(folder / "multilabel" / "label_unseen.txt", label_list_text(UNSEEN_CATEGORIES))
    _write(folder / "multilabel" / "train.txt", csv_text(TRAIN_HEADER, train_rows))
    _write(folder / "multilabel" / "test.txt", csv_text(TEST_HEADER, test_rows))
    _write(folder / "texts.json", _json_text(texts))
    if with_eval:
        _write(folder / "vqa_questions.jsonl", "".join(_json_text(q) for q in questions))
        _write(folder / "vqa_answers.jsonl", "".join(_json_text(a) for a in answers))

    conversation = [r for r in regions if r["task"] == "conversation"]
    region_parts = sum("part" in a for r in conversation for a in r["annotation"])
    return {
        "images": n_images,
        "objects": sum(stats["category"].values()),
        "occluded_objects": int(occluded),
        "objects_per_image": _counts(stats["n_objects"], range(1, 6)),
        "categories": _counts(stats["category"], CATEGORIES),
        "colors": _counts(stats["color"], COLORS),
        "sizes": _counts(stats["size"], SIZES),
        "backgrounds": _counts(stats["background"]),
        "parts": _counts(stats["part"]),
        "captions": len(caption_records),
        "llava_records": len(llava),
        "llava_turns": _counts(stats["llava"]),
        "region_records": len(regions),
        "region_objects": sum(len(r["annotation"]) for r in conversation) - region_parts,
        "region_parts": region_parts,
        "texts": len(texts),
        "vqa_questions": _counts(stats["vqa"]) if with_eval else {},
    }


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """The ``world.json`` of a world folder, or None when absent or unreadable (an incomplete world)."""
    path = Path(folder) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _check_counts(n_train: int, n_val: int, seed: int, workers: int = 1) -> None:
    if isinstance(workers, bool) or int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    for name, value in (("n_train", n_train), ("n_val", n_val), ("seed", seed)):
        if isinstance(value, bool) or int(value) != value or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    if n_train + n_val == 0:
        raise ValueError("a world needs at least one image (n_train + n_val >= 1)")
    if max(n_train, n_val) > 999_999:
        raise ValueError("at most 999,999 images per split (file names have 6 digits)")


def _manifest(n_train: int, n_val: int, image_size: int, seed: int, stats: dict) -> dict:
    return {
        "version": WORLD_VERSION,
        "image_size": image_size,
        "seed": seed,
        "splits": {"train": n_train, "val": n_val},
        "categories": list(CATEGORIES),
        "colors": {k: list(v) for k, v in COLORS.items()},
        "sizes": {k: list(v) for k, v in SIZES.items()},
        "parts": {k: list(v) for k, v in PARTS.items()},
        "seen_categories": list(SEEN_CATEGORIES),
        "unseen_categories": list(UNSEEN_CATEGORIES),
        "stats": stats,
    }


def _write_world(
    folder: Path, n_train: int, n_val: int, image_size: int, seed: int, show_progress: bool, workers: int
) -> None:
    stats = {}
    for split, n in (("train", n_train), ("val", n_val)):
        if n > 0:
            stats[split] = generate_split(folder / split, split, n, image_size, seed, show_progress, workers)
    _write(folder / MANIFEST, _json_text(_manifest(n_train, n_val, image_size, seed, stats), indent=2))


def generate_world(
    out: str | os.PathLike,
    n_train: int,
    n_val: int,
    image_size: int = DEFAULT_IMAGE_SIZE,
    seed: int = DEFAULT_SEED,
    *,
    overwrite: bool = False,
    show_progress: bool = False,
    workers: int = 1,
) -> Path:
    """Generate a world into ``out`` (``out/train``, ``out/val``, ``out/world.json``).

    Args:
        out: destination folder; must not exist or be empty, unless ``overwrite`` and it holds a world.
        n_train: training images (0 = no train split).
        n_val: validation images (0 = no val split).
        image_size: image side S in 32..512 px.
        seed: world seed (>= 0); the same arguments give byte-identical files.
        overwrite: replace an existing world (a folder with ``world.json``) at ``out``.
        show_progress: draw progress bars.
        workers: processes building images (1 = this process only); the files do not depend on it.

    Returns:
        ``out`` as a Path.
    """
    image_size = check_image_size(image_size)
    _check_counts(n_train, n_val, seed, workers)
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"{out} exists and is not a folder")
        if any(out.iterdir()) and not (overwrite and (out / MANIFEST).is_file()):
            hint = (
                "pass overwrite=True (--overwrite) to replace it"
                if (out / MANIFEST).is_file()
                else "choose an empty folder"
            )
            raise FileExistsError(f"{out} is not empty; {hint}")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Without overwrite, the finished world only lands on a missing or still-empty `out`: of two concurrent
    # calls on one folder, the second to finish gets FileExistsError instead of replacing the first's world.
    with staged_dir(out, replace=overwrite) as tmp:
        _write_world(tmp, n_train, n_val, image_size, seed, show_progress, workers)
        os.chmod(tmp, 0o755)
    return out


def _is_world(folder: Path, n_train: int, n_val: int, image_size: int, seed: int) -> bool:
    manifest = read_manifest(folder)
    return bool(manifest) and (
        manifest.get("version") == WORLD_VERSION
        and manifest.get("image_size") == image_size
        and manifest.get("seed") == seed
        and manifest.get("splits") == {"train": n_train, "val": n_val}
    )


def default_world(
    n_train: int = DEFAULT_N_TRAIN,
    n_val: int = DEFAULT_N_VAL,
    image_size: int = DEFAULT_IMAGE_SIZE,
    seed: int = DEFAULT_SEED,
    show_progress: bool = True,
    workers: int = 1,
) -> Path:
    """The cached world for these arguments, generated on first use.

    Lives in ``vlzoo.paths.cache_dir("toyworld") / world_key(...)``. A world is reused only when its
    manifest (written last) matches; generation goes to a temporary folder that is renamed into place, so
    interrupted runs never leave a half-written world, and a concurrent caller waits on the entry's cache lock
    (:func:`vlzoo.paths.cache_lock`) and then reuses the world instead of rendering it too. ``workers`` as in
    :func:`generate_world`.

    Returns:
        The world folder (holding ``train/``, ``val/`` and ``world.json``).
    """
    from vlzoo.paths import build_once, cache_dir

    image_size = check_image_size(image_size)
    _check_counts(n_train, n_val, seed, workers)
    path = cache_dir("toyworld") / world_key(n_train, n_val, image_size, seed)

    def build(tmp: Path) -> None:  # the staged build also replaces a stale or foreign folder under our key
        _write_world(tmp, n_train, n_val, image_size, seed, show_progress, workers)
        os.chmod(tmp, 0o755)

    return build_once(path, lambda p: _is_world(p, n_train, n_val, image_size, seed), build)
