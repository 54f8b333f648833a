"""Pretrain the toy CLIPs on the toy world: a tiny ViT (HF-loadable, for the LLaVA-style papers) and a tiny
ConvNeXt (four stages, for Osprey), on the CPU, as the "pretrained" towers every paper starts from.

Why not plain contrastive training: measured here (see the issue), colour alone separates most captions of
a batch, so a contrastive tower learns colour and never shape. The recipe therefore teaches the image tower
every attribute the generator draws, then aligns a text tower to it (LiT, Zhai et al. 2022):

1. **Attribute phase** (image tower only). For every object of a training image, its visible mask pools
   the tower's feature map (Osprey-style mask pooling: :func:`~vlzoo.toyworld.pretrain_data.
   object_weights`) and linear heads classify its category (all 16, the four categories unseen by the
   downstream classifiers included), colour and size (cross-entropy). The pooled, projected image
   embedding predicts which categories / colours / sizes are present (binary cross-entropy), so the global
   embedding that zero-shot classification reads knows them too. Feature maps: the ViT's final patch tokens
   (12 x 12 at 96 px), the ConvNeXt's maps of ``region_stages`` (default stages 2, 3 and 4; the last is the
   one its embedding max-pools). Optionally (``embedding_distill``) the image's summary vector is pulled
   towards the mean of its objects' pooled features; optionally (``presence_mil``) the last map's category
   head is applied to every cell and the maximum over cells trained as the image's category presence
   (multiple-instance learning), so that background cells learn to say "no category" before the embedding
   max-pools them. Horizontal flips as augmentation.
2. **LiT phase**: the image tower is locked (its embeddings of every training image and its flip are
   computed once), and the text tower (with the logit scale) is trained with the standard symmetric
   contrastive loss of CLIP on the toy captions, 5 per image, one drawn per visit. The captions mention
   every object, so the text tower learns every category name, unseen ones included. Half the drawn
   captions lose their colour words and, independently, half their size words: colour and size alone tell
   most captions of a batch apart, and the zero-shot prompts name only the shape.

The ConvNeXt's layer-scale parameters start at ``layer_scale_init`` (timm's 1e-6 leaves its residual
blocks switched off for the few hundred steps this budget allows: measured, its category accuracy stayed at
chance). Budgets are numbers of steps (deterministic, machine-independent); wall time is recorded.

Outputs, under ``cache_dir("toyclip", key)`` (``key`` hashes the world, the recipe and the tower configs,
so a changed recipe retrains): ``vit/open_clip_model.safetensors`` and ``convnext/...`` (load with
``vlzoo.clip.create_clip(arch, weights=folder)``), ``vit_hf/`` (an HF ``CLIPModel`` folder made by
:func:`vlzoo.clip.save_hf_clip`), ``metrics_<tower>.jsonl`` + ``.png`` (loss and accuracy curves),
``report.json`` / ``report.md`` (zero-shot figures, :mod:`vlzoo.toyworld.zeroshot`) and ``recipe.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

from vlzoo.clip import create_clip, preprocess_images, save_hf_clip
from vlzoo.paths import build_once, cache_dir
from vlzoo.run import MetricsLog, atomic_write_text, progress, seed_everything
from vlzoo.toyworld.generate import default_world, read_manifest
from vlzoo.toyworld.pretrain_data import ToySplit, load_split, object_weights
from vlzoo.toyworld.world import CATEGORIES, COLORS, SIZES, WORLD_VERSION
from vlzoo.toyworld.zeroshot import report_markdown, zero_shot_report

__all__ = [
    "RECIPE_VERSION",
    "TowerRecipe",
    "ToyClipRecipe",
    "pretrain_toy_clips",
    "recompute_report",
    "toy_clip",
    "toy_clip_dir",
    "toy_hf_clip_path",
]

RECIPE_VERSION = "toyclip-v1"
"""Bumped whenever the training code changes what it produces; part of the cache key."""

ATTRIBUTES: tuple[tuple[str, int], ...] = (("category", len(CATEGORIES)), ("color", len(COLORS)), ("size", len(SIZES)))

_FIRST_REGION_STAGES: tuple[int, ...] = (1, 2)
"""The ConvNeXt stages the per-object heads read before ``region_stages`` existed (stages 2 and 3): the
field's default, its key-neutral value, and the only value a ViT recipe may hold."""


