"""Shared command-line plumbing of the TokenPacker entrypoints: ``--config YAML`` plus dotted overrides."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tokenpacker.config import TokenPackerConfig
from vlzoo.config import load_config

__all__ = ["config_parser", "parse_config"]


def config_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser taking ``--config`` and free ``key.path=value`` overrides (and ignoring launcher flags)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", default=None, help="YAML holding only the changes from the defaults")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. stage2.lora=true seed=1")
    # The deepspeed launcher appends --local_rank=N; torchrun uses the LOCAL_RANK environment variable.
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    return parser


def parse_config(args: argparse.Namespace, extra: Sequence[str] = ()) -> TokenPackerConfig:
    """The resolved config: dataclass defaults <- ``args.config`` <- ``args.overrides`` <- ``extra``."""
    return load_config(TokenPackerConfig, args.config, [*args.overrides, *extra])
