"""Benchmark scorers and official-format conversions on hand-made answer and ground-truth files."""

import base64
import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from tokenpacker import scoring


def _answer(qid, text, prompt=""):
    return {"question_id": qid, "prompt": prompt, "text": text, "answer_id": "x", "model_id": "m", "metadata": {}}


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_toy_scorer_per_type_and_pope(tmp_path):
    gold = _jsonl(tmp_path / "gold.jsonl", [
        {"question_id": 1, "answer": "2", "category": "count"},
        {"question_id": 2, "answer": "red", "category": "color"},
        {"question_id": 3, "answer": "yes", "category": "existence_random"},
        {"question_id": 4, "answer": "no", "category": "existence_random"},
        {"question_id": 5, "answer": "no", "category": "existence_adversarial"},
        {"question_id": 6, "answer": "top left", "category": "position"},
    ])
    answers = [_answer(1, "Two."), _answer(2, "blue"), _answer(3, "Yes, there is."), _answer(4, "No"),
               _answer(5, "yes"), _answer(6, "the top left")]
    result = scoring.score_toy(answers, gold)
    assert result["per_type"] == {"count": 100.0, "color": 0.0, "position": 100.0, "existence": 200 / 3}
    assert result["accuracy"] == pytest.approx((100 + 0 + 100 + 200 / 3) / 4)
    assert result["pope"]["random"]["accuracy"] == 100.0 and result["pope"]["adversarial"]["yes_ratio"] == 100.0
    assert result["questions"] == 6
    with pytest.raises(ValueError, match="no gold answer for question_id 9"):
        scoring.score_toy([_answer(9, "x")], gold)


def test_vqav2_submission_and_soft_accuracy(tmp_path):
    questions = [{"question_id": 1}, {"question_id": 2}, {"question_id": 3}]
    answers = [_answer(1, "Two Dogs?"), _answer(2, "yes")]
    assert scoring.vqav2_submission(answers, questions) == [
        {"question_id": 1, "answer": "2 dogs"}, {"question_id": 2, "answer": "yes"}, {"question_id": 3, "answer": ""},
    ]
    annotations = tmp_path / "ann.json"
    annotations.write_text(json.dumps({"annotations": [
        {"question_id": 1, "answers": [{"answer": "2 dogs"}] * 2 + [{"answer": "dogs"}] * 8},
        {"question_id": 2, "answers": [{"answer": "yes"}] * 10},
    ]}))
    result = scoring.score_vqav2(answers, annotations)
    assert result["accuracy"] == pytest.approx(100 * (0.6 + 1.0) / 2)  # 2 of 10 humans -> 0.6


def test_gqa_predictions_and_accuracy(tmp_path):
    answers = [_answer("201", "Yes."), _answer("202", "Left")]
    assert scoring.gqa_predictions(answers) == [{"questionId": "201", "prediction": "yes"},
                                                {"questionId": "202", "prediction": "left"}]
    gold = tmp_path / "testdev_balanced_questions.json"
    gold.write_text(json.dumps({"201": {"answer": "yes"}, "202": {"answer": "right"}}))
    assert scoring.score_gqa(answers, gold)["accuracy"] == 50.0


def test_textvqa_prompt_matching_and_m4c_accuracy(tmp_path):
    prompt = "what brand is it?\nReference OCR token: Nokia, phone\nAnswer the question using a single word or phrase."
    assert scoring.textvqa_question(prompt) == "what brand is it?"
    assert scoring.textvqa_question("What is it?\nAnswer briefly.") == "what is it?"
    with pytest.raises(ValueError, match="cannot find the question"):
        scoring.textvqa_question("one line")
    annotations = tmp_path / "TextVQA_0.5.1_val.json"
    annotations.write_text(json.dumps({"data": [
        {"image_id": "img1", "question": "What brand is it?", "answers": ["nokia"] * 10},
    ]}))
    assert scoring.score_textvqa([_answer("img1", "Nokia.", prompt)], annotations)["accuracy"] == 100.0


def test_pope_pairs_labels_in_file_order_per_split(tmp_path):
    folder = tmp_path / "coco"
    folder.mkdir()
    _jsonl(folder / "coco_pope_random.json", [{"question_id": 1, "label": "yes"}, {"question_id": 2, "label": "no"}])
    _jsonl(folder / "coco_pope_popular.json", [{"question_id": 1, "label": "no"}])
    questions = [{"question_id": 10, "category": "random"}, {"question_id": 11, "category": "random"},
                 {"question_id": 12, "category": "popular"}]
    answers = [_answer(10, "Yes, there is a dog."), _answer(11, "There is no dog."), _answer(12, "Yes")]
    result = scoring.score_pope(answers, questions, folder)
    assert result["random"]["accuracy"] == 100.0 and result["random"]["f1"] == 100.0
    assert result["popular"]["accuracy"] == 0.0 and result["popular"]["yes_ratio"] == 100.0
    assert result["mean_accuracy"] == 50.0
    with pytest.raises(ValueError, match="2 labels but 1 answers"):
        scoring.score_pope(answers[:1] + answers[2:], questions, folder)


