"""``tokenpacker-eval``: generate answers for a benchmark's questions, write official files, score them.

    tokenpacker-eval                                        # toy VQA on <output_dir>/stage2 of the toy run
    tokenpacker-eval eval.model_dir=runs/x/stage2 eval.benchmark=pope \\
        eval.question_file=playground/eval/pope/llava_pope_test.jsonl eval.image_folder=coco/val2014 \\
        eval.gold=playground/eval/pope/coco eval.batch_size=1 eval.max_new_tokens=128

Writes ``<output_dir>/eval/<benchmark>/answers.jsonl`` (``question_id, prompt, text, answer_id, model_id,
metadata``), the benchmark's upload/result files and ``scores.json``; prints the scores.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from tokenpacker.cli import config_parser, parse_config
from tokenpacker.engine import evaluate

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = config_parser("tokenpacker-eval", "Evaluate a trained TokenPacker model on a benchmark.")
    parser.add_argument("--out", default=None, help="output folder (default <output_dir>/eval/<benchmark>)")
    args = parser.parse_args(argv)
    cfg = parse_config(args)
    summary = evaluate(cfg, args.out)
    print(json.dumps({k: summary[k] for k in ("benchmark", "questions", "scores", "tokens_per_second", "answers")},
                     indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