@dataclass
class TowerRecipe:
    """How one tower is trained."""

    arch: str
    """open_clip architecture name (a ``vlzoo.clip`` tiny config)."""
    attribute_steps: int
    """Optimizer steps of the attribute phase."""
    lit_steps: int = 300
    """Optimizer steps of the LiT phase (text tower only)."""
    batch_size: int = 64
    """Images per attribute-phase step."""
    lr: float = 2e-3
    """Peak AdamW learning rate of the attribute phase (one-cycle schedule)."""
    weight_decay: float = 0.05
    """AdamW weight decay on matrices (none on norms, biases, embeddings of size < 2 dims)."""
    warmup_fraction: float = 0.1
    """Fraction of the attribute phase spent warming the learning rate up."""
    presence_weight: float = 1.0
    """Weight of the global presence loss relative to the per-object loss."""
    color_shuffle: float = 0.0
    """Probability that a training image has its RGB channels randomly permuted (a non-identity permutation);
    such images train the category and size heads only. Takes the colour shortcut away from the shape
    features (the per-channel normalisation of a CNN does the same)."""
    layer_scale_init: float | None = None
    """Reset ConvNeXt layer-scale ``gamma`` parameters to this value before training (None: keep)."""
    lit_batch_size: int = 256
    """Captions per LiT step."""
    lit_lr: float = 1e-3
    """Peak AdamW learning rate of the LiT phase (cosine after a 5% warmup)."""
    lit_drop_color: float = 0.5
    """Probability that a LiT caption is shown without its colour words ("a large star above a small ring").
    Every toy caption names each object's size and colour, and those alone tell most images of a batch
    apart, so without this the text tower barely needs the shape words that zero-shot prompts consist of
    (measured on a ViT whose embedding separates 41.9 % of the single-object val images by category: zero-shot
    31.2 % without the dropout, 41.9 % with 0.5 / 0.5; shared/README). Both fields 0 in both towers: the recipe
    (and the cache key) before 2026-12-03."""
    lit_drop_size: float = 0.5
    """Probability (independent of ``lit_drop_color``) that a LiT caption is shown without its size words."""
    eval_every: int = 100
    """Attribute-phase steps between two validation probes (accuracy-versus-time curve)."""
    region_stages: tuple[int, ...] = _FIRST_REGION_STAGES
    """ConvNeXt only: the stages (0-based) whose mask-pooled maps feed the per-object heads (the ViT's heads
    read its final tokens, and a ViT recipe must leave this alone). ``(1, 2, 3)`` adds the last stage, the map
    the embedding max-pools, so what the heads teach reaches the embedding that zero-shot reads
    (shared/README: zero-shot 31.2 % against 14.0 % after 4,800 batch-16 steps)."""
    embedding_distill: float = 0.0
    """Weight of a loss pulling the image's summary vector towards what its objects' features know: 1 - cosine
    between it and the mean of the image's mask-pooled object features on the last feature map (the target
    detached). The summary is the ViT's final CLS feature (after ``ln_post``, before the projection; same
    width as the tokens) and, for the ConvNeXt, the projected embedding through a linear adapter to the last
    map's width. Measured (shared/README): ViT zero-shot 52.7 % against 41.9 % after 6,000 batch-16 steps,
    ConvNeXt 25.8 % against 14.0 % after 4,800."""
    presence_mil: float = 0.0
    """Weight of a multiple-instance presence loss: the last feature map's per-object category head applied to
    every cell, the maximum over cells trained (binary cross-entropy) as the image's category presence, so
    background cells learn to answer "no category" and an object's cells to name it; the embedding, which
    max-pools that map (ConvNeXt) or attends over its tokens (ViT), then sees what the object cells say.
    Measured on the ConvNeXt (shared/README, single-object zero-shot top-1 on a 948-image val split): 21 %
    at 0, 36 % at 3, 51 % at 6, 56 % at 12 (two seeds each), 39 % at 24 (one seed)."""


