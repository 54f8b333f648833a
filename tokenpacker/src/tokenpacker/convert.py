"""Convert TokenPacker projector weights between the official key layout and :class:`tokenpacker.TokenPacker`.

The official checkpoints (CircleRadon/TokenPacker, e.g. ``mm_projector.bin`` of stage 1 or the full HF
``pytorch_model-*.bin`` shards) store the projector as ``model.mm_projector.<name>`` with the sub-module
names of the official ``TokenPacker`` class::

    official (builder.py)                     ours (tokenpacker.packer)      shape at 7B
    q_proj_1.weight                           query_proj.weight              (1024, 1024)
    k_proj_1.{0,2}.{weight,bias}              key_mlp.{0,2}.*                (1024, 4096), (1024, 1024)
    v_proj_1.{0,2}.{weight,bias}              value_mlp.{0,2}.*
    ln_q_1 / ln_k_1 / ln_v_1 .{weight,bias}   query_norm / key_norm / value_norm
    clip_attn.in_proj_{weight,bias}           attn.in_proj_*                 (3072, 1024), (3072,)
    clip_attn.out_proj.{weight,bias}          attn.out_proj.*
    mlp.{0,2}.{weight,bias}                   out_mlp.{0,2}.*                (4096, 1024), (4096, 4096)

Only names change: tensors are passed through untouched (no transposes, no dtype change), so the
converted dict loads with ``TokenPacker.load_state_dict(..., strict=True)``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["OFFICIAL_PREFIX", "OFFICIAL_TO_OURS", "projector_from_official", "projector_to_official"]

OFFICIAL_PREFIX = "model.mm_projector."
"""Prefix of the projector keys in official LLaVA/TokenPacker checkpoints."""

OFFICIAL_TO_OURS: dict[str, str] = {
    "q_proj_1": "query_proj",
    "k_proj_1": "key_mlp",
    "v_proj_1": "value_mlp",
    "ln_q_1": "query_norm",
    "ln_k_1": "key_norm",
    "ln_v_1": "value_norm",
    "clip_attn": "attn",
    "mlp": "out_mlp",
}
"""Official top-level sub-module name -> ours; the part after the first dot is identical."""

_OURS_TO_OFFICIAL = {ours: official for official, ours in OFFICIAL_TO_OURS.items()}

# Every key of one TokenPacker, by official name; anything else in a projector dict is an error.
_OFFICIAL_KEYS = frozenset(
    ["q_proj_1.weight"]
    + [f"{m}.{i}.{p}" for m in ("k_proj_1", "v_proj_1", "mlp") for i in (0, 2) for p in ("weight", "bias")]
    + [f"ln_{n}_1.{p}" for n in "qkv" for p in ("weight", "bias")]
    + [f"clip_attn.{p}" for p in ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")]
)


def _rename(key: str, table: Mapping[str, str], source: str) -> str:
    head, _, rest = key.partition(".")
    if head not in table or not rest:
        raise ValueError(
            f"{source} key {key!r} is not a TokenPacker parameter (known prefixes: {sorted(table)})"
        )
    return f"{table[head]}.{rest}"


def _strip_projector_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keep the projector part of a checkpoint, without any ``...mm_projector.`` prefix.

    If some key contains ``mm_projector.``, the dict is taken to be a (partial) model checkpoint: only those
    keys are kept (the LLM and vision tower are left out) and the prefix up to ``mm_projector.`` is removed,
    as the official ``get_w`` does. Otherwise every key must be a bare projector key.
    """
    marker = "mm_projector."
    prefixed = {k: v for k, v in state_dict.items() if marker in k}
    if not prefixed:
        return dict(state_dict)
    return {k.split(marker, 1)[1]: v for k, v in prefixed.items()}


def projector_from_official(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename official TokenPacker projector weights to the keys of :class:`tokenpacker.TokenPacker`.

    Args:
        state_dict: the official projector weights, with or without the ``model.mm_projector.`` prefix
            (``mm_projector.bin``, a full model state dict, or ``TokenPacker.state_dict()`` of the official
            module).

    Returns:
        A new dict (same tensors) that ``TokenPacker.load_state_dict`` accepts.

    Raises:
        ValueError: naming the offending keys, if keys are missing or unknown (for instance a checkpoint
            of another projector type).
    """
    projector = _strip_projector_prefix(state_dict)
    unknown = sorted(set(projector) - _OFFICIAL_KEYS)
    missing = sorted(_OFFICIAL_KEYS - set(projector))
    if unknown or missing:
        raise ValueError(
            "not an official TokenPacker projector state dict: "
            f"unknown keys {unknown[:8]}{' ...' if len(unknown) > 8 else ''}, missing keys {missing}"
        )
    return {_rename(k, OFFICIAL_TO_OURS, "official"): v for k, v in projector.items()}


def projector_to_official(
    state_dict: Mapping[str, torch.Tensor], prefix: str = OFFICIAL_PREFIX
) -> dict[str, torch.Tensor]:
    """Inverse of :func:`projector_from_official`: ``TokenPacker.state_dict()`` -> official keys.

    Args:
        state_dict: keys of :class:`tokenpacker.TokenPacker`.
        prefix: prepended to every official key (``"model.mm_projector."`` as in official checkpoints;
            ``""`` for the bare official module).

    Returns:
        A new dict (same tensors) with official key names.
    """
    official = {prefix + _rename(k, _OURS_TO_OFFICIAL, "TokenPacker"): v for k, v in state_dict.items()}
    missing = sorted(_OFFICIAL_KEYS - {k[len(prefix) :] for k in official})
    if missing:
        raise ValueError(f"TokenPacker state dict is incomplete: missing official keys {missing}")
    return official


def main(argv: list[str] | None = None) -> int:
    """``tokenpacker-convert``: whole checkpoints between the official layout and ours (``tokenpacker.official``).

        tokenpacker-convert from-official OFFICIAL_DIR OUT_DIR [--vision-tower CLIP_DIR] [--patch-num 9]
        tokenpacker-convert to-official OUR_DIR OUT_DIR [--vision-tower-path PATH]
    """
    import argparse

    from tokenpacker.official import convert_from_official, convert_to_official

    parser = argparse.ArgumentParser(prog="tokenpacker-convert", description=main.__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    inbound = commands.add_parser("from-official", help="official TokenPacker/LLaVA folder -> ours")
    inbound.add_argument("source")
    inbound.add_argument("out")
    inbound.add_argument("--vision-tower", default=None, help="local CLIP folder (default: mm_vision_tower)")
    inbound.add_argument("--patch-num", type=int, default=9, help="TokenPacker-HD candidate list (default 9)")
    outbound = commands.add_parser("to-official", help="ours -> the official key layout")
    outbound.add_argument("source")
    outbound.add_argument("out")
    outbound.add_argument("--vision-tower-path", default="",
                          help="mm_vision_tower to record (default: write <out>/vision_tower)")
    args = parser.parse_args(argv)
    if args.command == "from-official":
        out = convert_from_official(args.source, args.out, vision_tower=args.vision_tower, patch_num=args.patch_num)
    else:
        out = convert_to_official(args.source, args.out, vision_tower_path=args.vision_tower_path)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
