"""tokenpacker: TokenPacker, the coarse-to-fine visual projector for LLaVA-style MLLMs (arXiv 2407.02392).

Public API:

- :class:`TokenPacker` (``tokenpacker.packer``): the projector, ``forward(x, x_multi) -> (B, M, H)``.
- ``tokenpacker.projectors``: the baseline projectors of the paper's Tab. 3 with the same interface,
  :class:`ProjectorConfig`, :func:`build_projector` and :func:`build_projector_from_config`.
- ``tokenpacker.hd``: TokenPacker-HD image partition (grid choice, resize-and-pad, tiles, thumbnail,
  separator assembly, token counts).
- ``tokenpacker.convert``: :func:`projector_from_official` / :func:`projector_to_official`.
- ``tokenpacker.modeling``: :class:`TokenPackerLlavaConfig` / :class:`TokenPackerLlavaForConditionalGeneration`
  (the MLLM on ``vlzoo.mllm``; importing registers ``tokenpacker_llava`` with the transformers Auto classes).
- ``tokenpacker.engine`` (``fit``, ``evaluate``, ``generate_answers``), ``tokenpacker.scoring`` (benchmark
  scorers), ``tokenpacker.official`` (whole-checkpoint conversion); entrypoints ``tokenpacker.train``,
  ``.evaluate``, ``.bench``, ``.reproduce``, ``.demo``, ``.convert`` (``main(argv) -> int``).
"""

from tokenpacker import hd
from tokenpacker.convert import projector_from_official, projector_to_official
from tokenpacker.modeling import TokenPackerLlavaConfig, TokenPackerLlavaForConditionalGeneration
from tokenpacker.packer import TokenPacker
from tokenpacker.projectors import PROJECTORS, ProjectorConfig, build_projector, build_projector_from_config

__all__ = [
    "TokenPacker",
    "TokenPackerLlavaConfig",
    "TokenPackerLlavaForConditionalGeneration",
    "ProjectorConfig",
    "PROJECTORS",
    "build_projector",
    "build_projector_from_config",
    "projector_from_official",
    "projector_to_official",
    "hd",
]