@dataclass
class ToyClipRecipe:
    """The whole pretraining: both towers, the world and the seed."""

    vit: TowerRecipe = field(
        default_factory=lambda: TowerRecipe("vlzoo-tiny-vit", attribute_steps=500, lr=1e-3, color_shuffle=0.5)
    )
    """The ViT (HF-loadable) tower."""
    convnext: TowerRecipe = field(
        default_factory=lambda: TowerRecipe(
            "vlzoo-tiny-convnext",
            attribute_steps=4800,
            batch_size=16,
            lr=1e-3,
            layer_scale_init=1.0,
            color_shuffle=0.5,
            region_stages=(1, 2, 3),
            eval_every=800,
            presence_mil=12.0,
        )
    )
    """The ConvNeXt tower. Batch 16 over 4,800 steps with heads on all of stages 2-4 since 2026-12-03 (before:
    ``attribute_steps=400 batch_size=64 lr=2e-3 region_stages=[1,2] eval_every=100``, still a valid override
    and cache key); the multiple-instance presence loss at weight 12 since 2026-12-04 (``presence_mil=0``
    gives the batch-16 recipe and its key back); shared/README gives the measurements."""
    seed: int = 0
    """Seed of initialisation, batch order and augmentation."""
    threads: int = 0
    """torch threads (0: keep torch's default); the caller's thread count is restored afterwards."""


# --- cache --------------------------------------------------------------------------------------------------
def _tower_configs(recipe: ToyClipRecipe) -> dict[str, Any]:
    from vlzoo.clip.model import _lookup_config

    return {name: _lookup_config(getattr(recipe, name).arch) for name in ("vit", "convnext")}


_KEY_NEUTRAL: dict[str, Any] = {
    "lit_drop_color": 0.0,
    "lit_drop_size": 0.0,
    "region_stages": _FIRST_REGION_STAGES,
    "embedding_distill": 0.0,
    "presence_mil": 0.0,
}
"""Tower-recipe fields added after the first recipe, with the value at which they change nothing the training
produces (it then draws the same random numbers): left out of the cache key at that value, so the towers
trained before the field existed keep their key (``vit.lit_drop_color=0 vit.lit_drop_size=0 ...`` finds them)."""


def recipe_key(recipe: ToyClipRecipe, world: Path) -> str:
    """Cache key: the world's identity, the recipe, the tower configs and :data:`RECIPE_VERSION`."""
    manifest = read_manifest(world)
    world_id = {k: manifest.get(k) for k in ("version", "seed", "image_size", "n_train", "n_val")}
    payload = {"world": world_id, "recipe": asdict(recipe), "configs": _tower_configs(recipe), "v": RECIPE_VERSION}
    payload["recipe"].pop("threads")
    for tower in ("vit", "convnext"):
        for name, neutral in _KEY_NEUTRAL.items():
            value = payload["recipe"][tower][name]
            if (tuple(value) if isinstance(value, list) else value) == neutral:
                payload["recipe"][tower].pop(name)
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
    return f"{RECIPE_VERSION}_{WORLD_VERSION}_{digest}"


def toy_clip_dir(recipe: ToyClipRecipe | None = None, world: Path | None = None) -> Path:
    """The cache folder of the toy CLIPs for ``recipe`` on ``world`` (default: the default world and recipe).

    Does not train; the folder is complete when it holds ``report.json``.
    """
    recipe = recipe or ToyClipRecipe()
    world = Path(world) if world is not None else default_world(show_progress=False)
    return cache_dir("toyclip") / recipe_key(recipe, world)


def toy_clip(kind: str = "vit", train_if_missing: bool = True, **kwargs: Any):
    """The pretrained toy CLIP as a :class:`vlzoo.clip.ClipModel` (``kind`` "vit" or "convnext").

    Trains both towers on first use (about 16-24 minutes on 2 quiet CPU cores, depending on the host) unless
    ``train_if_missing`` is False, which raises :class:`FileNotFoundError` instead.
    """
    if kind not in ("vit", "convnext"):
        raise ValueError(f"kind must be 'vit' or 'convnext', got {kind!r}")
    folder = _ensure(train_if_missing, **kwargs)
    recipe = kwargs.get("recipe") or ToyClipRecipe()
    return create_clip(getattr(recipe, kind).arch, weights=folder / kind)


