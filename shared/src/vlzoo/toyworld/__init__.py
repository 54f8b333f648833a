"""The toy world: a deterministic synthetic vision-language dataset written in the real dataset formats.

No weights or datasets can be downloaded, so every paper of the repo gets an embedded default that is
*meaningful*: images of 1-5 coloured shapes (16 categories, 10 colours, 3 sizes, parts, occlusion) on
textured backgrounds, with annotations in the formats the real loaders read (COCO instances and captions,
VOC label PNGs with scribbles and clicks, LLaVA stage-1/2 JSON and eval JSONL, Osprey region records, QKS
multi-label CSVs with unseen labels, labelled text for a text-only adapter). Full description of the
world, the files and the label split: ``WORLD.md`` next to this file.

Usage::

    python -m vlzoo.toyworld generate --out DIR --n-train 4000 --n-val 500 --image-size 96 --seed 0

    from vlzoo.toyworld import default_world, generate_world
    root = default_world()        # cached 4,000 / 500 images at 96 px, seed 0; generated on first use
    generate_world("DIR", n_train=20, n_val=10, image_size=64, seed=1)

Layout of a world: ``DIR/world.json`` (manifest + statistics) and per split ``DIR/<split>/``:
``images/``, ``semantic/``, ``scribbles/``, ``points/`` (PNGs named ``000001.png``...), ``instances.json``,
``captions.json``, ``llava_pretrain.json``, ``llava.json``, ``regions.json``, ``multilabel/``
(``label_seen.txt``, ``label_unseen.txt``, ``train.txt``, ``test.txt``), ``texts.json``, and for ``val``
``vqa_questions.jsonl`` / ``vqa_answers.jsonl``. JSON paths are relative to ``images/``; QKS
``image_path`` is relative to the split folder.

Label split: the labels are the 16 shape names; ``UNSEEN_CATEGORIES`` (heart, hexagon, crescent,
trapezoid) never appear in ``multilabel/train.txt`` but do appear in images, captions and ``test.txt``.

Same seed, same bytes: each image draws from its own generator seeded by (seed, split, index, stream), JSON
keys are sorted and PNGs use a fixed encoder. Modules: ``world`` (the vocabulary), ``shapes``
(rasterisation), ``scene`` (sampling), ``render`` (painting), ``views`` (visible masks), ``spatial``,
``language``, ``vqa``, ``regions``, ``sparse_labels``, ``multilabel``, ``texts``, ``annotate`` (one image's
records), ``generate`` (writing a world), ``png``, ``rle``.
"""

from vlzoo.toyworld.generate import (
    DEFAULT_IMAGE_SIZE,
    DEFAULT_N_TRAIN,
    DEFAULT_N_VAL,
    DEFAULT_SEED,
    default_world,
    generate_world,
    read_manifest,
    world_key,
)
from vlzoo.toyworld.render import render_background, render_scene
from vlzoo.toyworld.scene import Background, Layout, Scene, SceneObject, layout_scene, sample_scene, scene_for
from vlzoo.toyworld.views import ObjectView, visible_objects
from vlzoo.toyworld.world import (
    BACKGROUNDS,
    CATEGORIES,
    CATEGORY_IDS,
    COLORS,
    PARTS,
    SEEN_CATEGORIES,
    SIZES,
    UNSEEN_CATEGORIES,
    WORLD_VERSION,
)

__all__ = [
    "BACKGROUNDS",
    "CATEGORIES",
    "CATEGORY_IDS",
    "COLORS",
    "DEFAULT_IMAGE_SIZE",
    "DEFAULT_N_TRAIN",
    "DEFAULT_N_VAL",
    "DEFAULT_SEED",
    "PARTS",
    "SEEN_CATEGORIES",
    "SIZES",
    "UNSEEN_CATEGORIES",
    "WORLD_VERSION",
    "Background",
    "Layout",
    "ObjectView",
    "Scene",
    "SceneObject",
    "default_world",
    "generate_world",
    "layout_scene",
    "read_manifest",
    "render_background",
    "render_scene",
    "sample_scene",
    "scene_for",
    "visible_objects",
    "world_key",
]
