"""``make reproduce-tokenpacker``: the paper's projector comparison (Tab. 3, spec §7.3) in miniature on the toy world.

Every projector is trained with the same recipe, steps, seeds and data: stage 1 (projector only, ``plain``
captions of ``train/llava_pretrain.json``) then stage 2 (LLM + projector, ``vicuna_v1`` on ``train/llava.json``),
then evaluated with greedy decoding on a fixed, seeded subset of the toy val VQA questions (the same questions
for every method). The toy ViT gives a 12x12 patch grid at 96 px, so "all tokens" is 144 (MLP) and 1/4 is
36 (s=2 for every baseline); TokenPacker also runs at s=3 (16 tokens, 1/9) and s=4 (9 tokens, 1/16).

Recorded per method: toy VQA accuracy per question type (exact match after VQA normalisation; existence =
the three POPE splits pooled), their macro mean ``accuracy``, ``visual_tokens``, and generation tokens/s
(the paper's TPS: generated tokens over ``generate()`` wall time at batch size 1, measured for all methods one
after the other at the end, in the same process, on the same questions). Everything is fixed by seeds and step
counts; each training run uses one torch thread, so the numbers do not depend on how many runs go in parallel.

Writes ``tokenpacker/results/toy.json`` ({"methods": {NAME: {METRIC: value}}, "seeds", "steps", "wall_time_s",
...}) and regenerates the table in ``tokenpacker/README.md`` between the ``toy-table`` markers.

    make reproduce-tokenpacker                      # the full run (9 methods), about 25 min on 2 quiet cores
    python -m tokenpacker.reproduce --quick         # the demo-sized run, results not written

Timings assume cached towers (``make toyclip`` for the toy CLIP; the toy LM trains in about 3 minutes on first
use). The 9 jobs (one method, one seed: stage 1 + stage 2 + evaluation, about 4.5 minutes each on one core) run
on ``workers`` processes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

__all__ = ["METHODS", "ReproduceConfig", "main", "render_table", "run", "update_readme"]

TABLE_START, TABLE_END = "<!-- toy-table:start -->", "<!-- toy-table:end -->"
TOY_VIT_BLOCKS = 6
"""Depth of the toy ViT the layer taps below are written for."""
QUERY_LAYER = (5,)
MULTI_LEVEL = (3, 4, 5)
METHODS: dict[str, dict] = {
    "mlp": {"name": "mlp", "feature_layers": QUERY_LAYER},
    "avgpool": {"name": "avgpool", "feature_layers": QUERY_LAYER, "scale_factor": 2},
    "resampler": {"name": "resampler", "feature_layers": QUERY_LAYER, "scale_factor": 2},
    "pixel_shuffle": {"name": "pixel_shuffle", "feature_layers": QUERY_LAYER, "scale_factor": 2},
    "c_abstractor": {"name": "c_abstractor", "feature_layers": QUERY_LAYER, "scale_factor": 2},
    "ldp_v2": {"name": "ldp_v2", "feature_layers": QUERY_LAYER, "scale_factor": 2},
    "tokenpacker": {"name": "tokenpacker", "feature_layers": MULTI_LEVEL, "scale_factor": 2},
    "tokenpacker_s3": {"name": "tokenpacker", "feature_layers": MULTI_LEVEL, "scale_factor": 3},
    "tokenpacker_s4": {"name": "tokenpacker", "feature_layers": MULTI_LEVEL, "scale_factor": 4},
}
"""Method name -> projector settings. Baselines read the penultimate block only, TokenPacker blocks 3, 4, 5 of
the 6-block toy ViT (the official 12/16/22/23 of 24 scaled down)."""
TYPES = ("count", "color", "shape", "position", "size", "existence")


@dataclass
class ReproduceConfig:
    """The miniature reproduction (defaults: the recorded run)."""

    methods: tuple[str, ...] = tuple(METHODS)
    """Methods to run (keys of METHODS)."""
    seeds: tuple[int, ...] = (0,)
    """Seeds; each method runs once per seed and the table shows the mean."""
    stage1_steps: int = 200
    """Stage-1 optimizer steps (batch ``stage1_batch``)."""
    stage2_steps: int = 600
    """Stage-2 optimizer steps (batch ``stage2_batch``)."""
    stage1_batch: int = 32
    """Stage-1 batch size (official 256 global)."""
    stage2_batch: int = 16
    """Stage-2 batch size (official 128 global)."""
    stage1_lr: float = 1e-3
    """Stage-1 peak lr (official 1e-3)."""
    stage2_lr: float = 1e-3
    """Stage-2 peak lr (official 2e-5 for Vicuna; the toy LM is 8,000x smaller, was pretrained at 1e-3 and
    trains 600 steps)."""
    questions_per_category: int = 60
    """Evaluation subset: this many val questions per category (8 categories), seeded, same for all methods."""
    tps_questions: int = 24
    """Questions of the batch-size-1 TPS measurement."""
    workers: int = 2
    """Training processes in parallel (each with one torch thread)."""
    run_dir: str = "runs/tokenpacker/reproduce"
    """Where the per-method run folders go."""
    results: str = "tokenpacker/results/toy.json"
    """The results file ("" = do not write)."""
    readme: str = "tokenpacker/README.md"
    """README whose toy table is regenerated ("" = leave it)."""
    overrides: tuple[str, ...] = ()
    """Extra dotted TokenPackerConfig overrides applied to every method."""


def _method_overrides(rc: ReproduceConfig, method: str, seed: int) -> list[str]:
    spec = METHODS[method]
    layers = "[" + ",".join(str(x) for x in spec["feature_layers"]) + "]"
    out = [
        f"output_dir={Path(rc.run_dir) / f'{method}_seed{seed}'}", f"seed={seed}", "threads=1",
        f"projector.name={spec['name']}", f"projector.feature_layers={layers}",
        f"stage1.max_steps={rc.stage1_steps}", f"stage1.per_device_batch_size={rc.stage1_batch}",
        f"stage1.learning_rate={rc.stage1_lr}", "stage1.save_steps=0",
        f"stage2.max_steps={rc.stage2_steps}", f"stage2.per_device_batch_size={rc.stage2_batch}",
        f"stage2.learning_rate={rc.stage2_lr}", "stage2.save_steps=0",
        f"eval.questions_per_category={rc.questions_per_category}", "eval.batch_size=32",
        f"eval.model_id={method}",
    ]
    if "scale_factor" in spec:
        out.append(f"projector.scale_factor={spec['scale_factor']}")
    return [*out, *rc.overrides]


def _train_and_score(overrides: Sequence[str]) -> dict:
    """One method, one seed (runs in a worker process): fit both stages, evaluate, return the summary."""
    import torch

    from tokenpacker.config import TokenPackerConfig
    from tokenpacker.engine import evaluate, fit
    from vlzoo.config import load_config

    os.environ.setdefault("VLZOO_NO_PROGRESS", "1")
    torch.set_num_threads(1)
    cfg = load_config(TokenPackerConfig, None, list(overrides))
    began = time.perf_counter()
    summary = fit(cfg)
    trained = time.perf_counter() - began
    result = evaluate(cfg)
    return {
        "model_dir": summary["model_dir"],
        "scores": result["scores"],
        "stage1_final_loss": sum(summary["stage1"]["losses"][-10:]) / len(summary["stage1"]["losses"][-10:]),
        "stage2_final_loss": sum(summary["stage2"]["losses"][-10:]) / len(summary["stage2"]["losses"][-10:]),
        "train_seconds": trained,
        "eval_seconds": time.perf_counter() - began - trained,
    }


def _measure_tps(model_dir: str, questions: Sequence[dict], image_folder: Path) -> dict:
    from tokenpacker.engine import generate_answers, load_trained

    model, tokenizer = load_trained(model_dir)
    generate_answers(model, tokenizer, questions[:2], image_folder, batch_size=1, max_new_tokens=16)  # warm-up
    result = generate_answers(model, tokenizer, questions, image_folder, batch_size=1, max_new_tokens=16)
    return {"tokens_per_second": result["tokens_per_second"], "generated_tokens": result["generated_tokens"],
            "generate_seconds": result["generate_seconds"], "visual_tokens": model.num_image_tokens()}


def _prepare_caches(overrides: Sequence[str] = ()) -> dict:
    """Build (or reuse) the toy world, toy LM and toy CLIP in the main process before the workers start."""
    from tokenpacker.config import TokenPackerConfig
    from tokenpacker.engine import resolve_towers
    from vlzoo.config import load_config
    from vlzoo.toyworld import default_world

    world = default_world()
    lm, _, vision = resolve_towers(load_config(TokenPackerConfig, None, list(overrides)).model)
    config = json.loads((Path(vision) / "config.json").read_text())
    depth = config.get("vision_config", config)["num_hidden_layers"]
    if depth != TOY_VIT_BLOCKS:
        raise ValueError(
            f"{vision}: the toy ViT has {depth} blocks, but METHODS tap hidden_states {MULTI_LEVEL} / "
            f"{QUERY_LAYER} of a {TOY_VIT_BLOCKS}-block ViT (penultimate = {TOY_VIT_BLOCKS - 1}); update METHODS"
        )
    return {"world": str(world), "language_model": str(lm), "vision_tower": str(vision)}


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run(rc: ReproduceConfig) -> dict:
    """Train and evaluate every (method, seed), measure TPS, return the results dict (toy.json layout)."""
    import torch

    from tokenpacker.data import subset_per_category
    from vlzoo.data import read_llava_questions

    unknown = sorted(set(rc.methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {list(METHODS)}")
    began = time.perf_counter()
    load_before = _load_average()
    towers = _prepare_caches(rc.overrides)
    jobs = [(method, seed) for seed in rc.seeds for method in rc.methods]
    with ProcessPoolExecutor(max_workers=max(1, rc.workers), mp_context=get_context("spawn")) as pool:
        futures = {job: pool.submit(_train_and_score, _method_overrides(rc, *job)) for job in jobs}
        outcomes = {job: future.result() for job, future in futures.items()}

    val = Path(towers["world"]) / "val"
    questions = subset_per_category(read_llava_questions(val / "vqa_questions.jsonl"), rc.questions_per_category,
                                    rc.seeds[0])
    tps_questions = questions[:: max(1, len(questions) // rc.tps_questions)][: rc.tps_questions]
    torch.set_num_threads(1)
    methods: dict[str, dict] = {}
    for method in rc.methods:
        runs = [outcomes[(method, seed)] for seed in rc.seeds]
        tps = _measure_tps(runs[0]["model_dir"], tps_questions, val / "images")
        per_type = {t: sum(r["scores"]["per_type"].get(t, float("nan")) for r in runs) / len(runs) for t in TYPES}
        accuracies = [r["scores"]["accuracy"] for r in runs]
        methods[method] = {
            "accuracy": sum(accuracies) / len(accuracies),
            "accuracy_per_seed": accuracies,
            "visual_tokens": tps["visual_tokens"],
            "per_type": per_type,
            "pope": runs[0]["scores"]["pope"],
            "tokens_per_second": tps["tokens_per_second"],
            "stage1_final_loss": runs[0]["stage1_final_loss"],
            "stage2_final_loss": runs[0]["stage2_final_loss"],
            "train_seconds": sum(r["train_seconds"] for r in runs) / len(runs),
        }
    return {
        "methods": methods,
        "seeds": list(rc.seeds),
        "steps": rc.stage1_steps + rc.stage2_steps,
        "stage_steps": {"stage1": rc.stage1_steps, "stage2": rc.stage2_steps},
        "batch_sizes": {"stage1": rc.stage1_batch, "stage2": rc.stage2_batch},
        "learning_rates": {"stage1": rc.stage1_lr, "stage2": rc.stage2_lr},
        "eval_questions": len(questions),
        "tps_questions": len(tps_questions),
        "towers": {k: Path(v).name for k, v in towers.items()},
        "workers": rc.workers,
        "load_average_before": load_before,
        "load_average_after": _load_average(),
        "wall_time_s": round(time.perf_counter() - began, 1),
    }


def render_table(results: dict) -> str:
    """The README table (markdown) of a results dict; columns in percent except tokens and TPS."""
    header = "| Projector | #Tok | " + " | ".join(t for t in TYPES) + " | Avg | TPS |"
    lines = [header, "|" + "---|" * (len(TYPES) + 4)]
    for name, m in results["methods"].items():
        cells = " | ".join(f"{m['per_type'][t]:.1f}" for t in TYPES)
        lines.append(f"| {name} | {m['visual_tokens']} | {cells} | {m['accuracy']:.1f} | {m['tokens_per_second']:.1f} |")
    seeds = ", ".join(str(s) for s in results["seeds"])
    lines.append("")
    lines.append(
        f"Seeds {seeds}; {results['stage_steps']['stage1']} + {results['stage_steps']['stage2']} steps "
        f"(stage 1 + stage 2); {results['eval_questions']} val questions; TPS at batch 1 on "
        f"{results['tps_questions']} questions; wall time {results['wall_time_s']:.0f} s "
        f"(load average {results['load_average_before']} before); vision tower {results['towers']['vision_tower']}."
    )
    return "\n".join(lines)


def update_readme(readme: str | os.PathLike, results: dict) -> None:
    """Replace the text between the toy-table markers of ``readme`` with :func:`render_table`."""
    path = Path(readme)
    text = path.read_text()
    if TABLE_START not in text or TABLE_END not in text:
        raise ValueError(f"{path}: no {TABLE_START} ... {TABLE_END} markers for the toy table")
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    path.write_text(f"{head}{TABLE_START}\n{render_table(results)}\n{TABLE_END}{tail}")


QUICK = dict(methods=("mlp", "avgpool", "tokenpacker"), stage1_steps=15, stage2_steps=30, questions_per_category=10,
             tps_questions=8, run_dir="runs/tokenpacker/demo", results="", readme="")
"""The demo-sized run (``--quick``, ``tokenpacker.demo``): 3 methods, short schedules, nothing written."""


def main(argv: Sequence[str] | None = None) -> int:
    from vlzoo.config import apply_overrides

    parser = argparse.ArgumentParser(prog="python -m tokenpacker.reproduce", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the demo-sized run (writes no results)")
    parser.add_argument("overrides", nargs="*", help="ReproduceConfig overrides, e.g. workers=1 seeds=[0,1]")
    args = parser.parse_args(argv)
    rc = ReproduceConfig(**QUICK) if args.quick else ReproduceConfig()
    rc = apply_overrides(rc, args.overrides)
    results = run(rc)
    print(render_table(results))
    if rc.results:
        Path(rc.results).parent.mkdir(parents=True, exist_ok=True)
        Path(rc.results).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {rc.results}")
    if rc.readme:
        update_readme(rc.readme, results)
        print(f"updated the table in {rc.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
