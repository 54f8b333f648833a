"""Typed configs of a TokenPacker run: model, projector, the two training stages, evaluation.

The dataclass defaults are the **toy run** (toy CLIP ViT + toy LLaMA on the toy world, both stages, minutes on
a CPU), so ``tokenpacker-train`` with no arguments works anywhere. Paper-scale YAMLs in
``tokenpacker/configs/`` hold only the changes (local paths, ViT-L/14-336 taps, Vicuna, batch sizes, ZeRO-2,
bf16). Resolution: defaults <- YAML (``_base_`` chains allowed) <- dotted overrides (``stage2.lora=true``);
see :mod:`vlzoo.config`. The official recipe (spec tokenpacker.md §5) for reference: stage 1 lr 1e-3, global
batch 256, ``plain``; stage 2 lr 2e-5, global batch 128, ``vicuna_v1``; cosine, warmup 0.03, wd 0, 1 epoch,
ZeRO-2, bf16, model_max_length 2048.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "EvalConfig",
    "ModelConfig",
    "ProjectorSection",
    "StageConfig",
    "TokenPackerConfig",
    "ToyLMSection",
]


@dataclass
class ToyLMSection:
    """Sizes of the toy LM used when ``model.language_model`` is empty (see ``vlzoo.toyworld.lm``)."""

    hidden_size: int = 128
    """LLaMA width of the toy LM."""
    intermediate_size: int = 344
    """SwiGLU inner width."""
    num_hidden_layers: int = 3
    """Decoder blocks."""
    num_attention_heads: int = 4
    """Attention heads."""
    steps: int = 300
    """Text-only pretraining steps (``batch_size`` blocks of ``block_size`` tokens each)."""
    batch_size: int = 32
    """Packed blocks per pretraining step."""
    block_size: int = 128
    """Tokens per packed block. Stage-2 sequences are longer (about 300 text + 36..144 visual tokens); 512-token
    blocks were measured not to help: the text-only answer loss past position 128 stayed 0.15-0.19 nat above
    the one before it either way, and the run took 234 s instead of 182 s."""
    vocab_size: int = 1024
    """BPE vocabulary size (before ``<image>`` is added)."""


@dataclass
class ModelConfig:
    """The two towers and how the MLLM is assembled."""

    language_model: str = ""
    """Local HF causal-LM folder (Vicuna-7B/13B v1.5 in the paper); "" = the cached toy LM (``toy_lm``)."""
    tokenizer: str = ""
    """Tokenizer folder; "" = the language model's folder."""
    vision_tower: str = ""
    """Local HF CLIP folder (``clip-vit-large-patch14-336``); "" = the toy CLIP ViT picked by
    ``toy_vision_tower``."""
    toy_vision_tower: Literal["pretrained", "random"] = "pretrained"
    """Toy ViT used when ``vision_tower`` is "": "pretrained" = the toy CLIP of
    ``vlzoo.toyworld.pretrain.toy_hf_clip_path()`` (trained on first use, then cached), "random" = a seeded
    random-initialised ``vlzoo-tiny-vit`` converted to HF (features carry colour but little shape)."""
    toy_lm: ToyLMSection = field(default_factory=ToyLMSection)
    """Toy-LM sizes (used only when ``language_model`` is "")."""
    image_aspect_ratio: Literal["square", "pad", "slice"] = "pad"
    """Image pipeline: "square" (resize + centre crop, stage 1 official), "pad" (expand to a square with the
    mean colour, stage 2 official), "slice" (TokenPacker-HD tiles + thumbnail, spec §3)."""
    patch_num: int = 9
    """TokenPacker-HD candidate list (9, 16 or 25 tiles at most); only for "slice"."""
    hd_newline: Literal["official", "byte"] = "official"
    """TokenPacker-HD row separator id: "official" looks up the string '\\n' as a token (<unk> with a LLaMA
    tokenizer, as the released checkpoints were trained), "byte" uses the real newline piece <0x0A>."""
    attn_implementation: str = "sdpa"
    """Attention kernel of both towers ("eager", "sdpa", "flash_attention_2")."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Parameter dtype of the whole model (bf16 on GPUs at paper scale)."""
    max_length: int = 2048
    """model_max_length: text ids are truncated to this length before the image is expanded (official)."""


