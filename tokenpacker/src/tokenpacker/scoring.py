"""Scorers and official-format converters for the benchmarks TokenPacker reports (spec tokenpacker.md §7.1).

Every function takes the answer lines ``tokenpacker-eval`` writes (the official ``model_vqa_loader`` layout:
``{question_id, prompt, text, answer_id, model_id, metadata}``) and the benchmark's own ground-truth file
format, and follows the official conversion scripts (LLaVA ``scripts/convert_*`` and ``llava/eval/eval_*``,
TokenPacker ``eval_ocr_bench.py``); the answer matching itself is ``vlzoo.metrics``.

=========  ======================================================  ===========================================
benchmark  ground truth read here                                  result
=========  ======================================================  ===========================================
toy        toy world ``vqa_answers.jsonl``                         exact match (VQA-normalised) per category,
                                                                   POPE metrics on the existence splits
vqav2      ``v2_mscoco_*_annotations.json`` (10 answers each)      soft accuracy; EvalAI upload list
gqa        ``testdev_balanced_questions.json``                     accuracy; ``[{questionId, prediction}]``
textvqa    ``TextVQA_0.5.1_val.json``                              M4C soft accuracy
pope       question JSONL with ``label`` + ``category``            acc / precision / recall / F1 / yes-ratio
                                                                   per split (``coco_pope_*``)
ocrbench   ``OCRBench.json``                                       hits per type, the score out of 1000
mme        ``MME_Benchmark_release_version/`` folder               per-task acc + acc+, perception/cognition;
                                                                   the ``eval_tool`` result files
mmbench    the ``mmbench_*.tsv``                                   letters, single-pass and circular accuracy;
                                                                   the upload table (TSV: no openpyxl here)
=========  ======================================================  ===========================================
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from vlzoo.data import read_jsonl
from vlzoo.metrics import (
    exact_match_accuracy,
    mmbench_letter,
    normalize_vqa_answer,
    ocrbench_match,
    pope_metrics,
    vqa_accuracy,
)

__all__ = [
    "BENCHMARKS",
    "MME_COGNITION",
    "MME_PERCEPTION",
    "TOY_TYPES",
    "evalai_answer",
    "gqa_predictions",
    "mmbench_questions",
    "mme_ground_truth",
    "mme_result_lines",
    "ocrbench_questions",
    "score_gqa",
    "score_mmbench",
    "score_mme",
    "score_ocrbench",
    "score_pope",
    "score_textvqa",
    "score_toy",
    "score_benchmark",
    "load_questions",
    "score_vqav2",
    "write_mme_results",
    "write_tsv",
    "textvqa_question",
    "vqav2_submission",
]

SINGLE_WORD = "Answer the question using a single word or phrase."
MMBENCH_SUFFIX = "Answer with the option's letter from the given choices directly."
TOY_TYPES = ("count", "color", "shape", "position", "size", "existence")
"""Question types of the toy table; "existence" pools the three POPE splits."""
MME_PERCEPTION = (
    "existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork", "OCR",
)
MME_COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")


def _by_id(answers: Sequence[Mapping], what: str) -> dict:
    table: dict = {}
    for index, answer in enumerate(answers):
        if "question_id" not in answer or "text" not in answer:
            raise ValueError(f"{what}: answer line {index} lacks 'question_id' or 'text': {dict(answer)}")
        table[answer["question_id"]] = answer
    return table


def _load_json(path: str | os.PathLike, what: str):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


# ------------------------------------------------------------------------------------------------ toy


def score_toy(answers: Sequence[Mapping], answer_key: str | os.PathLike) -> dict:
    """Toy VQA: exact match after VQA normalisation per question type, POPE metrics per existence split.

    Returns:
        ``{"accuracy": macro mean over TOY_TYPES present, "per_type": {type: %}, "pope": {split: metrics},
        "questions": n}``; ``existence`` pools ``existence_random/popular/adversarial`` (POPE-parsed
        yes/no against the label).
    """
    gold = {line["question_id"]: line for line in read_jsonl(answer_key)}
    grouped: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for qid, answer in _by_id(answers, "toy").items():
        if qid not in gold:
            raise ValueError(f"{answer_key}: no gold answer for question_id {qid!r}")
        category = gold[qid]["category"]
        preds, golds = grouped[category]
        preds.append(answer["text"])
        golds.append(str(gold[qid]["answer"]))
    per_type: dict[str, float] = {}
    pope: dict[str, dict] = {}
    existence_hits, existence_total = 0, 0
    for category, (preds, golds) in sorted(grouped.items()):
        if category.startswith("existence"):
            metrics = pope_metrics(preds, golds)
            pope[category.removeprefix("existence_") or "all"] = metrics
            existence_hits += metrics["tp"] + metrics["tn"]
            existence_total += len(preds)
        else:
            per_type[category] = exact_match_accuracy(preds, golds, normalize="vqa")
    if existence_total:
        per_type["existence"] = 100.0 * existence_hits / existence_total
    present = [t for t in TOY_TYPES if t in per_type]
    return {
        "accuracy": sum(per_type[t] for t in present) / len(present) if present else float("nan"),
        "per_type": per_type,
        "pope": pope,
        "questions": sum(len(p) for p, _ in grouped.values()),
    }


# ---------------------------------------------------------------------------------------------- VQAv2


def evalai_answer(text: str) -> str:
    """EvalAI's ``EvalAIAnswerProcessor`` (M4C): lower-case, drop ',' and '?', split "'s", then the VQA
    normaliser (LLaVA ``convert_vqav2_for_submission.py`` applies it to every answer)."""
    return normalize_vqa_answer(text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip())


def vqav2_submission(answers: Sequence[Mapping], questions: Sequence[Mapping]) -> list[dict]:
    """The EvalAI upload list ``[{question_id, answer}]`` for every question of the split ('' when missing)."""
    table = _by_id(answers, "vqav2")
    return [
        {"question_id": q["question_id"], "answer": evalai_answer(table[q["question_id"]]["text"])
         if q["question_id"] in table else ""}
        for q in questions
    ]


def score_vqav2(answers: Sequence[Mapping], annotation_file: str | os.PathLike) -> dict:
    """VQAv2 soft accuracy on a split with public annotations (val), with the official normalisation."""
    data = _load_json(annotation_file, "VQAv2 annotations")
    gold = {a["question_id"]: [x["answer"] for x in a["answers"]] for a in data["annotations"]}
    table = _by_id(answers, "vqav2")
    missing = [qid for qid in table if qid not in gold]
    if missing:
        raise ValueError(f"{annotation_file}: no annotation for question_id(s) {missing[:5]}")
    ids = list(table)
    return {"accuracy": vqa_accuracy([table[q]["text"] for q in ids], [gold[q] for q in ids]), "questions": len(ids)}


# ------------------------------------------------------------------------------------------------ GQA


def gqa_predictions(answers: Sequence[Mapping]) -> list[dict]:
    """LLaVA ``convert_gqa_for_eval.py``: ``[{questionId, prediction}]`` with trailing '.' stripped, lower-case."""
    return [{"questionId": a["question_id"], "prediction": a["text"].rstrip(".").lower()} for a in answers]


def score_gqa(answers: Sequence[Mapping], questions_file: str | os.PathLike) -> dict:
    """GQA accuracy as the official ``eval.py`` (exact match of the converted prediction)."""
    gold = _load_json(questions_file, "GQA questions")
    predictions = gqa_predictions(answers)
    missing = [p["questionId"] for p in predictions if str(p["questionId"]) not in gold]
    if missing:
        raise ValueError(f"{questions_file}: no question for questionId(s) {missing[:5]}")
    preds = [p["prediction"] for p in predictions]
    golds = [gold[str(p["questionId"])]["answer"] for p in predictions]
    return {"accuracy": exact_match_accuracy(preds, golds, normalize="gqa"), "questions": len(preds)}


# -------------------------------------------------------------------------------------------- TextVQA


def textvqa_question(prompt: str) -> str:
    """The question inside a TextVQA prompt (LLaVA ``eval_textvqa.prompt_processor``), lower-cased."""
    lines = prompt.split("\n")
    if prompt.startswith("OCR tokens: "):
        start, end = prompt.find("Question: "), prompt.find(" Short answer:")
        if start < 0 or end < 0:
            raise ValueError(f"TextVQA prompt has 'OCR tokens:' but no 'Question: ... Short answer:': {prompt!r}")
        question = prompt[start + len("Question: ") : end]
    elif "Reference OCR token: " in prompt and len(lines) == 3:
        question = lines[1] if prompt.startswith("Reference OCR token:") else lines[0]
    elif len(lines) == 2:
        question = lines[0]
    else:
        raise ValueError(f"cannot find the question in TextVQA prompt {prompt!r}")
    return question.lower()


def score_textvqa(answers: Sequence[Mapping], annotation_file: str | os.PathLike) -> dict:
    """TextVQA accuracy: match on (image_id = question_id, lower-cased question), M4C soft accuracy."""
    data = _load_json(annotation_file, "TextVQA annotations")["data"]
    gold = {(a["image_id"], a["question"].lower()): a["answers"] for a in data}
    preds, golds = [], []
    for answer in answers:
        key = (answer["question_id"], textvqa_question(answer["prompt"]))
        if key not in gold:
            raise ValueError(f"{annotation_file}: no annotation for image {key[0]!r} and question {key[1]!r}")
        preds.append(answer["text"])
        golds.append(gold[key])
    return {"accuracy": vqa_accuracy(preds, golds, protocol="textvqa"), "questions": len(preds)}


# ----------------------------------------------------------------------------------------------- POPE


def score_pope(answers: Sequence[Mapping], questions: Sequence[Mapping], annotation_dir: str | os.PathLike) -> dict:
    """POPE per split, as LLaVA ``eval_pope.py``: for each ``coco_pope_<split>.json`` label file, the answers to
    the questions of category ``<split>`` (in answer order) are paired with the file's labels (in file order).

    Args:
        answers: answer lines.
        questions: the question lines (``question_id`` -> ``category``), e.g. ``llava_pope_test.jsonl``.
        annotation_dir: the folder of ``coco_pope_*.json`` (one ``{..., "label": "yes"|"no"}`` per line).

    Returns:
        ``{split: {accuracy, precision, recall, f1, yes_ratio, tp, fp, tn, fn}, "mean_f1", "mean_accuracy"}``.
    """
    folder = Path(annotation_dir)
    files = sorted(folder.glob("coco_pope_*.json"))
    if not files:
        raise FileNotFoundError(f"no coco_pope_*.json label files in {folder}")
    category = {q["question_id"]: q.get("category") for q in questions}
    result: dict = {}
    for path in files:
        split = path.stem[len("coco_pope_"):]
        labels = [json.loads(line)["label"] for line in path.read_text().splitlines() if line.strip()]
        preds = [a["text"] for a in answers if category.get(a["question_id"]) == split]
        if len(preds) != len(labels):
            raise ValueError(f"{path}: {len(labels)} labels but {len(preds)} answers to '{split}' questions")
        result[split] = pope_metrics(preds, labels)
    result["mean_f1"] = sum(result[p.stem[10:]]["f1"] for p in files) / len(files)
    result["mean_accuracy"] = sum(result[p.stem[10:]]["accuracy"] for p in files) / len(files)
    return result


# ------------------------------------------------------------------------------------------- OCRBench


def ocrbench_questions(ocrbench_file: str | os.PathLike) -> list[dict]:
    """OCRBench.json -> question lines (``question_id`` = index, the single-word suffix, as eval_ocr_bench)."""
    data = _load_json(ocrbench_file, "OCRBench.json")
    return [
        {"question_id": index, "image": item["image_path"], "text": item["question"] + "\n" + SINGLE_WORD,
         "category": item["type"]}
        for index, item in enumerate(data)
    ]


def score_ocrbench(answers: Sequence[Mapping], ocrbench_file: str | os.PathLike) -> dict:
    """OCRBench: a hit when an answer is a substring of the prediction (HME100k: spaces removed, case kept).

    Returns:
        ``{"score": hits (out of 1000 on the full set), "per_type": {type: hits}, "questions": n}``.
    """
    data = _load_json(ocrbench_file, "OCRBench.json")
    per_type: dict[str, int] = defaultdict(int)
    table = _by_id(answers, "ocrbench")
    for qid, answer in table.items():
        item = data[int(qid)]
        per_type[item["type"]] += int(ocrbench_match(answer["text"], item["answers"], item["dataset_name"]))
    return {"score": sum(per_type.values()), "per_type": dict(per_type), "questions": len(table)}


# ------------------------------------------------------------------------------------------------ MME


def mme_ground_truth(folder: str | os.PathLike) -> dict[tuple[str, str, str], str]:
    """(category, txt file, question) -> "Yes"/"No" from the ``MME_Benchmark_release_version`` folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"MME benchmark folder not found: {folder}")
    truth: dict[tuple[str, str, str], str] = {}
    for category_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        qa_dir = category_dir / "questions_answers_YN" if (category_dir / "images").is_dir() else category_dir
        for txt in sorted(qa_dir.glob("*.txt")):
            for number, line in enumerate(txt.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                parts = line.strip().split("\t")
                if len(parts) != 2:
                    raise ValueError(f"{txt}:{number}: expected 'question<TAB>answer', got {line!r}")
                truth[(category_dir.name, txt.name, parts[0])] = parts[1]
    return truth


def mme_result_lines(answers: Sequence[Mapping], truth: Mapping) -> dict[str, list[tuple[str, str, str, str]]]:
    """LLaVA ``convert_answer_to_mme.py``: per category, (file, question, gt, prediction) rows for eval_tool.

    ``question_id`` is ``<category>/<image>``; the prompt loses the single-word suffix and gets
    " Please answer yes or no." back (with MME's double space where the ground truth has one).
    """
    rows: dict[str, list[tuple[str, str, str, str]]] = defaultdict(list)
    for answer in answers:
        category = str(answer["question_id"]).split("/")[0]
        file = str(answer["question_id"]).split("/")[-1].rsplit(".", 1)[0] + ".txt"
        prompt = answer["prompt"].replace(SINGLE_WORD, "").strip()
        if "Please answer yes or no." not in prompt:
            prompt += " Please answer yes or no."
            if (category, file, prompt) not in truth:
                prompt = prompt.replace(" Please answer yes or no.", "  Please answer yes or no.")
        if (category, file, prompt) not in truth:
            raise ValueError(f"MME: no ground truth for {category}/{file}: {prompt!r}")
        rows[category].append((file, prompt, truth[(category, file, prompt)], answer["text"]))
    return dict(rows)


def _mme_label(text: str) -> str:
    """MME ``calculation.py``: "yes"/"no" if the answer is one, else by its first 4 characters, else "other"."""
    text = text.lower()
    if text in ("yes", "no"):
        return text
    head = text[:4]
    return "yes" if "yes" in head else "no" if "no" in head else "other"


def score_mme(rows: Mapping[str, Sequence[tuple[str, str, str, str]]]) -> dict:
    """MME scores from :func:`mme_result_lines`: per task acc + acc+ (both questions of an image right) x 100.

    Returns:
        ``{"perception": sum over the 10 perception tasks present, "cognition": sum over the 4 cognition tasks
        present, "tasks": {task: score}}``.
    """
    tasks: dict[str, float] = {}
    for task, task_rows in rows.items():
        per_image: dict[str, list[bool]] = defaultdict(list)
        for file, _, gt, pred in task_rows:
            per_image[file].append(_mme_label(pred) == gt.lower())
        correct = [hit for hits in per_image.values() for hit in hits]
        acc = sum(correct) / len(correct)
        acc_plus = sum(all(h) for h in per_image.values()) / len(per_image)
        tasks[task] = 100.0 * (acc + acc_plus)
    return {
        "perception": sum(v for k, v in tasks.items() if k in MME_PERCEPTION),
        "cognition": sum(v for k, v in tasks.items() if k in MME_COGNITION),
        "tasks": tasks,
    }


def write_mme_results(rows: Mapping[str, Sequence[tuple[str, ...]]], folder: str | os.PathLike) -> Path:
    """One ``<category>.txt`` per task (tab-separated rows) for the official ``eval_tool/calculation.py``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for category, task_rows in rows.items():
        (folder / f"{category}.txt").write_text("".join("\t".join(r) + "\n" for r in task_rows))
    return folder


# -------------------------------------------------------------------------------------------- MMBench


def _read_tsv(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MMBench TSV not found: {path}")
    csv.field_size_limit(sys.maxsize)  # base64 images are long fields
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _present(value) -> bool:
    return value is not None and str(value).strip() not in ("", "nan", "NaN", "None")


def mmbench_questions(tsv: str | os.PathLike) -> list[dict]:
    """MMBench TSV -> question lines as ``model_vqa_mmbench`` builds them (single-prediction prompt).

    ``text`` = [hint + "\\n"] + question + "\\nA. ..." per option + "\\n" + the letter instruction;
    ``image_base64`` carries the image; ``options`` the option letters present.
    """
    questions = []
    for number, row in enumerate(_read_tsv(tsv), 2):
        if "index" not in row or "question" not in row or "image" not in row:
            raise ValueError(f"{tsv}:{number}: an MMBench row needs 'index', 'question' and 'image' columns")
        letters = []
        for letter in "ABCD":
            if not _present(row.get(letter)):
                break
            letters.append(letter)
        text = row["question"]
        if _present(row.get("hint")):
            text = row["hint"] + "\n" + text
        for letter in letters:
            text += "\n" + letter + ". " + row[letter]
        questions.append({
            "question_id": int(row["index"]), "image_base64": row["image"], "image": f"mmbench/{row['index']}",
            "text": text + "\n" + MMBENCH_SUFFIX, "options": {letter: row[letter] for letter in letters},
            "category": row.get("category", ""),
        })
    return questions


def score_mmbench(answers: Sequence[Mapping], tsv: str | os.PathLike) -> dict:
    """MMBench letters, the upload rows (the TSV without images + ``prediction``) and, when the TSV has an
    ``answer`` column (dev split), single-pass and circular accuracy (a question counts only if all its
    circular variants, same ``index % 1_000_000``, are right).
    """
    rows = _read_tsv(tsv)
    table = _by_id(answers, "mmbench")
    upload, hits = [], {}
    for row in rows:
        index = int(row["index"])
        options = {letter: row[letter] for letter in "ABCD" if _present(row.get(letter))}
        text = table[index]["text"] if index in table else ""
        letter = mmbench_letter(text, options) if index in table else None
        upload.append({k: v for k, v in row.items() if k not in ("image", "hint", "category", "source", "comment",
                                                                 "l2-category")} | {"prediction": text})
        if _present(row.get("answer")) and index in table:
            hits[index] = letter == row["answer"].strip()
    result: dict = {"upload": upload, "answered": sum(1 for r in rows if int(r["index"]) in table)}
    if hits:
        result["accuracy"] = 100.0 * sum(hits.values()) / len(hits)
        circular: dict[int, list[bool]] = defaultdict(list)
        for index, hit in hits.items():
            circular[index % 1_000_000].append(hit)
        result["circular_accuracy"] = 100.0 * sum(all(h) for h in circular.values()) / len(circular)
    return result


def write_tsv(rows: Sequence[Mapping], path: str | os.PathLike) -> Path:
    """Rows as a TSV file (the MMBench upload table; the official script writes .xlsx with openpyxl)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else [], delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    return path


BENCHMARKS = ("toy", "vqav2", "gqa", "textvqa", "pope", "ocrbench", "mme", "mmbench")
"""Benchmarks ``tokenpacker-eval --benchmark`` knows."""


def load_questions(benchmark: str, question_file: str | os.PathLike) -> list[dict]:
    """The question lines of a benchmark file (LLaVA JSONL; OCRBench.json; the MMBench TSV)."""
    from vlzoo.data import read_llava_questions

    if benchmark == "ocrbench":
        return ocrbench_questions(question_file)
    if benchmark == "mmbench":
        return mmbench_questions(question_file)
    return read_llava_questions(question_file)


def score_benchmark(
    benchmark: str,
    answers: Sequence[Mapping],
    questions: Sequence[Mapping],
    gold: str | os.PathLike | None,
    out_dir: str | os.PathLike,
) -> dict:
    """Score ``answers`` (when ``gold`` is given) and write the benchmark's official result/upload files.

    Files written into ``out_dir``: vqav2 ``vqav2_submission.json``; gqa ``gqa_predictions.json``; mme
    ``mme_results/<task>.txt``; mmbench ``mmbench_upload.tsv``. Returns the scores ({} when nothing can be
    scored without ground truth).
    """
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; known: {list(BENCHMARKS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if benchmark == "vqav2":
        (out_dir / "vqav2_submission.json").write_text(json.dumps(vqav2_submission(answers, questions)))
        return score_vqav2(answers, gold) if gold else {}
    if benchmark == "gqa":
        (out_dir / "gqa_predictions.json").write_text(json.dumps(gqa_predictions(answers)))
        return score_gqa(answers, gold) if gold else {}
    if benchmark == "mmbench":
        result = score_mmbench(answers, gold)
        write_tsv(result.pop("upload"), out_dir / "mmbench_upload.tsv")
        return result
    if not gold:
        raise ValueError(f"benchmark {benchmark!r} needs its ground truth (eval.gold)")
    if benchmark == "toy":
        return score_toy(answers, gold)
    if benchmark == "textvqa":
        return score_textvqa(answers, gold)
    if benchmark == "pope":
        return score_pope(answers, questions, gold)
    if benchmark == "ocrbench":
        return score_ocrbench(answers, gold)
    rows = mme_result_lines(answers, mme_ground_truth(gold))
    write_mme_results(rows, out_dir / "mme_results")
    return score_mme(rows)
