"""Osprey: pixel understanding with visual instruction tuning (Yuan et al., CVPR 2024, arXiv 2312.10032).

Not implemented yet: this package holds the layout only. The spec is ``shared/specs/osprey.md`` in the
steering repo; it will reuse the LLaVA scaffolding in ``vlzoo.mllm`` and the ConvNeXt taps of ``vlzoo.clip``.
"""