@dataclass
class ProjectorSection:
    """Which projector, and its settings; the widths and grid come from the towers."""

    name: Literal[
        "tokenpacker", "mlp", "avgpool", "resampler", "pixel_shuffle", "c_abstractor", "ldp_v2", "mlp2x_gelu"
    ] = "tokenpacker"
    """Projector (``tokenpacker.projectors.PROJECTORS``; "mlp2x_gelu" = stock LLaVA's MLP module)."""
    scale_factor: int = 2
    """s: down-sampling per side (2, 3, 4 -> 1/4, 1/9, 1/16 of the patches)."""
    feature_layers: tuple[int, ...] = (3, 4, 5)
    """HF ``hidden_states`` indices concatenated as the projector input; the last one is the query layer x.
    Official (24-layer ViT-L): 12, 16, 22, 23 for TokenPacker and 23 (= -2) alone for the baselines. Toy ViT
    (6 blocks): 3, 4, 5 (5 = the penultimate block)."""
    num_heads: int = 8
    """Attention heads of TokenPacker (official 8 = 1024 / 128) and the resampler."""
    embed_dim: int | None = None
    """TokenPacker attention width; None = the vision width (official)."""
    attention: Literal["sdpa", "official"] = "sdpa"
    """TokenPacker windowed attention implementation (identical results)."""
    resampler_dim: int | None = None
    """Resampler width; None = the LLM width (Qwen-VL)."""
    abstractor_depth: int = 3
    """C-Abstractor ResNet blocks before and after pooling (Honeybee: 3)."""
    abstractor_dim: int | None = None
    """C-Abstractor width; None = the vision width."""


@dataclass
class StageConfig:
    """One training stage (HF Trainer arguments and its data)."""

    data_path: str = ""
    """LLaVA JSON; "" = the toy world's train/llava_pretrain.json (stage 1) or train/llava.json (stage 2)."""
    image_folder: str = ""
    """Folder image paths are relative to; "" = the toy world's train/images."""
    template: Literal["plain", "vicuna_v1", "v1"] = "plain"
    """Conversation template: "plain" (stage 1) or "vicuna_v1" (stage 2)."""
    learning_rate: float = 1e-3
    """Peak learning rate (official: 1e-3 stage 1, 2e-5 stage 2)."""
    per_device_batch_size: int = 32
    """Samples per device per micro-step (official: 32 stage 1, 16 stage 2, on 8 GPUs)."""
    gradient_accumulation_steps: int = 1
    """Micro-steps per optimizer step."""
    num_epochs: float = 1.0
    """Epochs over data_path (official: 1); ignored when max_steps > 0."""
    max_steps: int = -1
    """Optimizer steps; > 0 overrides num_epochs (the toy runs fix steps, not epochs)."""
    max_samples: int | None = None
    """Use only the first N records of data_path (None: all)."""
    group_by_length: bool = False
    """Order the records in seeded mega-batches of similar text length and read them sequentially, so batches
    carry little padding (HF ``group_by_length``; the official stage 2 groups by modality length instead)."""
    warmup_ratio: float = 0.03
    """Linear warmup share of the steps (official 0.03)."""
    lr_scheduler: Literal["cosine", "constant", "linear"] = "cosine"
    """Learning-rate schedule after the warmup (official: cosine)."""
    weight_decay: float = 0.0
    """AdamW weight decay (official 0)."""
    save_steps: int = 500
    """Checkpoint every N steps (HF Trainer folders checkpoint-N); <= 0: none (the final artefact is still
    written)."""
    deepspeed: str | None = None
    """DeepSpeed config: "zero2" (official), "zero3", "zero3_offload", a JSON path, or None."""
    deepspeed_torch_adam: bool = False
    """Use torch's AdamW inside DeepSpeed (needed on CPU, where fused/CPU Adam would JIT-compile)."""
    bf16: bool = False
    """bf16 mixed precision (official: on)."""
    gradient_checkpointing: bool = False
    """Activation checkpointing in the LM (official: on)."""
    lora: bool = False
    """Stage 2 only: LoRA on the LM linears (r/alpha/dropout below) instead of full fine-tuning."""
    lora_r: int = 64
    """LoRA rank (LLaVA: 64)."""
    lora_alpha: int = 16
    """LoRA alpha (LLaVA: 16)."""
    lora_dropout: float = 0.05
    """LoRA dropout (LLaVA: 0.05)."""
    projector_checkpoint: str = ""
    """Stage 2: stage-1 ``projector.safetensors`` to start from; "" = this run's stage-1 output."""
    dataloader_workers: int = 0
    """DataLoader worker processes (official 4)."""


