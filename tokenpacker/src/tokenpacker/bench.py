"""``tokenpacker-bench`` (``make bench-tokenpacker``): what fewer visual tokens buy, measured in one run.

Paper claim (arXiv 2407.02392 Tab. 3, Tab. A2): 144 instead of 576 visual tokens make the LLM several times
faster; the projector itself is cheap. Measured here, on random-initialised models of real shapes:

- **projector forward** at the real 7B sizes (ViT-L/14-336 features x (B, 576, 1024), x_multi (B, 576, 4096),
  LLM width 4096): LLaVA's MLP on all 576 tokens, TokenPacker s=2 with the official ``nn.MultiheadAttention``
  call pattern (``attention="official"``) and with our batched SDPA path (``attention="sdpa"``);
- **prefill** (LLM forward over the text + visual tokens, KV cache on, logits of the last position only) and
  **generation** (greedy decode with the KV cache) of a mid-size random LLaMA (default 8 layers, width 1024,
  Vicuna's head size and MLP ratio, 32000 vocabulary) for MLP-576 vs TokenPacker-144/64/36, with the
  projector output as visual tokens.

Printed ratios: prefill speed-up vs MLP-576 next to the ideal ``(T_text + 576) / (T_text + M)`` (the share of
the ideal reached; goal >= 85 %), decode tokens/s, the paper's TPS (generated tokens over the whole
``generate`` wall time), and projector time relative to the MLP and to the official TokenPacker call.
Timings are the best of ``--repeats`` runs after one warm-up, in one process, the compared calls taking turns
(one run each per round), so ratios are comparable even when the load of a shared machine changes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from tokenpacker.packer import TokenPacker
from tokenpacker.projectors import MLPProjector

__all__ = ["main", "run_benchmark"]


def _best_seconds(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best of ``repeats`` timed runs of each function after one warm-up (the run least disturbed by other load,
    as ``timeit``). The functions take turns, one run each per round, so a change of load on a shared machine
    slows all of them alike and the ratios between them stay fair."""
    for fn in fns.values():
        fn()  # warm-up (allocator, kernels)
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            began = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - began)
    return best


def _projectors(vision_dim: int, levels: int, llm_dim: int, grid: int, scales: Sequence[int], heads: int):
    torch.manual_seed(0)
    out = {f"mlp_{grid * grid}": MLPProjector(vision_dim, llm_dim, grid)}
    for s in scales:
        out[f"tokenpacker_{(grid // s) ** 2}"] = TokenPacker(vision_dim, levels, llm_dim, grid, s, heads)
    return {k: v.eval() for k, v in out.items()}