def toy_hf_clip_path(train_if_missing: bool = True, **kwargs: Any) -> Path:
    """The HF ``CLIPModel`` folder of the pretrained toy ViT (trains both towers on first use)."""
    return _ensure(train_if_missing, **kwargs) / "vit_hf"


def _ensure(train_if_missing: bool, **kwargs: Any) -> Path:
    folder = toy_clip_dir(kwargs.get("recipe"), kwargs.get("world"))
    if (folder / "report.json").is_file():
        return folder
    if not train_if_missing:
        raise FileNotFoundError(
            f"no pretrained toy CLIP in {folder}; run `make toyclip` (python -m vlzoo.toyworld pretrain-clip)"
        )
    return pretrain_toy_clips(**kwargs)


# --- attribute phase ----------------------------------------------------------------------------------------
class _FeatureMaps:
    """Runs a tower and returns (image embedding (B, D), summary vector (B, D_s), [feature maps (B, C_i, g_i,
    g_i)]). The summary is what ``embedding_distill`` pulls: the ViT's final CLS feature before the
    projection, the ConvNeXt's embedding."""

    def __init__(self, clip: Any, stage_ids: tuple[int, ...]):
        self.clip = clip
        self.kind = clip.kind
        visual = clip.visual
        self._captured: dict[int, torch.Tensor] = {}
        self._handles: list[Any] = []
        if self.kind == "convnext":
            stages = len(visual.trunk.stages)
            distinct = len(set(stage_ids)) == len(stage_ids)
            if not stage_ids or not distinct or not all(0 <= i < stages for i in stage_ids):
                raise ValueError(
                    f"region_stages must be distinct stage indices in 0..{stages - 1}, got {tuple(stage_ids)}"
                )
            self.stage_ids = tuple(stage_ids)
            for i in self.stage_ids:
                self._handles.append(visual.trunk.stages[i].register_forward_hook(self._hook(i)))
        elif self.kind == "vit":
            if tuple(stage_ids) != _FIRST_REGION_STAGES:
                raise ValueError(
                    "region_stages is a ConvNeXt setting (the ViT's heads read its final tokens), "
                    f"got {tuple(stage_ids)} for a ViT"
                )
        else:
            raise ValueError(f"toy pretraining supports ViT and ConvNeXt towers, got {self.kind!r}")

    def _hook(self, i: int):
        def capture(module, inputs, output):
            self._captured[i] = output

        return capture

    def close(self) -> None:
        """Detach the hooks, so the trained CLIP runs (and later evaluations cost) exactly as a loaded one."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._captured.clear()

    def channels(self) -> list[int]:
        visual = self.clip.visual
        if self.kind == "vit":
            return [int(visual.conv1.out_channels)]
        return [int(visual.trunk.stages[i].blocks[-1].conv_dw.out_channels) for i in self.stage_ids]

    def __call__(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        visual = self.clip.visual
        if self.kind == "vit":
            hidden = visual.transformer(visual._embeds(pixels))
            cls = visual.ln_post(hidden[:, 0])
            tokens = visual.ln_post(hidden[:, 1:])
            grid = int(math.isqrt(tokens.shape[1]))
            return cls @ visual.proj, cls, [tokens.transpose(1, 2).reshape(tokens.shape[0], -1, grid, grid)]
        embedding = visual(pixels)
        maps = [self._captured.pop(i) for i in self.stage_ids]
        return embedding, embedding, [F.group_norm(m, 1) for m in maps]  # per-sample LayerNorm over (C, H, W)


class _AttributeHeads(nn.Module):
    def __init__(self, channels: list[int], embed_dim: int, distill_adapter: bool = False):
        super().__init__()
        self.region = nn.ModuleList(
            nn.ModuleDict({name: nn.Linear(c, n) for name, n in ATTRIBUTES}) for c in channels
        )
        self.presence = nn.ModuleDict({name: nn.Linear(embed_dim, n) for name, n in ATTRIBUTES})
        # Built last, and only when used, so recipes without it initialise the heads as before.
        self.distill = nn.Linear(embed_dim, channels[-1]) if distill_adapter else None


def _flip(images: torch.Tensor, instances: torch.Tensor, flip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.where(flip[:, None, None, None], images.flip(-1), images),
        torch.where(flip[:, None, None], instances.flip(-1), instances),
    )


_CHANNEL_PERMUTATIONS = torch.tensor([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])


def _attribute_outputs(
    tower: _FeatureMaps,
    heads: _AttributeHeads,
    split: ToySplit,
    idx: torch.Tensor,
    flip: torch.Tensor | None,
    permutation: torch.Tensor | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Per-object logits (summed over the maps) and presence logits for the images ``idx``, the pair that
    ``embedding_distill`` compares: the summary vector (B, D_s) and the mask-pooled object features of the
    last map (B, K, C), zero for padding; and the last map itself (B, C, g, g), which ``presence_mil`` reads.

    ``permutation`` (B,) indexes :data:`_CHANNEL_PERMUTATIONS` (0 = identity) per image.
    """
    images, instances = split.images[idx], split.instances[idx]
    if flip is not None:
        images, instances = _flip(images, instances, flip)
    if permutation is not None:
        channels = _CHANNEL_PERMUTATIONS[permutation]  # (B, 3)
        images = torch.gather(images, 1, channels[:, :, None, None].expand_as(images))
    embedding, summary, maps = tower(preprocess_images(images, tower.clip.image_size[0]))
    valid = split.category[idx] >= 0
    region: dict[str, torch.Tensor] = {}
    for fmap, level in zip(maps, heads.region):
        weights = object_weights(instances, fmap.shape[-1])  # (B, K, g, g)
        per_slot = torch.einsum("bkhw,bchw->bkc", weights, fmap)  # (B, K, C)
        pooled = per_slot[valid]  # (objects, C)
        for name, head in level.items():
            region[name] = region.get(name, 0) + head(pooled)
    presence = {name: head(embedding) for name, head in heads.presence.items()}
    return region, presence, (summary, per_slot), maps[-1]


