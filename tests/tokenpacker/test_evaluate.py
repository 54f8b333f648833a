"""tokenpacker-eval: official answer files from greedy generation, scores, TPS; batching does not change answers."""

import json

import torch

from tokenpacker import evaluate
from tokenpacker.config import TokenPackerConfig
from tokenpacker.engine import build_model, generate_answers, load_tokenizer
from vlzoo.config import load_config
from vlzoo.data import read_jsonl, read_llava_questions

ANSWER_KEYS = {"question_id", "prompt", "text", "answer_id", "model_id", "metadata"}


def _saved(tiny_overrides, tmp_path):
    cfg = load_config(TokenPackerConfig, None, tiny_overrides)
    tokenizer = load_tokenizer(cfg.model.language_model)
    model = build_model(cfg, tokenizer, cfg.model.language_model, cfg.model.vision_tower)
    model.save_pretrained(tmp_path / "run" / "stage2")
    tokenizer.save_pretrained(tmp_path / "run" / "stage2")
    return model.eval(), tokenizer


def test_eval_writes_official_answer_lines_and_scores(tiny_overrides, tmp_path, capsys):
    _saved(tiny_overrides, tmp_path)
    assert evaluate.main([*tiny_overrides, "eval.questions_per_category=2", "eval.max_new_tokens=3",
                          "eval.model_id=tiny"]) == 0
    out = tmp_path / "run" / "eval" / "toy"
    answers = read_jsonl(out / "answers.jsonl")
    questions = {q["question_id"]: q for q in read_llava_questions(tiny_overrides_value(tiny_overrides, "eval.question_file"))}
    assert answers and all(set(a) == ANSWER_KEYS for a in answers)
    assert all(a["model_id"] == "tiny" and a["prompt"] == questions[a["question_id"]]["text"] for a in answers)
    assert len({a["answer_id"] for a in answers}) == len(answers)
    categories = {questions[a["question_id"]]["category"] for a in answers}
    assert all(sum(questions[a["question_id"]]["category"] == c for a in answers) <= 2 for c in categories)
    summary = json.loads((out / "scores.json").read_text())
    assert summary["questions"] == len(answers) and summary["tokens_per_second"] > 0
    assert 0 <= summary["scores"]["accuracy"] <= 100 and "existence" in summary["scores"]["per_type"]
    assert json.loads(capsys.readouterr().out)["questions"] == len(answers)


def tiny_overrides_value(overrides, key):
    return next(o.split("=", 1)[1] for o in overrides if o.startswith(key + "="))


def test_batched_generation_gives_the_answers_of_batch_size_one(tiny_overrides, tmp_path):
    model, tokenizer = _saved(tiny_overrides, tmp_path)
    questions = read_llava_questions(tiny_overrides_value(tiny_overrides, "eval.question_file"))[:5]
    folder = tiny_overrides_value(tiny_overrides, "eval.image_folder")
    torch.manual_seed(0)
    one = generate_answers(model, tokenizer, questions, folder, batch_size=1, max_new_tokens=4)
    many = generate_answers(model, tokenizer, questions, folder, batch_size=5, max_new_tokens=4)
    assert [a["text"] for a in one["answers"]] == [a["text"] for a in many["answers"]]
    assert one["generated_tokens"] == many["generated_tokens"] > 0
    assert [a["question_id"] for a in one["answers"]] == [q["question_id"] for q in questions]
