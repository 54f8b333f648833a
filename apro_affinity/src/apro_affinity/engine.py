"""Training and evaluation of the miniature reproduction (no argparse: ``train.py`` / ``reproduce.py`` call it).

Box task (instance masks from boxes). Every training step takes ``images_per_step`` images and all their
instances; each instance is cropped around its ground-truth box (:func:`~apro_affinity.modeling.crop_instances`)
and :class:`~apro_affinity.modeling.BoxMaskNet` predicts its mask logits on the crop. Losses, with p the
sigmoid and B the (bilinearly cropped, soft-bordered) box mask:

- every method: ``projection_weight * mean_r L_proj(p_r, B_r)``;
- ``boxinst_pairwise``: + BoxInst's pairwise term on the crop's LAB colours, ramped up over the first
  ``boxinst_warmup`` of the steps;
- ``tel``: + the L1 inside the box to TEL's tree-filtered prediction on the image tree (TEL's low-level tree),
  stop-gradient like APro's: TEL's high-level tree needs an embedding learned through the loss by autograd
  through the filter, which only the PyTorch reference offers (5-40x slower here; see the README);
- ``apro_local`` / ``apro_global`` / ``apro``: + APro's LP and / or two-stage GP terms (SOLOv2 head recipe,
  per-instance normalisation) on the crop, the mmdet-normalised crop as guidance.

Evaluation pastes each crop's probabilities back onto the image, thresholds them at 0.5 inside the box, and
reports the mean over instances of the mask IoU (``miou``) and COCO mask AP through pycocotools
(``mask_ap``) with one prediction per ground-truth box (its class, a "maskness" score: the mean probability
over the predicted pixels). Because the box and class are given, AP here ranks mask quality only.

Sparse tasks (semantic masks from scribbles or clicks): :class:`~apro_affinity.modeling.SegNet` on the whole
image, partial CE on the labelled pixels at the image resolution (logits upsampled), and the pairwise term on
the unlabelled pixels at the logit resolution (stride 2): ``pce_tel`` TEL's loss, ``pce_apro`` APro's GP + LP
terms, each weighted ``semantic_weight``; ``full_masks`` trains the same way on the full masks (reference). Evaluation on the val ``semantic/`` masks: ``miou`` over the 17 classes,
and ``fg_miou``, the class-agnostic (object vs background) mIoU, which separates the extent of the predicted
regions (what a pairwise term can improve) from recognising which of the 16 shapes a region is.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from apro_affinity.apro_terms import apro_box_terms, apro_semantic_terms, tel_box_term, tel_semantic_term
from apro_affinity.box_masks import boxes_to_masks
from apro_affinity.config import ExperimentConfig
from apro_affinity.data import (
    ToySplit,
    batch_image_indices,
    flip_flags,
    load_split,
    normalize_images,
    resolve_world,
)
from apro_affinity.losses import (
    box_projection_loss,
    boxinst_pairwise_loss,
    lab_color_similarity,
    partial_cross_entropy,
)
from apro_affinity.modeling import BoxMaskNet, SegNet, crop_instances, paste_masks
from vlzoo.config import save_config
from vlzoo.run import Checkpointer, RunDir, TrainLoop, atomic_write_text, seed_everything

__all__ = [
    "build_model",
    "load_data",
    "box_batch",
    "box_step_losses",
    "semantic_batch",
    "semantic_step_losses",
    "fit",
    "evaluate",
    "load_trained",
    "predict_box_probs",
    "predict_semantic_logits",
]

MASK_THRESHOLD = 0.5
"""Probability above which a pixel belongs to the predicted mask."""


def build_model(cfg: ExperimentConfig, num_classes: int = 17) -> nn.Module:
    """The network of the task (the same for every method of a task)."""
    if cfg.task == "box":
        return BoxMaskNet(cfg.model.widths)
    return SegNet(num_classes, cfg.model.widths)



def load_data(cfg: ExperimentConfig) -> tuple[ToySplit, ToySplit]:
    """(train, val) splits of the configured world."""
    root = resolve_world(cfg.world)
    return load_split(root / "train", cfg.world.train_images), load_split(root / "val", cfg.world.val_images)


# ------------------------------------------------------------------------------------------------ box task


def _flip_boxes(boxes: Tensor, width: int, flip: Tensor) -> Tensor:
    flipped = boxes.clone()
    flipped[:, 0] = width - boxes[:, 2]
    flipped[:, 2] = width - boxes[:, 0]
    return torch.where(flip[:, None], flipped, boxes)


def box_batch(split: ToySplit, cfg: ExperimentConfig, image_indices: Tensor, flips: Tensor | None = None) -> dict:
    """The instance crops of some images (optionally flipped), ready for :class:`BoxMaskNet`.

    Returns:
        ``crops`` (R, 3, S, S) normalised, ``crops_rgb`` (R, 3, S, S) in [0, 255], ``box_crops`` (R, S, S),
        ``boxes`` (R, 4), ``box_masks`` (R, H, W) bool, ``theta`` (R, 2, 3), ``instances`` (R,) indices into
        the split, ``flips`` (R,) bool.
    """
    instances = split.instances_of(image_indices)
    local = torch.full((len(split),), -1, dtype=torch.long)
    local[image_indices] = torch.arange(image_indices.numel())
    inst_local = local[split.inst_image[instances]]
    images = split.images[image_indices].float()
    height, width = images.shape[-2:]
    if flips is None:
        flips = torch.zeros(image_indices.numel(), dtype=torch.bool)
    images = torch.where(flips[:, None, None, None], images.flip(-1), images)
    inst_flips = flips[inst_local]
    boxes = _flip_boxes(split.inst_boxes[instances], width, inst_flips)
    box_masks = boxes_to_masks(boxes, height, width, inclusive_end=False)
    size, context = cfg.model.crop_size, cfg.model.crop_context
    crops_rgb, box_crops, theta = crop_instances(images, inst_local, boxes, size, context, box_masks.float())
    crops = normalize_images(crops_rgb)  # off-image parts of a crop are black (RGB 0) in both forms
    return {"crops": crops, "crops_rgb": crops_rgb, "box_crops": box_crops, "boxes": boxes, "box_masks": box_masks,
            "theta": theta, "instances": instances, "flips": inst_flips}


def box_step_losses(model: nn.Module, batch: dict, cfg: ExperimentConfig, step: int) -> dict:
    """Loss terms of one box-task step (``loss`` is their weighted sum)."""
    logits, feature = model(batch["crops"], batch["box_crops"])
    probs = logits.sigmoid()
    box = batch["box_crops"]
    lc = cfg.loss
    out = {"projection": box_projection_loss(probs, box).mean()}
    total = lc.projection_weight * out["projection"]
    own = torch.arange(probs.shape[0])
    if cfg.method in ("apro_local", "apro_global", "apro"):
        terms = apro_box_terms(probs, box, batch["crops"], own, zeta_gl=lc.zeta_gl, zeta_gh=lc.zeta_gh,
                               kernel_size=lc.kernel_size, zeta_s=lc.zeta_s, iterations=lc.lp_iterations,
                               normalize="instance", use_global=cfg.method != "apro_local",
                               use_local=cfg.method != "apro_global", impl=cfg.impl)
        if "global" in terms:
            out["global"] = terms["global"]
            total = total + lc.apro_global_weight * terms["global"]
        if "local" in terms:
            out["local"] = terms["local"]
            total = total + lc.apro_local_weight * terms["local"]
    elif cfg.method == "boxinst_pairwise":
        similarity = lab_color_similarity(batch["crops_rgb"])
        out["pairwise"] = boxinst_pairwise_loss(logits, similarity, box > 0.5, lc.boxinst_threshold)
        ramp = max(1.0, lc.boxinst_warmup * cfg.train.steps)
        total = total + lc.boxinst_weight * min(1.0, (step + 1) / ramp) * out["pairwise"]
    elif cfg.method == "tel":
        out["tel"] = tel_box_term(probs, box, batch["crops_rgb"] / 255.0, own, sigma=lc.tel_sigma, impl=cfg.impl)
        total = total + lc.tel_box_weight * out["tel"]
    return {"loss": total, **{k: v.detach() for k, v in out.items()}}


@torch.no_grad()
def predict_box_probs(model: nn.Module, split: ToySplit, cfg: ExperimentConfig, image_indices: Tensor
                      ) -> tuple[Tensor, dict]:
    """(R, H, W) mask probabilities on the image grid (0 outside each box) for the instances of some images."""
    batch = box_batch(split, cfg, image_indices)
    logits, _ = model(batch["crops"], batch["box_crops"])
    height, width = split.images.shape[-2:]
    probs = paste_masks(logits.sigmoid(), batch["theta"], height, width) * batch["box_masks"]
    return probs, batch


def _evaluate_box(model: nn.Module, split: ToySplit, cfg: ExperimentConfig, chunk: int = 32) -> dict:
    from pycocotools import mask as mask_utils

    from vlzoo.metrics import coco_mask_ap

    ious, predictions = [], []
    for start in range(0, len(split), chunk):
        indices = torch.arange(start, min(start + chunk, len(split)))
        probs, batch = predict_box_probs(model, split, cfg, indices)
        pred = probs > MASK_THRESHOLD
        gt = split.inst_masks[batch["instances"]]
        inter = (pred & gt).flatten(1).sum(1).double()
        union = (pred | gt).flatten(1).sum(1).double()
        ious.append(inter / union.clamp(min=1))
        area = pred.flatten(1).sum(1)
        scores = torch.where(area > 0, (probs * pred).flatten(1).sum(1) / area.clamp(min=1), torch.zeros_like(area,
                             dtype=probs.dtype))
        masks = np.asfortranarray(pred.permute(1, 2, 0).numpy().astype(np.uint8))
        rles = mask_utils.encode(masks)
        for r, inst in enumerate(batch["instances"].tolist()):
            rle = rles[r]
            rle["counts"] = rle["counts"].decode("ascii")
            predictions.append({"image_id": int(split.image_ids[split.inst_image[inst]]),
                                "category_id": int(split.inst_categories[inst]),
                                "segmentation": rle, "score": float(scores[r])})
    ap = coco_mask_ap(split.coco_subset(), predictions)
    return {"miou": float(torch.cat(ious).mean() * 100), "mask_ap": ap["AP"], "mask_ap50": ap["AP50"],
            "mask_ap75": ap["AP75"], "instances": int(sum(i.numel() for i in ious))}


# ------------------------------------------------------------------------------------------ sparse tasks


def _label_kind(cfg: ExperimentConfig) -> str:
    if cfg.method == "full_masks":
        return "semantic"
    return {"scribble": "scribbles", "point": "points"}[cfg.task]


def semantic_batch(split: ToySplit, cfg: ExperimentConfig, image_indices: Tensor, flips: Tensor | None = None
                   ) -> dict:
    """Images (normalised and RGB) and sparse labels of some images (optionally flipped)."""
    images = split.images[image_indices].float()
    labels = split.labels[_label_kind(cfg)][image_indices].long()
    if flips is not None:
        images = torch.where(flips[:, None, None, None], images.flip(-1), images)
        labels = torch.where(flips[:, None, None], labels.flip(-1), labels)
    return {"images": normalize_images(images), "images_rgb": images, "labels": labels}


def semantic_step_losses(model: nn.Module, batch: dict, cfg: ExperimentConfig, step: int) -> dict:
    """Loss terms of one sparse-task step (``loss`` is their weighted sum)."""
    logits, feature = model(batch["images"])
    labels = batch["labels"]
    full = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    out = {"pce": partial_cross_entropy(full, labels)}
    total = out["pce"]
    grid = tuple(logits.shape[-2:])
    lc = cfg.loss
    if cfg.method in ("pce_apro", "pce_tel"):
        probs = logits.softmax(dim=1)
        unlabeled = F.interpolate((labels == 255)[:, None].float(), size=grid, mode="nearest")[:, 0] > 0.5
        if cfg.method == "pce_apro":
            guidance = F.interpolate(batch["images"], size=grid, mode="bilinear", align_corners=False)
            terms = apro_semantic_terms(probs, guidance, unlabeled, zeta_gl=lc.zeta_gl, zeta_gh=lc.zeta_gh,
                                        kernel_size=lc.kernel_size, zeta_s=lc.zeta_s, iterations=lc.lp_iterations,
                                        impl=cfg.impl)
            out["global"], out["local"] = terms["global"], terms["local"]
            total = total + lc.semantic_weight * (terms["global"] + terms["local"])
        else:
            images01 = F.interpolate(batch["images_rgb"] / 255.0, size=grid, mode="bilinear", align_corners=False)
            out["tel"] = tel_semantic_term(probs, images01, unlabeled, sigma=lc.tel_sigma, impl=cfg.impl)
            total = total + lc.semantic_weight * out["tel"]
    return {"loss": total, **{k: v.detach() for k, v in out.items()}}


@torch.no_grad()
def predict_semantic_logits(model: nn.Module, images: Tensor) -> Tensor:
    """(B, K, H, W) logits at the image resolution for uint8/float RGB images (B, 3, H, W)."""
    logits, _ = model(normalize_images(images))
    return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)


def _evaluate_semantic(model: nn.Module, split: ToySplit, chunk: int = 32) -> dict:
    from vlzoo.metrics import SegmentationMeter

    meter = SegmentationMeter(num_classes=split.num_classes)
    foreground = SegmentationMeter(num_classes=2)  # class-agnostic: object vs background
    for start in range(0, len(split), chunk):
        sl = slice(start, min(start + chunk, len(split)))
        pred = predict_semantic_logits(model, split.images[sl]).argmax(dim=1)
        gt = split.labels["semantic"][sl].long()
        meter.update(pred, gt)
        foreground.update((pred > 0).long(), (gt > 0).long())
    result, fg = meter.compute(), foreground.compute()
    return {"miou": float(result["miou"]), "pixel_accuracy": float(result["pixel_accuracy"]),
            "fg_miou": float(fg["miou"])}


# ------------------------------------------------------------------------------------------- fit / evaluate


def _schedule(cfg: ExperimentConfig):
    steps, warmup = max(1, cfg.train.steps), cfg.train.warmup_steps

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def fit(cfg: ExperimentConfig, train: ToySplit | None = None, stop_after: int | None = None) -> dict:
    """Train one run into ``cfg.output_dir`` (resuming from its latest checkpoint if there is one).

    Args:
        cfg: the experiment.
        train: the train split (loaded from the config when None).
        stop_after: stop after this many global steps (tests use it to simulate an interruption).

    Returns:
        ``{"run_dir", "step", "loss", "wall_time_s", "model"}``.
    """
    start = time.perf_counter()
    if train is None:
        train = load_split(resolve_world(cfg.world) / "train", cfg.world.train_images)
    run = RunDir.create(cfg.output_dir, cfg)
    seed_everything(cfg.train.seed)
    model = build_model(cfg, train.num_classes).to(cfg.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(cfg))
    tc = cfg.train

    def batch_fn(step: int) -> dict:
        indices = batch_image_indices(len(train), tc.images_per_step, tc.seed, step)
        flips = flip_flags(indices.numel(), tc.seed, step) if tc.flip else None
        batch = box_batch(train, cfg, indices, flips) if cfg.task == "box" else semantic_batch(train, cfg, indices,
                                                                                             flips)
        return {k: v.to(cfg.device) if isinstance(v, Tensor) else v for k, v in batch.items()}

    step_losses = box_step_losses if cfg.task == "box" else semantic_step_losses

    def step_fn(model: nn.Module, batch: dict, step: int) -> dict:
        return step_losses(model, batch, cfg, step)

    loop = TrainLoop(model, optimizer, step_fn, batch_fn, tc.steps, run.path, scheduler=scheduler,
                     save_every=tc.save_every, grad_clip=tc.grad_clip, desc=f"{cfg.task}/{cfg.method}")
    result = loop.run(stop_after=stop_after)
    return {"run_dir": run.path, "step": result["step"], "loss": result["loss"],
            "wall_time_s": time.perf_counter() - start, "model": model}


def evaluate(cfg: ExperimentConfig, model: nn.Module, val: ToySplit | None = None, write: bool = True) -> dict:
    """Metrics of a trained model on the val split (``miou`` [and ``mask_ap``] in percent).

    Writes ``eval.json`` into ``cfg.output_dir`` when ``write``.
    """
    if val is None:
        val = load_split(resolve_world(cfg.world) / "val", cfg.world.val_images)
    was_training = model.training
    model.eval()
    try:
        metrics = _evaluate_box(model, val, cfg) if cfg.task == "box" else _evaluate_semantic(model, val)
    finally:
        model.train(was_training)
    if write:
        atomic_write_text(Path(cfg.output_dir) / "eval.json", json.dumps(metrics, indent=2, sort_keys=True))
    return metrics


def load_trained(cfg: ExperimentConfig, num_classes: int = 17, checkpoint: str | Path | None = None) -> nn.Module:
    """The model of a run folder at its latest (or the given) checkpoint, in eval mode."""
    model = build_model(cfg, num_classes)
    ckpt = Checkpointer(Path(cfg.output_dir) / "checkpoints")
    path = Path(checkpoint) if checkpoint is not None else ckpt.latest()
    if path is None:
        raise FileNotFoundError(f"no checkpoint in {Path(cfg.output_dir) / 'checkpoints'}")
    ckpt.load(path, model, restore_rng=False)
    return model.eval()


def save_resolved(cfg: ExperimentConfig) -> Path:
    """Write the resolved config into the run folder (``config.yaml``)."""
    return save_config(cfg, Path(cfg.output_dir) / "config.yaml")
