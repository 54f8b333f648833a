"""Zero-shot evaluation of a CLIP on a toy-world split: the "zero-shot CLIP" baselines of the papers.

Two figures, both computed from the image embedding (the tower's pooled, projected output) and label
embeddings made with a template ensemble (:func:`vlzoo.clip.encode_labels`, QKS's "mean of raw text
embeddings" reduction):

- **single-object top-1**: on the split's images that hold exactly one object, the category whose label
  embedding has the highest cosine with the image embedding, over all 16 categories (chance 6.25%); the same
  for the object's colour (10 words, chance 10%) and size (3 words) with :data:`ATTRIBUTE_TEMPLATES`;
- **multi-label mAP** (``vlzoo.metrics.mean_average_precision``, in percent): every image scored against
  every category, positives = the categories present in the image; reported on the seen and on the unseen
  categories (:data:`~vlzoo.toyworld.world.UNSEEN_CATEGORIES`) with each subset's positive rate, the mAP a
  random scorer gets in expectation.

``TOY_TEMPLATES`` is the toy world's template set: the frames its caption grammar uses ("a picture of a
{}", "a {} on a striped background", ...), crossed with the three sizes, so the ensemble averages out
size and background the way the ImageNet templates average out photo styles.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from vlzoo.clip import encode_labels, preprocess_images
from vlzoo.metrics import mean_average_precision
from vlzoo.toyworld.pretrain_data import ToySplit
from vlzoo.toyworld.world import BACKGROUND_WORDS, CATEGORIES, COLORS, SIZES, UNSEEN_CATEGORIES

__all__ = ["ATTRIBUTE_TEMPLATES", "TOY_TEMPLATES", "image_embeddings", "zero_shot_report", "report_markdown"]


def _toy_templates() -> tuple[str, ...]:
    frames = ["a picture of a {}", "a {}", "one shape: a {}"]
    frames += [f"a {{}} on a {word} background" for word in sorted(set(BACKGROUND_WORDS.values()))]
    sized = [f"a {size} {{}}" for size in SIZES] + [f"a picture of a {size} {{}}" for size in SIZES]
    return tuple(frames + sized)


TOY_TEMPLATES: tuple[str, ...] = _toy_templates()
"""Prompt templates in the toy captions' own phrasing (each a ``str.format`` string with one ``{}``)."""

ATTRIBUTE_TEMPLATES: tuple[str, ...] = ("a {} shape", "a picture of a {} shape", "one shape: a {} shape")
"""Templates for the colour and size words (``{}`` = "red", "small", ...) of the attribute figures."""


@torch.no_grad()
def image_embeddings(clip: Any, images: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
    """(N, D) L2-normalised image embeddings of (N, 3, S, S) uint8 images (resized to the tower's input)."""
    size = clip.image_size[0]
    out = []
    for start in range(0, images.shape[0], batch_size):
        batch = preprocess_images(images[start : start + batch_size], size).to(clip.device)
        out.append(clip.encode_image(batch, normalize=True).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def zero_shot_report(clip: Any, split: ToySplit, templates: Any = TOY_TEMPLATES) -> dict[str, Any]:
    """Zero-shot figures of ``clip`` on ``split`` (see the module docstring).

    Args:
        clip: a :class:`vlzoo.clip.ClipModel` or :class:`vlzoo.clip.HfClip` with a text tower.
        split: a :class:`~vlzoo.toyworld.pretrain_data.ToySplit` (usually the val split).
        templates: a template set accepted by :func:`vlzoo.clip.encode_labels`.

    Returns:
        {"single_object_top1": %, "single_object_images": n, "per_category_top1": {name: %},
        "map_seen": %, "map_unseen": %, "map_all": %, "positive_rate_seen": %, "positive_rate_unseen": %,
        "images": N, "templates": number of templates}.
    """
    was_training = getattr(clip, "training", False)
    if hasattr(clip, "eval"):
        clip.eval()
    images = image_embeddings(clip, split.images)
    labels = encode_labels(clip, list(CATEGORIES), templates, cache=False).float().cpu()
    labels = F.normalize(labels, dim=-1)
    scores = images @ labels.T  # (N, 16) cosine similarities

    single = split.num_objects == 1
    truth = split.category[single, 0]
    predicted = scores[single].argmax(dim=1)
    per_category = {}
    for index, name in enumerate(CATEGORIES):
        rows = truth == index
        if rows.any():
            per_category[name] = round(100.0 * (predicted[rows] == index).float().mean().item(), 2)

    attribute_top1 = {}
    for name, vocab, table in (("color", COLORS, split.color), ("size", SIZES, split.size)):
        words = F.normalize(encode_labels(clip, list(vocab), ATTRIBUTE_TEMPLATES, cache=False).float().cpu(), dim=-1)
        hits = (images[single] @ words.T).argmax(dim=1) == table[single, 0]
        attribute_top1[f"single_object_{name}_top1"] = round(100.0 * hits.float().mean().item(), 2)

    presence = split.presence()["category"]  # (N, 16) in {0, 1}
    targets = presence * 2 - 1  # {+1, -1}: every image is annotated for every category
    unseen = torch.tensor([name in UNSEEN_CATEGORIES for name in CATEGORIES])
    report = {
        "images": len(split),
        "single_object_images": int(single.sum()),
        "single_object_top1": round(100.0 * (predicted == truth).float().mean().item(), 2),
        "per_category_top1": per_category,
        **attribute_top1,
        "map_all": round(mean_average_precision(scores, targets), 2),
        "map_seen": round(mean_average_precision(scores[:, ~unseen], targets[:, ~unseen]), 2),
        "map_unseen": round(mean_average_precision(scores[:, unseen], targets[:, unseen]), 2),
        "positive_rate_seen": round(100.0 * presence[:, ~unseen].mean().item(), 2),
        "positive_rate_unseen": round(100.0 * presence[:, unseen].mean().item(), 2),
        "templates": len(templates) if not isinstance(templates, str) else templates,
    }
    if was_training and hasattr(clip, "train"):
        clip.train()
    return report


def report_markdown(reports: dict[str, dict[str, Any]], title: str = "Toy CLIP zero-shot report") -> str:
    """A markdown table of several towers' :func:`zero_shot_report` results (``{tower name: report}``)."""
    lines = [
        f"# {title}",
        "",
        "| tower | single-object category top-1 (%) | colour top-1 (%) | size top-1 (%) | mAP seen (%) "
        "| mAP unseen (%) | positive rate seen / unseen (%) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in reports.items():
        lines.append(
            f"| {name} | {r['single_object_top1']:.1f} (n={r['single_object_images']}) "
            f"| {r.get('single_object_color_top1', float('nan')):.1f} | {r.get('single_object_size_top1', float('nan')):.1f} "
            f"| {r['map_seen']:.1f} "
            f"| {r['map_unseen']:.1f} | {r['positive_rate_seen']:.1f} / {r['positive_rate_unseen']:.1f} |"
        )
    lines.append("")
    return "\n".join(lines)
