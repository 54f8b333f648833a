"""Save an MLP-projector model as a stock ``llava`` folder, loadable where vlzoo is not installed.

``save_pretrained`` of a :class:`~vlzoo.mllm.VlzooLlavaForConditionalGeneration` already writes stock
LLaVA's weight names, and stock ``LlavaForConditionalGeneration.from_pretrained`` loads it (with a
model-type warning). This writes the same weights with ``model_type = "llava"``, so ``AutoConfig`` /
``AutoModelForImageTextToText`` resolve it to the stock classes without importing vlzoo.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from vlzoo.mllm.configuration import MLP_PROJECTOR
from vlzoo.run import atomic_write_text

__all__ = ["save_stock_llava"]


def save_stock_llava(model, folder: str | os.PathLike) -> Path:
    """Write ``model`` (projector ``"mlp2x_gelu"``) to ``folder`` as a stock LLaVA checkpoint.

    Raises:
        ValueError: for any other projector, which stock LLaVA cannot represent.
    """
    if model.config.projector_type != MLP_PROJECTOR:
        raise ValueError(
            f"only projector_type {MLP_PROJECTOR!r} has a stock LLaVA layout, this model has "
            f"{model.config.projector_type!r}"
        )
    folder = Path(folder)
    model.save_pretrained(folder)
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text())
    config["model_type"] = "llava"
    config["architectures"] = ["LlavaForConditionalGeneration"]
    config.pop("projector_type", None)
    config.pop("projector_kwargs", None)
    atomic_write_text(config_file, json.dumps(config, indent=2, sort_keys=True) + "\n")
    return folder