@torch.no_grad()
def run_benchmark(
    layers: int = 8,
    width: int = 1024,
    vocab: int = 32000,
    text_tokens: int = 64,
    new_tokens: int = 32,
    grid: int = 24,
    vision_dim: int = 1024,
    levels: int = 4,
    projector_llm_dim: int = 4096,
    scales: Sequence[int] = (2, 3, 4),
    heads: int = 8,
    batch: int = 1,
    repeats: int = 5,
) -> dict:
    """Run every measurement of the module docstring; returns a JSON-safe report (seconds, ratios)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    x = torch.randn(batch, grid * grid, vision_dim)
    x_multi = torch.randn(batch, grid * grid, levels * vision_dim)

    # 1. projector forward at the real sizes
    real = _projectors(vision_dim, levels, projector_llm_dim, grid, scales[:1], heads)
    mlp_name, packer_name = list(real)
    packer = real[packer_name]

    def packer_call(impl: str) -> Callable[[], object]:
        def call():
            packer.attention = impl
            return packer(x, x_multi)

        return call

    projector_s = _best_seconds(
        {
            mlp_name: lambda: real[mlp_name](x),
            **{f"{packer_name}_{impl}": packer_call(impl) for impl in ("official", "sdpa")},
        },
        repeats,
    )

    # 2. prefill and generation of a mid-size LLaMA on each projector's visual tokens
    head_dim = 128 if width >= 128 else width // 2
    llm = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=vocab, hidden_size=width, intermediate_size=int(width * 2.6875) // 8 * 8,
            num_hidden_layers=layers, num_attention_heads=width // head_dim, num_key_value_heads=width // head_dim,
            max_position_embeddings=4096, tie_word_embeddings=False,
        ),
    ).eval()
    text = llm.get_input_embeddings()(torch.randint(3, vocab, (batch, text_tokens)))
    split = text_tokens // 2  # visual tokens in the middle of the prompt, as after LLaVA's system prompt
    prompts = {}
    for name, projector in _projectors(vision_dim, levels, width, grid, scales, heads).items():
        visual = projector(x, x_multi) if isinstance(projector, TokenPacker) else projector(x)
        prompts[name] = torch.cat([text[:, :split], visual, text[:, split:]], dim=1)

    def prefill(e: torch.Tensor) -> Callable[[], object]:
        return lambda: llm(inputs_embeds=e, use_cache=True, logits_to_keep=1)

    def generate(e: torch.Tensor) -> Callable[[], object]:
        return lambda: llm.generate(inputs_embeds=e, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                    do_sample=False, use_cache=True, pad_token_id=0)

    prefill_s = _best_seconds({name: prefill(e) for name, e in prompts.items()}, repeats)
    generate_s = _best_seconds({name: generate(e) for name, e in prompts.items()}, repeats)
    rows = {}
    for name, e in prompts.items():
        decode = max(generate_s[name] - prefill_s[name], 1e-9)
        rows[name] = {
            "visual_tokens": int(e.shape[1] - text_tokens),
            "prefill_s": prefill_s[name],
            "generate_s": generate_s[name],
            "decode_tokens_per_s": batch * (new_tokens - 1) / decode,  # the first token comes from the prefill
            "tps": batch * new_tokens / generate_s[name],
        }
    base = rows[mlp_name]
    for row in rows.values():
        ideal = (text_tokens + base["visual_tokens"]) / (text_tokens + row["visual_tokens"])
        row["prefill_speedup"] = base["prefill_s"] / row["prefill_s"]
        row["ideal_speedup"] = ideal
        row["share_of_ideal"] = row["prefill_speedup"] / ideal
        row["tps_ratio"] = row["tps"] / base["tps"]
    return {
        "settings": {"layers": layers, "width": width, "vocab": vocab, "text_tokens": text_tokens,
                     "new_tokens": new_tokens, "grid": grid, "vision_dim": vision_dim, "levels": levels,
                     "projector_llm_dim": projector_llm_dim, "batch": batch, "repeats": repeats,
                     "threads": torch.get_num_threads()},
        "projector_s": projector_s,
        "projector_ratios": {
            "tokenpacker_sdpa_vs_official": projector_s[f"{packer_name}_sdpa"] / projector_s[f"{packer_name}_official"],
            "tokenpacker_official_vs_mlp": projector_s[f"{packer_name}_official"] / projector_s[mlp_name],
            "tokenpacker_sdpa_vs_mlp": projector_s[f"{packer_name}_sdpa"] / projector_s[mlp_name],
        },
        "llm": rows,
    }


def format_report(report: dict) -> str:
    """The report as the markdown tables pasted into the README."""
    s = report["settings"]
    lines = [
        f"LLM: random LLaMA, {s['layers']} layers, width {s['width']}; {s['text_tokens']} text tokens; "
        f"{s['new_tokens']} new tokens; batch {s['batch']}; {s['threads']} torch threads; best of {s['repeats']}",
        "",
        "| projector | visual tokens | prefill (ms) | prefill speed-up | ideal | share of ideal | decode tok/s "
        "| TPS | TPS ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in report["llm"].items():
        lines.append(
            f"| {name} | {r['visual_tokens']} | {1000 * r['prefill_s']:.1f} | {r['prefill_speedup']:.2f}x | "
            f"{r['ideal_speedup']:.2f}x | {100 * r['share_of_ideal']:.0f} % | {r['decode_tokens_per_s']:.1f} | "
            f"{r['tps']:.1f} | {r['tps_ratio']:.2f}x |"
        )
    lines += ["", f"Projector forward at the real 7B sizes ({s['grid'] ** 2} patches, LLM width "
              f"{s['projector_llm_dim']}):", "", "| projector | ms |", "|---|---|"]
    lines += [f"| {name} | {1000 * sec:.1f} |" for name, sec in report["projector_s"].items()]
    ratios = report["projector_ratios"]
    lines += [
        "",
        f"TokenPacker (sdpa) / official call: {ratios['tokenpacker_sdpa_vs_official']:.2f}x; "
        f"official TokenPacker / MLP: {ratios['tokenpacker_official_vs_mlp']:.2f}x; "
        f"TokenPacker (sdpa) / MLP: {ratios['tokenpacker_sdpa_vs_mlp']:.2f}x",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tokenpacker-bench", description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=8, help="LLM decoder layers (default %(default)s)")
    parser.add_argument("--width", type=int, default=1024, help="LLM width (default %(default)s)")
    parser.add_argument("--vocab", type=int, default=32000, help="LLM vocabulary (default %(default)s)")
    parser.add_argument("--text-tokens", type=int, default=64, help="text tokens in the prompt (default %(default)s)")
    parser.add_argument("--new-tokens", type=int, default=32, help="generated tokens (default %(default)s)")
    parser.add_argument("--grid", type=int, default=24, help="ViT patches per side (default %(default)s: 336/14)")
    parser.add_argument("--vision-dim", type=int, default=1024, help="ViT width (default %(default)s)")
    parser.add_argument("--projector-llm-dim", type=int, default=4096,
                        help="LLM width of the projector-forward measurement (default %(default)s: Vicuna-7B)")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4],
                        help="TokenPacker scale factors (default %(default)s: 144/64/36 tokens)")
    parser.add_argument("--heads", type=int, default=8, help="TokenPacker attention heads (default %(default)s)")
    parser.add_argument("--batch", type=int, default=1, help="images per forward (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (default %(default)s)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", default=None, help="also write the report to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    report = run_benchmark(
        layers=args.layers, width=args.width, vocab=args.vocab, text_tokens=args.text_tokens,
        new_tokens=args.new_tokens, grid=args.grid, vision_dim=args.vision_dim,
        projector_llm_dim=args.projector_llm_dim, scales=args.scales, heads=args.heads, batch=args.batch, repeats=args.repeats,
    )
    print(format_report(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
