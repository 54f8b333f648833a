"""Worker for test_deepspeed.py: a tiny MLLM trained for a few steps with DeepSpeed on CPU (gloo).

Run as ``torchrun --nproc_per_node=2 ds_worker.py OUT_DIR [zero2|zero3]``; rank 0 writes
``OUT_DIR/result.json`` with the logged losses and a checksum of the trained projector seen by each rank
(gathered under ZeRO-3 by ``projector_state_dict``).
"""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from transformers import CLIPVisionConfig, LlamaConfig

from vlzoo.mllm import (
    MultimodalCollator,
    build_llava,
    build_trainer,
    deepspeed_config,
    make_training_args,
    projector_state_dict,
    set_trainable,
)

IMAGE = 63


def main(out_dir: str, config_name: str) -> None:
    torch.manual_seed(0)
    text = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=64, max_position_embeddings=128)
    vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                              image_size=32, patch_size=8)
    model = build_llava(text, vision, image_token_id=IMAGE, attn_implementation="eager")
    set_trainable(model, projector=True, language_model=True)
    generator = torch.Generator().manual_seed(1)
    dataset = []
    for _ in range(8):
        caption = torch.randint(3, 60, (6,), generator=generator)
        ids = torch.cat([torch.tensor([1]), torch.full((16,), IMAGE), caption, torch.tensor([2])])
        labels = ids.masked_fill(torch.arange(len(ids)) < 17, -100)
        dataset.append({"input_ids": ids, "labels": labels, "pixel_values": torch.randn(3, 32, 32, generator=generator)})
    args = make_training_args(
        out_dir, learning_rate=3e-3, per_device_train_batch_size=2, max_steps=4, save_steps=4,
        warmup_steps=0, lr_scheduler_type="constant", use_cpu=True, seed=0, disable_tqdm=True,
        deepspeed=deepspeed_config(config_name, torch_adam=True), ddp_backend="gloo",
    )
    trainer = build_trainer(model, args, dataset, MultimodalCollator(pad_token_id=0),
                            save_projector_checkpoints=True)
    trainer.train()
    state = projector_state_dict(trainer.model_wrapped)  # every rank takes part in the ZeRO-3 gather
    checksum = torch.tensor([float(sum(t.double().sum() for t in state.values()))])
    gathered = [torch.zeros(1, dtype=torch.float64) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, checksum.double())
    if dist.get_rank() == 0:
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        result = {"world_size": dist.get_world_size(), "losses": losses,
                  "projector_checksums": [g.item() for g in gathered],
                  "projector_numel": sum(t.numel() for t in state.values()),
                  "zero_stage": trainer.accelerator.state.deepspeed_plugin.zero_stage}
        Path(out_dir, "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "zero2")