def _toy_stage1() -> StageConfig:
    """Toy stage 1: the official template and lr; 200 steps of 32 captions (1.6 epochs of the world's 4,000)."""
    return StageConfig(template="plain", learning_rate=1e-3, per_device_batch_size=32, max_steps=200,
                       group_by_length=True, save_steps=0)


def _toy_stage2() -> StageConfig:
    """Toy stage 2: the official template; lr 1e-3 (not 2e-5: a 0.9M-parameter LM, pretrained at 1e-3, tuned
    for 600 steps of 16 conversations, 2.4 epochs of the world's 4,000; at 200 steps, 0.8 epoch, the toy MLLM
    still answered every question with one word per question type)."""
    return StageConfig(template="vicuna_v1", learning_rate=1e-3, per_device_batch_size=16, max_steps=600,
                       group_by_length=True, save_steps=0)


@dataclass
class EvalConfig:
    """Evaluation: which benchmark and questions, how to decode, where to write."""

    benchmark: Literal["toy", "vqav2", "gqa", "textvqa", "pope", "ocrbench", "mme", "mmbench"] = "toy"
    """Scorer and question format (``tokenpacker.scoring``)."""
    question_file: str = ""
    """Questions: LLaVA JSONL (OCRBench: OCRBench.json, MMBench: the TSV); "" = the toy val questions."""
    image_folder: str = ""
    """Folder of the question images; "" = the toy world's val/images."""
    gold: str = ""
    """Ground truth: toy/vqav2/gqa/textvqa/ocrbench files, the POPE annotation folder (coco_pope_*.json), the
    MME_Benchmark_release_version folder, the MMBench TSV; "" = the toy val answers (toy) or none (only the
    answer/upload files are written)."""
    questions_per_category: int | None = None
    """Evaluate a seeded subset of this many questions per category (None: all questions)."""
    batch_size: int = 16
    """Questions generated together (left padding, KV cache). Official: 1."""
    max_new_tokens: int = 16
    """Generation limit (official 128, MMBench 1024; toy answers are 1-3 tokens)."""
    template: Literal["vicuna_v1", "v1", "plain"] = "vicuna_v1"
    """Prompt template (official: vicuna_v1)."""
    model_id: str = "tokenpacker"
    """``model_id`` written into every answer line."""
    model_dir: str = ""
    """Trained model folder; "" = ``<output_dir>/stage2``."""


@dataclass
class TokenPackerConfig:
    """A whole run: model, projector, stages to run, evaluation. Defaults = the toy run."""

    output_dir: str = "runs/tokenpacker/toy"
    """Run folder: config.yaml, stage1/ (projector.safetensors), stage2/ (the HF model folder), eval/."""
    seed: int = 0
    """Seeds initialisation, data order and the evaluation subset."""
    stages: tuple[int, ...] = (1, 2)
    """Which stages this invocation runs (official scripts run one per call: [1] or [2])."""
    threads: int = 0
    """torch intra-op threads; 0 = leave torch's default."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The towers."""
    projector: ProjectorSection = field(default_factory=ProjectorSection)
    """The projector."""
    stage1: StageConfig = field(default_factory=_toy_stage1)
    """Stage 1: projector only, ``plain`` captions."""
    stage2: StageConfig = field(default_factory=_toy_stage2)
    """Stage 2: LLM + projector (or LoRA), ``vicuna_v1`` conversations."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation after training (``tokenpacker-eval`` reads the same section)."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.stages) - {1, 2})
        if unknown or not self.stages:
            raise ValueError(f"stages must be a non-empty subset of [1, 2], got {list(self.stages)}")
        if self.stage1.lora:
            raise ValueError("stage1.lora: stage 1 trains only the projector; LoRA belongs to stage 2")
