"""Typed configs of the miniature reproduction (the mmdet / mmseg experiments use mmengine Python configs).

YAML files in ``apro_affinity/configs/toy_*.yaml`` hold only the changes from these defaults; the CLI takes
dotted overrides (``train.steps=50``). Load with
``vlzoo.config.load_config(ExperimentConfig, "apro_affinity/configs/toy_box.yaml", ["method=apro"])``.

Methods per task (the names of ``results/toy.json``):

- box: ``projection`` (box projection Dice only), ``boxinst_pairwise`` (+ BoxInst's pairwise term), ``tel``
  (+ Tree Energy Loss), ``apro_local`` (+ LP), ``apro_global`` (+ GP), ``apro`` (+ GP + LP);
- scribble / point: ``pce`` (partial cross-entropy), ``pce_tel`` (+ TEL), ``pce_apro`` (+ APro GP + LP), and
  the reference ``full_masks`` (cross-entropy on the full masks, same network and steps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BOX_METHODS",
    "SEMANTIC_METHODS",
    "REFERENCE_METHODS",
    "WorldConfig",
    "ModelConfig",
    "LossConfig",
    "TrainConfig",
    "ExperimentConfig",
]

BOX_METHODS: tuple[str, ...] = ("projection", "boxinst_pairwise", "tel", "apro_local", "apro_global", "apro")
"""Methods of the box-supervised instance-mask task, in table order."""

SEMANTIC_METHODS: tuple[str, ...] = ("pce", "pce_tel", "pce_apro")
"""Methods of the scribble- and point-supervised semantic tasks, in table order."""

REFERENCE_METHODS: tuple[str, ...] = ("full_masks",)
"""Sparse tasks' reference: the same network and steps trained on the full semantic masks."""


@dataclass
class WorldConfig:
    """Which toy world to read (``vlzoo.toyworld``) and how much of it."""

    root: str | None = None
    """A generated world folder (holding ``train/`` and ``val/``); None uses ``vlzoo.toyworld.default_world``
    with the sizes below (generated once into the vlzoo cache)."""
    n_train: int = 4000
    """Train images of the default world (its cache key; not the number used, see ``train_images``)."""
    n_val: int = 500
    """Val images of the default world."""
    image_size: int = 96
    """Image side of the default world (px)."""
    world_seed: int = 0
    """Generator seed of the default world."""
    train_images: int = 1000
    """The first this many train images are used for training (0: all)."""
    val_images: int = 300
    """The first this many val images are evaluated (0: all)."""

    def __post_init__(self):
        if self.train_images < 0 or self.val_images < 0:
            raise ValueError("train_images and val_images must be >= 0")


@dataclass
class ModelConfig:
    """The small networks of :mod:`apro_affinity.modeling`."""

    widths: tuple[int, int, int, int] = (16, 32, 64, 96)
    """Channels of the four U-Net levels."""
    crop_size: int = 32
    """Box task: side S of each instance crop (px); divisible by 8."""
    crop_context: float = 1.5
    """Box task: crop side / longer box side (context around the box)."""

    def __post_init__(self):
        if self.crop_size % 8:
            raise ValueError(f"crop_size must be divisible by 8, got {self.crop_size}")
        if self.crop_context < 1.0:
            raise ValueError(f"crop_context must be >= 1 (the crop holds the box), got {self.crop_context}")


@dataclass
class LossConfig:
    """Loss weights and pairwise-term settings (defaults: APro's released SOLOv2 VOC values, TEL's and BoxInst's
    released values; see the README's "Deviations" for the ones the paper does not give)."""

    projection_weight: float = 3.0
    """Box projection Dice weight (SOLOv2 + APro: 3.0)."""
    apro_global_weight: float = 2.0
    """Box task: GP term weight (SOLOv2 head: 2.0)."""
    apro_local_weight: float = 1.0
    """Box task: LP term weight (SOLOv2 head: 1.0)."""
    zeta_gl: float = 0.01
    """GP pass-1 zeta on the mmdet-normalised image (SOLOv2: 0.01)."""
    zeta_gh: float | None = 0.07
    """GP pass-2 zeta on the pass-1 output (SOLOv2: 0.07); null = one pass."""
    kernel_size: int = 5
    """LP window k (VOC: 5)."""
    zeta_s: float = 0.15
    """LP zeta (0.15)."""
    lp_iterations: int = 20
    """LP iterations T (20)."""
    boxinst_weight: float = 3.0
    """BoxInst pairwise weight (BoxInst: 1.0 against a projection weight of 1.0; scaled like the projection)."""
    boxinst_threshold: float = 0.3
    """BoxInst colour-similarity threshold tau."""
    boxinst_warmup: float = 0.25
    """Fraction of the steps over which the BoxInst term ramps up linearly (BoxInst: 10k iterations)."""
    tel_box_weight: float = 2.0
    """Box task: TEL term weight (set equal to the GP weight)."""
    tel_sigma: float = 0.02
    """TEL low-level sigma on the [0, 1] image (VOC: 0.02)."""
    semantic_weight: float = 0.4
    """Sparse tasks: lambda of each pairwise term (TEL: 0.4; APro's value is unknown)."""


@dataclass
class TrainConfig:
    """Optimisation (equal for every method of a task)."""

    steps: int = 300
    """Optimiser steps."""
    images_per_step: int = 4
    """Images per step (the box task trains on all their instances)."""
    lr: float = 2e-3
    """AdamW peak learning rate (linear warm-up, then cosine decay to 5 % of it)."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    warmup_steps: int = 20
    """Linear warm-up steps."""
    grad_clip: float = 5.0
    """Global gradient-norm clip (0: off)."""
    flip: bool = True
    """Random horizontal flips (decided from (seed, step), so resume is exact)."""
    seed: int = 0
    """Seed of the initialisation, the data order and the flips."""
    save_every: int = 100
    """Checkpoint period in steps (a final checkpoint is always written)."""

    def __post_init__(self):
        if self.steps < 0 or self.images_per_step < 1:
            raise ValueError("need steps >= 0 and images_per_step >= 1")


@dataclass
class ExperimentConfig:
    """One training run of the miniature: a task, a method, and everything it needs."""

    task: Literal["box", "scribble", "point"] = "box"
    """box: instance masks from boxes; scribble / point: semantic masks from scribbles / clicks."""
    method: str = "apro"
    """One of BOX_METHODS (box task), or SEMANTIC_METHODS / REFERENCE_METHODS (sparse tasks)."""
    world: WorldConfig = field(default_factory=WorldConfig)
    """Data."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Network."""
    loss: LossConfig = field(default_factory=LossConfig)
    """Loss terms."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Optimisation."""
    output_dir: str = "runs/apro_affinity/toy"
    """Run folder (config.yaml, metrics.jsonl, checkpoints/, eval.json)."""
    impl: str = "auto"
    """``vlzoo.ops`` kernel choice: auto, reference, cpu or cuda."""
    device: str = "cpu"
    """Torch device of the networks."""

    def __post_init__(self):
        allowed = BOX_METHODS if self.task == "box" else SEMANTIC_METHODS + REFERENCE_METHODS
        if self.method not in allowed:
            raise ValueError(f"method {self.method!r} is not one of {list(allowed)} for task {self.task!r}")
