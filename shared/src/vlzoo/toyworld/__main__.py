"""Command line of the toy world: ``python -m vlzoo.toyworld <command> ...``.

Commands are registered in :data:`COMMANDS` as ``name -> (add_arguments, run)``; a new one (for example
``pretrain-clip``) adds its two functions there. ``main(argv)`` takes an argument list so tests can call it.

    python -m vlzoo.toyworld generate --out DIR --n-train N --n-val M --image-size S --seed K
    python -m vlzoo.toyworld default            # generate (or reuse) the cached default world, print its path
    python -m vlzoo.toyworld pretrain-clip [--force] [--out DIR] [--threads N] [KEY=VALUE ...]
                                                 # the toy CLIPs (make toyclip); KEY: recipe field
    python -m vlzoo.toyworld report [--dir DIR]  # print the cached toy CLIPs' zero-shot report
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence

from vlzoo.toyworld.generate import (
    DEFAULT_IMAGE_SIZE,
    DEFAULT_N_TRAIN,
    DEFAULT_N_VAL,
    DEFAULT_SEED,
    default_world,
    generate_world,
    read_manifest,
)

__all__ = ["COMMANDS", "build_parser", "main"]


def _add_world_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--n-train", type=int, default=DEFAULT_N_TRAIN, help="training images (default %(default)s)"
    )
    parser.add_argument(
        "--n-val", type=int, default=DEFAULT_N_VAL, help="validation images (default %(default)s)"
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=DEFAULT_IMAGE_SIZE,
        help="image side, 32..512 px (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="world seed (default %(default)s)")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes building images (default %(default)s)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_generate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="destination folder (must not exist or be empty)")
    _add_world_arguments(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing world at --out")


def _summary(path, seconds: float) -> str:
    manifest = read_manifest(path) or {}
    n = sum(manifest.get("splits", {}).values())
    per_image = 1000 * seconds / max(n, 1)
    lines = [
        f"world {manifest.get('version')} at {path}: {n} images in {seconds:.1f} s ({per_image:.1f} ms/image)"
    ]
    for split, stats in manifest.get("stats", {}).items():
        lines.append(f"  {split}: {json.dumps(stats, sort_keys=True)}")
    return "\n".join(lines)


def _run_generate(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    path = generate_world(
        args.out,
        args.n_train,
        args.n_val,
        args.image_size,
        args.seed,
        overwrite=args.overwrite,
        show_progress=not args.quiet,
        workers=args.workers,
    )
    print(_summary(path, time.perf_counter() - start))
    return 0


def _add_default(parser: argparse.ArgumentParser) -> None:
    _add_world_arguments(parser)


def _run_default(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    path = default_world(
        args.n_train,
        args.n_val,
        args.image_size,
        args.seed,
        show_progress=not args.quiet,
        workers=args.workers,
    )
    print(_summary(path, time.perf_counter() - start))
    return 0


def _add_pretrain(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="output folder (default: the cache folder of the recipe)")
    parser.add_argument("--force", action="store_true", help="retrain even when the cached towers exist")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted recipe overrides, e.g. vit.batch_size=16 vit.attribute_steps=6000 (change the cache key)",
    )
    parser.add_argument(
        "--steps-scale",
        type=float,
        default=1.0,
        help="multiply every step budget (smoke runs; changes the cache key)",
    )


def _print_report(folder) -> None:
    from pathlib import Path

    folder = Path(folder)
    print((folder / "report.md").read_text())
    print(f"towers, report and curves in {folder}")


def _run_pretrain(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from vlzoo.toyworld.pretrain import ToyClipRecipe, pretrain_toy_clips

    recipe = ToyClipRecipe(threads=args.threads)
    if args.steps_scale != 1.0:
        scaled = {}
        for kind in ("vit", "convnext"):
            tower = getattr(recipe, kind)
            scaled[kind] = replace(
                tower,
                attribute_steps=max(1, round(tower.attribute_steps * args.steps_scale)),
                lit_steps=max(1, round(tower.lit_steps * args.steps_scale)),
            )
        recipe = replace(recipe, **scaled)
    if args.overrides:
        from vlzoo.config import apply_overrides

        recipe = apply_overrides(recipe, args.overrides)
    start = time.perf_counter()
    folder = pretrain_toy_clips(recipe, out=args.out, force=args.force)
    print(f"toy CLIPs ready in {time.perf_counter() - start:.1f} s")
    _print_report(folder)
    return 0


def _add_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", default=None, help="a pretrain-clip output folder (default: the cached one)")
    parser.add_argument("--recompute", action="store_true", help="re-evaluate the towers and rewrite the report")
    parser.add_argument(
        "--split",
        default=None,
        help="evaluate the towers on this split folder instead (for example the val split of a larger world "
        "made by `generate --seed 1 --n-val 5000`); prints the table and leaves the saved report alone",
    )


def _run_report(args: argparse.Namespace) -> int:
    from vlzoo.toyworld.pretrain import toy_clip_dir

    folder = args.dir or toy_clip_dir()
    from pathlib import Path

    if not (Path(folder) / "report.md").is_file():
        print(f"error: no toy CLIP report in {folder}; run `make toyclip` first", file=sys.stderr)
        return 2
    if args.split is not None:
        from vlzoo.toyworld.pretrain import evaluate_towers
        from vlzoo.toyworld.zeroshot import report_markdown

        if args.recompute:
            print("error: --split and --recompute do not go together", file=sys.stderr)
            return 2
        if not (Path(args.split) / "instances.json").is_file():
            print(f"error: {args.split} is not a toy-world split folder (no instances.json)", file=sys.stderr)
            return 2
        print(report_markdown(evaluate_towers(folder, args.split), title=f"Toy CLIP zero-shot report on {args.split}"))
        return 0
    if args.recompute:
        from vlzoo.toyworld.pretrain import recompute_report

        recompute_report(folder)
    _print_report(folder)
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "generate": (_add_generate, _run_generate),
    "default": (_add_default, _run_default),
    "pretrain-clip": (_add_pretrain, _run_pretrain),
    "report": (_add_report, _run_report),
}
"""Sub-command name -> (add its arguments to a parser, run it and return the exit code)."""

_HELP = {
    "generate": "render a toy world into a folder",
    "default": "generate (or reuse) the cached default world and print where it is",
    "pretrain-clip": "pretrain the toy ViT and ConvNeXt CLIPs on the default world (cached) and print the report",
    "report": "print the zero-shot report of the cached toy CLIPs",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vlzoo.toyworld", description="The vlzoo toy world.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, _) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=_HELP.get(name)))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command, return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command][1](args)
    except (ValueError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