def _presence_mil_loss(heads: _AttributeHeads, last_map: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """BCE between the per-image maximum over cells of the last map's category logits and the image's category
    presence (B, 16) (TowerRecipe.presence_mil)."""
    cells = heads.region[-1]["category"](last_map.flatten(2).transpose(1, 2))  # (B, g*g, 16)
    return F.binary_cross_entropy_with_logits(cells.amax(dim=1), targets)


def _embedding_distill_loss(
    heads: _AttributeHeads, summary: torch.Tensor, per_slot: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """1 - cos(summary (through the adapter, if any), mean of the image's object features (detached)),
    averaged over the images with at least one object (TowerRecipe.embedding_distill)."""
    count = valid.sum(1)
    target = (per_slot * valid[..., None]).sum(1) / count.clamp(min=1)[:, None]
    student = heads.distill(summary) if heads.distill is not None else summary
    has = count > 0
    return (1 - F.cosine_similarity(student[has], target[has].detach(), dim=-1)).mean()


@torch.no_grad()
def _probe(tower: _FeatureMaps, heads: _AttributeHeads, split: ToySplit) -> dict[str, float]:
    """Validation accuracy (%) of the per-object heads and of presence-based single-object category."""
    tower.clip.eval()
    hits = {name: 0 for name, _ in ATTRIBUTES}
    objects = 0
    single_hits = single_total = 0
    for start in range(0, len(split), 250):
        idx = torch.arange(start, min(start + 250, len(split)))
        region, presence, _, _ = _attribute_outputs(tower, heads, split, idx, None)
        valid = split.category[idx] >= 0
        for name, _ in ATTRIBUTES:
            hits[name] += int((region[name].argmax(-1) == getattr(split, name)[idx][valid]).sum())
        objects += int(valid.sum())
        one = split.num_objects[idx] == 1
        single_hits += int((presence["category"][one].argmax(-1) == split.category[idx][one, 0]).sum())
        single_total += int(one.sum())
    tower.clip.train()
    out = {f"probe_object_{name}": 100.0 * hits[name] / max(objects, 1) for name, _ in ATTRIBUTES}
    out["probe_single_category"] = 100.0 * single_hits / max(single_total, 1)
    return out


def _optimizer(params: list[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.AdamW:
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98))


def train_attributes(
    clip: Any, train: ToySplit, val: ToySplit, recipe: TowerRecipe, log: MetricsLog, seed: int, desc: str
) -> dict[str, float]:
    """Attribute phase (module docstring, step 1); returns the final validation probe."""
    if recipe.layer_scale_init is not None:
        with torch.no_grad():
            for name, param in clip.visual.named_parameters():
                if name.endswith("gamma"):
                    param.fill_(recipe.layer_scale_init)
    tower = _FeatureMaps(clip, recipe.region_stages)
    heads = _AttributeHeads(
        tower.channels(),
        int(clip.config["embed_dim"]),
        distill_adapter=recipe.embedding_distill > 0 and tower.kind == "convnext",
    )
    clip.train()
    params = list(clip.visual.parameters()) + list(heads.parameters())
    opt = _optimizer(params, recipe.lr, recipe.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=recipe.lr, total_steps=max(recipe.attribute_steps, 1), pct_start=recipe.warmup_fraction
    )
    gen = torch.Generator().manual_seed(seed)
    presence_all = train.presence()  # (N, n) multi-hot per attribute, indexed by each batch
    start = time.perf_counter()
    probe: dict[str, float] = {}
    bar = progress(range(recipe.attribute_steps), desc=f"{desc}: attributes")
    for step in bar:
        idx = torch.randint(0, len(train), (recipe.batch_size,), generator=gen)
        flip = torch.rand(recipe.batch_size, generator=gen) < 0.5  # flips change no attribute
        shuffled = torch.rand(recipe.batch_size, generator=gen) < recipe.color_shuffle
        permutation = torch.where(shuffled, torch.randint(1, 6, (recipe.batch_size,), generator=gen), 0)
        region, presence, distill_pair, last_map = _attribute_outputs(tower, heads, train, idx, flip, permutation)
        valid = train.category[idx] >= 0
        true_color = (~shuffled)[:, None].expand_as(valid)[valid]  # objects whose colour is still true
        targets = {n: table[idx] for n, table in presence_all.items()}
        losses = {}
        for n, _ in ATTRIBUTES:
            keep_obj = true_color if n == "color" else slice(None)
            keep_img = ~shuffled if n == "color" else slice(None)
            losses[f"object_{n}"] = F.cross_entropy(region[n][keep_obj], getattr(train, n)[idx][valid][keep_obj])
            losses[f"presence_{n}"] = recipe.presence_weight * F.binary_cross_entropy_with_logits(
                presence[n][keep_img], targets[n][keep_img]
            )
        if recipe.embedding_distill > 0:
            losses["embedding_distill"] = recipe.embedding_distill * _embedding_distill_loss(
                heads, *distill_pair, valid
            )
        if recipe.presence_mil > 0:
            losses["presence_mil"] = recipe.presence_mil * _presence_mil_loss(heads, last_map, targets["category"])
        loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        record = {"phase": "attributes", "step": step + 1, "loss": loss.item()}
        record.update({k: v.item() for k, v in losses.items()})
        if (step + 1) % recipe.eval_every == 0 or step + 1 == recipe.attribute_steps:
            probe = _probe(tower, heads, val)
            record.update(probe)
            bar.set_postfix(loss=f"{loss.item():.2f}", cat=f"{probe['probe_object_category']:.0f}%")
        record["seconds"] = time.perf_counter() - start
        log.write(**record)
    tower.close()
    clip.eval()
    return probe


# --- LiT phase ----------------------------------------------------------------------------------------------
_COLOR_WORDS = re.compile(r"\b(?:" + "|".join(COLORS) + r") ")
_SIZE_WORDS = re.compile(r"\b(?:" + "|".join(SIZES) + r") ")


def _drop_words(caption: str, variant: int) -> str:
    """``caption`` without its colour words (``variant & 1``) and / or its size words (``variant & 2``)."""
    if variant & 1:
        caption = _COLOR_WORDS.sub("", caption)
    if variant & 2:
        caption = _SIZE_WORDS.sub("", caption)
    return caption


@torch.no_grad()
def _locked_image_embeddings(clip: Any, split: ToySplit) -> torch.Tensor:
    """(2, N, D) normalised embeddings of every image and of its horizontal flip (the tower is locked)."""
    clip.eval()
    size = clip.image_size[0]
    out = []
    for images in (split.images, split.images.flip(-1)):
        chunks = [
            clip.encode_image(preprocess_images(images[s : s + 250], size), normalize=True)
            for s in range(0, len(split), 250)
        ]
        out.append(torch.cat(chunks))
    return torch.stack(out)


def train_lit(clip: Any, train: ToySplit, recipe: TowerRecipe, log: MetricsLog, seed: int, desc: str) -> float:
    """LiT phase (module docstring, step 2): the text tower learns to match the locked image embeddings."""
    image_emb = _locked_image_embeddings(clip, train)
    model = clip.model
    text_params = [p for n, p in model.named_parameters() if not n.startswith("visual.")]
    for p in model.visual.parameters():
        p.requires_grad_(False)
    opt = _optimizer(text_params, recipe.lit_lr, 0.0)
    warmup = max(1, recipe.lit_steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, recipe.lit_steps) / recipe.lit_steps)),
    )
    gen = torch.Generator().manual_seed(seed + 1)
    # variants[v][i]: image i's captions (c, L) with the colour words dropped (v & 1) / the size words (v & 2),
    # tokenized once for the variants this recipe can draw
    drawable = [v for v in range(4) if (recipe.lit_drop_color > 0 or not v & 1) and (recipe.lit_drop_size > 0 or not v & 2)]
    variants = {v: [clip.tokenize([_drop_words(c, v) for c in caps]) for caps in train.captions] for v in drawable}
    tokens_per_image = variants[0]
    n = len(train)
    batch = min(recipe.lit_batch_size, n)
    order = torch.randperm(n, generator=gen)
    cursor = 0
    model.train()
    loss = torch.tensor(0.0)
    start = time.perf_counter()
    for step in progress(range(recipe.lit_steps), desc=f"{desc}: LiT"):
        if cursor + batch > n:
            order, cursor = torch.randperm(n, generator=gen), 0
        idx = order[cursor : cursor + batch]
        cursor += batch
        view = torch.randint(0, 2, (batch,), generator=gen)
        images = image_emb[view, idx]
        choice = [int(torch.randint(0, tokens_per_image[i].shape[0], (1,), generator=gen)) for i in idx.tolist()]
        # Drawn only when enabled, so a recipe without dropout keeps its random stream (and cache key).
        variant = torch.zeros(batch, dtype=torch.long)
        if recipe.lit_drop_color > 0:
            variant += (torch.rand(batch, generator=gen) < recipe.lit_drop_color).long()
        if recipe.lit_drop_size > 0:
            variant += 2 * (torch.rand(batch, generator=gen) < recipe.lit_drop_size).long()
        text = torch.stack(
            [variants[v][i][c] for i, c, v in zip(idx.tolist(), choice, variant.tolist())]
        )
        texts = F.normalize(model.encode_text(text), dim=-1)
        logits = model.logit_scale.exp() * images @ texts.T
        labels = torch.arange(batch)
        loss = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        log.write(phase="lit", step=step + 1, lit_loss=loss.item(), seconds=time.perf_counter() - start)
    for p in model.visual.parameters():
        p.requires_grad_(True)
    model.eval()
    return loss.item()