def test_ocrbench_questions_and_score(tmp_path):
    bench = tmp_path / "OCRBench.json"
    bench.write_text(json.dumps([
        {"image_path": "a.jpg", "question": "what is written?", "answers": ["STOP"], "type": "Regular Text Recognition",
         "dataset_name": "IIIT5K"},
        {"image_path": "b.jpg", "question": "formula?", "answers": "x ^ 2", "type": "Handwritten Mathematical "
         "Expression Recognition", "dataset_name": "HME100k"},
    ]))
    questions = scoring.ocrbench_questions(bench)
    assert questions[0]["text"] == "what is written?\nAnswer the question using a single word or phrase."
    result = scoring.score_ocrbench([_answer(0, "it says stop sign"), _answer(1, "X^2")], bench)
    assert result["score"] == 1 and result["per_type"]["Regular Text Recognition"] == 1  # HME100k is case-sensitive


def test_mme_conversion_and_scores(tmp_path):
    root = tmp_path / "MME_Benchmark_release_version"
    (root / "artwork" / "images").mkdir(parents=True)
    (root / "artwork" / "questions_answers_YN").mkdir()
    (root / "artwork" / "questions_answers_YN" / "10002.txt").write_text(
        "Is this a painting? Please answer yes or no.\tYes\nIs this a photo? Please answer yes or no.\tNo\n")
    (root / "count").mkdir()
    (root / "count" / "0001.txt").write_text("Are there two dogs? Please answer yes or no.\tYes\n"
                                             "Are there three dogs?  Please answer yes or no.\tNo\n")
    truth = scoring.mme_ground_truth(root)
    single = "\nAnswer the question using a single word or phrase."
    answers = [
        _answer("artwork/10002.jpg", "Yes", "Is this a painting?" + single),
        _answer("artwork/10002.jpg", "No", "Is this a photo?" + single),
        _answer("count/0001.png", "Yes", "Are there two dogs?" + single),
        _answer("count/0001.png", "yes, three", "Are there three dogs?" + single),  # MME's double-space variant
    ]
    rows = scoring.mme_result_lines(answers, truth)
    assert rows["count"][1] == ("0001.txt", "Are there three dogs?  Please answer yes or no.", "No", "yes, three")
    scores = scoring.score_mme(rows)
    assert scores["tasks"] == {"artwork": 200.0, "count": 50.0}  # count: acc 0.5, acc+ 0
    assert scores["perception"] == 250.0 and scores["cognition"] == 0.0
    written = scoring.write_mme_results(rows, tmp_path / "results")
    assert (written / "artwork.txt").read_text().splitlines()[0].split("\t") == [
        "10002.txt", "Is this a painting? Please answer yes or no.", "Yes", "Yes"]


def _mmbench_tsv(path, rows):
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(buffer, format="PNG")
    image = base64.b64encode(buffer.getvalue()).decode()
    fields = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, delimiter="\t")
        writer.writeheader()
        for row in rows:
            writer.writerow({**{k: "" for k in fields}, **row, "image": image})
    return path


def test_mmbench_prompts_letters_and_circular_accuracy(tmp_path):
    tsv = _mmbench_tsv(tmp_path / "mmbench_dev.tsv", [
        {"index": 0, "question": "What animal?", "hint": "A farm.", "A": "cat", "B": "cow", "answer": "B"},
        {"index": 1000000, "question": "What animal?", "A": "cow", "B": "cat", "answer": "A"},
        {"index": 1, "question": "Colour?", "A": "red", "B": "blue", "C": "green", "answer": "C"},
    ])
    questions = scoring.mmbench_questions(tsv)
    assert questions[0]["text"] == ("A farm.\nWhat animal?\nA. cat\nB. cow\n"
                                    "Answer with the option's letter from the given choices directly.")
    assert questions[1]["options"] == {"A": "cow", "B": "cat"} and "image_base64" in questions[0]
    answers = [_answer(0, "B"), _answer(1000000, "B. cat"), _answer(1, "C")]
    result = scoring.score_mmbench(answers, tsv)
    assert result["accuracy"] == pytest.approx(200 / 3)
    assert result["circular_accuracy"] == 50.0  # index 0's circular twin 1000000 is wrong
    assert result["upload"][0]["prediction"] == "B" and "image" not in result["upload"][0]


def test_score_benchmark_writes_the_upload_files(tmp_path):
    questions = [{"question_id": 1}]
    answers = [_answer(1, "Yes.")]
    assert scoring.score_benchmark("gqa", answers, questions, None, tmp_path) == {}
    assert json.loads((tmp_path / "gqa_predictions.json").read_text()) == [{"questionId": 1, "prediction": "yes"}]
    scoring.score_benchmark("vqav2", answers, questions, None, tmp_path)
    assert json.loads((tmp_path / "vqav2_submission.json").read_text()) == [{"question_id": 1, "answer": "yes"}]
    with pytest.raises(ValueError, match="needs its ground truth"):
        scoring.score_benchmark("textvqa", answers, questions, None, tmp_path)
    with pytest.raises(ValueError, match="unknown benchmark"):
        scoring.score_benchmark("sqa", answers, questions, None, tmp_path)