# --- the whole pretraining ----------------------------------------------------------------------------------
def _save_open_clip(clip: Any, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in clip.model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"), metadata={"arch": clip.name})
    (folder / "arch.txt").write_text(clip.name + "\n")


def _write_report(folder: Path, summary: dict[str, Any]) -> None:
    reports = summary["towers"]
    atomic_write_text(folder / "report.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    markdown = report_markdown({reports[k]["arch"]: reports[k] for k in reports})
    markdown += f"\nTotal training wall time {summary['wall_time_s']:.0f} s on {summary['threads']} threads.\n"
    atomic_write_text(folder / "report.md", markdown)


def recompute_report(folder: str | os.PathLike) -> dict[str, Any]:
    """Re-evaluate the towers of a finished pretraining folder on its world's val split and rewrite the report
    (the training-time figures: probes and timings, are kept)."""
    folder = Path(folder)
    summary = json.loads((folder / "report.json").read_text())
    val = load_split(Path(summary["world"]) / "val")
    for kind, report in summary["towers"].items():
        clip = create_clip(report["arch"], weights=folder / kind)
        report.update(zero_shot_report(clip, val))
    _write_report(folder, summary)
    return summary


def evaluate_towers(folder: str | os.PathLike, split_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Zero-shot reports ``{arch: report}`` of a finished pretraining folder's towers on another split (for
    example the val split of a larger world of another seed: the default val split holds only 93
    single-object images, where one run differs from the next by up to 10 points). Writes nothing."""
    folder = Path(folder)
    summary = json.loads((folder / "report.json").read_text())
    split = load_split(Path(split_dir))
    return {
        report["arch"]: zero_shot_report(create_clip(report["arch"], weights=folder / kind), split)
        for kind, report in summary["towers"].items()
    }


def pretrain_toy_clips(
    recipe: ToyClipRecipe | None = None,
    world: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    force: bool = False,
) -> Path:
    """Train both toy CLIPs (or reuse them) and write everything listed in the module docstring.

    Args:
        recipe: the recipe (default :class:`ToyClipRecipe`).
        world: a toy-world folder (default: :func:`~vlzoo.toyworld.default_world`).
        out: output folder (default: :func:`toy_clip_dir`).
        force: retrain even when the output is complete.

    Returns:
        The output folder.
    """
    recipe = recipe or ToyClipRecipe()
    world = Path(world) if world is not None else default_world()
    out = Path(out) if out is not None else cache_dir("toyclip") / recipe_key(recipe, world)
    # A concurrent caller waits on the cache lock, then reuses what this one trained.
    return build_once(
        out, lambda p: (p / "report.json").is_file(), lambda staging: _pretrain_into(staging, recipe, world),
        force=force,
    )


def _train_tower(kind: str, recipe: ToyClipRecipe, train: ToySplit, val: ToySplit, staging: Path) -> dict[str, Any]:
    """Train one tower (both phases), save it and its curves into ``staging``; returns its report row."""
    tower_recipe: TowerRecipe = getattr(recipe, kind)
    seed_everything(recipe.seed)
    clip = create_clip(tower_recipe.arch)
    log = MetricsLog(staging / f"metrics_{kind}.jsonl")
    start = time.perf_counter()
    probe = train_attributes(clip, train, val, tower_recipe, log, recipe.seed, kind)
    attribute_seconds = time.perf_counter() - start
    train_lit(clip, train, tower_recipe, log, recipe.seed, kind)
    train_seconds = time.perf_counter() - start
    _save_open_clip(clip, staging / kind)
    if kind == "vit":
        save_hf_clip(clip, staging / "vit_hf")
    report = zero_shot_report(clip, val)
    report.update({k: round(v, 2) for k, v in probe.items()})
    report.update(
        arch=tower_recipe.arch,
        attribute_seconds=round(attribute_seconds, 1),
        train_seconds=round(train_seconds, 1),
        threads=torch.get_num_threads(),
    )
    log.plot(staging / f"metrics_{kind}.png")
    return report


def _pretrain_into(staging: Path, recipe: ToyClipRecipe, world: Path) -> None:
    # One tower after the other, each on all the threads. Measured on 2026-12-02 (2 cores, quiet): 693 s in
    # all, against 869 s with the towers side by side in two processes of one thread each (one tower on two
    # threads runs 1.6x faster than on one, and the ViT alone is 72 % of the work).
    start = time.perf_counter()
    before = torch.get_num_threads()
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    try:
        train, val = load_split(world / "train"), load_split(world / "val")
        reports = {kind: _train_tower(kind, recipe, train, val, staging) for kind in ("vit", "convnext")}
    finally:
        torch.set_num_threads(before)  # the caller's thread count, as it was
    summary = {
        "towers": reports,
        "wall_time_s": round(time.perf_counter() - start, 1),
        "threads": recipe.threads or before,
        "load_average": list(os.getloadavg()),
        "world": str(world),
        "recipe": asdict(recipe),
        "recipe_version": RECIPE_VERSION,
    }
    _write_report(staging, summary)
    atomic_write_text(staging / "recipe.json", json.dumps(asdict(recipe), indent=2, sort_keys=True) + "\n")
