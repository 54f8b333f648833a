"""Answer scoring for the MLLM benchmarks: VQA soft accuracy, GQA exact match, POPE, OCRBench, MMBench.

Spec: ``/work/shared/specs/tokenpacker.md`` §7.1 (the LLaVA / TokenPacker evaluation protocol) and
``/work/shared/specs/osprey.md`` §8.5 (POPE). Everything here is written from the documented behaviour
of the official scripts; where they have quirks we keep them, because the published numbers carry them.

**VQAv2 answer normalisation** (the official ``vqaEval.py``), applied to the model's answer:

1. newlines and tabs become spaces, the ends are stripped;
2. punctuation ``; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? !``: a mark is *deleted* when it touches a
   space somewhere in the answer (``"p "`` or ``" p"``) or when the answer has a comma between two
   digits anywhere; otherwise it becomes a space. Apostrophes and colons are kept;
3. periods are deleted unless a digit follows (``"3.5"`` stays, ``"yes."`` -> ``"yes"``); the official
   call passes ``re.UNICODE`` where the replacement count goes, so at most 32 periods are deleted;
4. lower-casing and whitespace tokenisation; number words ``none zero one ... ten`` become digits
   (``none`` -> ``0``), articles ``a an the`` are dropped, and contractions missing their apostrophe
   get it back (``dont`` -> ``don't``; table below); tokens are re-joined with one space.

**Soft accuracy** against the human answers ``g_1..g_n`` (n = 10 in VQAv2): for each ``i`` the answer
is scored ``min(1, #{j != i : g_j == answer} / 3)`` and these n leave-one-out scores are averaged.
The official script normalises the *human* answers only with step 2-3 (punctuation), and only when they
are not all identical; VQAv2's released answers are already normalised, so that is enough there.
``protocol="textvqa"`` instead follows the M4C / EvalAI ``TextVQAAccuracyEvaluator`` that LLaVA's
``eval_textvqa.py`` uses: both the prediction and every human answer go through the full normaliser,
preceded by EvalAI's tokenisation step (lower-case, delete ``,`` and ``?``, ``'s`` -> `` 's``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = [
    "normalize_vqa_answer",
    "vqa_soft_accuracy",
    "vqa_accuracy",
    "exact_match_accuracy",
    "pope_answer",
    "pope_metrics",
    "ocrbench_match",
    "mmbench_letter",
]

_PUNCTUATION = tuple(';/[]"{}()=+\\_-><@`,?!')  # the official list, in its order
_DIGIT_COMMA_DIGIT = re.compile(r"\d,\d")
# The official pattern opens with "(?!<=\d)", a look-ahead (not a look-behind) that always succeeds
# before a ".", so in effect: a period not followed by a digit.
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
_OFFICIAL_PERIOD_LIMIT = 32  # re.UNICODE == 32 lands in re.sub's `count` argument in the official script

_NUMBER_WORDS = dict(
    zip(
        "none zero one two three four five six seven eight nine ten".split(),
        "0 0 1 2 3 4 5 6 7 8 9 10".split(),
    )
)
_ARTICLES = frozenset({"a", "an", "the"})

# Contractions the official table restores. Each written form maps from every spelling that lacks
# exactly one of its apostrophes ("couldn't've" <- "couldnt've", "couldn'tve"; "don't" <- "dont").
# The official table's capitalised keys ("Im", "Ive", "Id've", "I'dve") can never match lower-cased
# tokens, so they are left out; its identity entries ("let's", "she's") change nothing.
_CONTRACTED_FORMS = """
ain't aren't can't could've couldn't couldn't've didn't doesn't don't hadn't hadn't've hasn't haven't
he'd he'd've he's how'd how'll how's isn't it'd it'd've it'll ma'am mightn't mightn't've might've mustn't
must've needn't not've o'clock oughtn't 'ow's'at shan't she'd've should've shouldn't shouldn't've
somebody'd've somebody'll somebody's someone'd someone'd've someone'll someone's something'd
something'd've something'll that's there'd there'd've there're there's they'd they'd've they'll they're
they've 'twas wasn't we'd've we've weren't what'll what're what's what've when's where'd where's
where've who'd who'd've who'll who's who've why'll why're why's won't would've wouldn't wouldn't've
y'all y'all'll y'all'd've you'd you'd've you'll you're you've
""".split()


def _contraction_table() -> dict[str, str]:
    table = {}
    for form in _CONTRACTED_FORMS:
        for i, ch in enumerate(form):
            if ch == "'":
                table[form[:i] + form[i + 1 :]] = form
    # Kept from the official table: it maps the correct "somebody'd" to "somebodyd".
    table["somebody'd"] = "somebodyd"
    return table


_CONTRACTIONS = _contraction_table()


def _strip_punctuation(text: str) -> str:
    """Steps 2-3 of the module docstring (the official ``processPunctuation``)."""
    delete_all = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for mark in _PUNCTUATION:
        # The test looks at the original text, the replacement acts on the running result.
        if delete_all or (mark + " ") in text or (" " + mark) in text:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD_NOT_BEFORE_DIGIT.sub("", out, count=_OFFICIAL_PERIOD_LIMIT)


def _digits_articles_contractions(text: str) -> str:
    """Step 4 of the module docstring (the official ``processDigitArticle``)."""
    words = [_NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES)


def normalize_vqa_answer(answer: str) -> str:
    """The official VQAv2 normalisation of an answer (module docstring, steps 1-4).

    Examples: ``"Two."`` -> ``"2"``; ``"The dog"`` -> ``"dog"``; ``"dont know"`` -> ``"don't know"``;
    ``"1,000"`` -> ``"1000"``; ``"3.5"`` -> ``"3.5"``; ``"black-and-white"`` -> ``"black and white"``.
    """
    if not isinstance(answer, str):
        raise TypeError(f"answer must be a str, got {type(answer).__name__}")
    text = answer.replace("\n", " ").replace("\t", " ").strip()
    return _digits_articles_contractions(_strip_punctuation(text))


def _evalai_normalize(answer: str) -> str:
    """M4C / EvalAI ``EvalAIAnswerProcessor``: its tokenisation step, then the VQAv2 normaliser."""
    text = answer.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    return normalize_vqa_answer(text)


def vqa_soft_accuracy(pred: str, gt_answers: Sequence[str], protocol: str = "vqav2") -> float:
    """Soft accuracy of one answer in [0, 1]: mean over i of min(1, #{j != i: g_j == pred} / 3).

    Args:
        pred: the model's answer (raw text).
        gt_answers: the human answers (10 in VQAv2 / TextVQA; any n >= 1 works).
        protocol: ``"vqav2"`` (official VQA script) or ``"textvqa"`` (M4C / EvalAI); module docstring.

    Returns:
        The score in [0, 1]. With 10 humans and m of them matching: m = 0, 1, 2, 3, >= 4 give
        0, 0.3, 0.6, 0.9, 1 (e.g. m = 3: 7 subsets keep all 3 matches -> 1, 3 keep 2 -> 2/3).
    """
    if isinstance(gt_answers, str) or not isinstance(gt_answers, Sequence) or len(gt_answers) == 0:
        raise ValueError("gt_answers must be a non-empty list of human answers (str)")
    for i, a in enumerate(gt_answers):
        if not isinstance(a, str):
            raise TypeError(f"gt_answers[{i}] must be a str, got {type(a).__name__}")
    if protocol == "vqav2":
        answer = normalize_vqa_answer(pred)
        humans = list(gt_answers)
        if len(set(humans)) > 1:
            humans = [_strip_punctuation(a) for a in humans]
    elif protocol == "textvqa":
        if not isinstance(pred, str):
            raise TypeError(f"pred must be a str, got {type(pred).__name__}")
        answer = _evalai_normalize(pred)
        humans = [_evalai_normalize(a) for a in gt_answers]
    else:
        raise ValueError(f"protocol must be 'vqav2' or 'textvqa', got {protocol!r}")
    hits = [h == answer for h in humans]
    total = sum(hits)
    # Leaving human i out removes one match exactly when human i matched.
    return sum(min(1.0, (total - hit) / 3.0) for hit in hits) / len(hits)


def vqa_accuracy(preds: Sequence[str], gts: Sequence[Sequence[str]], protocol: str = "vqav2") -> float:
    """Mean soft accuracy over questions, in percent (``preds[q]`` scored against ``gts[q]``)."""
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions but {len(gts)} ground-truth answer lists")
    if len(preds) == 0:
        raise ValueError("no predictions to score")
    return 100.0 * sum(vqa_soft_accuracy(p, g, protocol) for p, g in zip(preds, gts)) / len(preds)


def _gqa_normalize(answer: str) -> str:
    """LLaVA's ``convert_gqa_for_eval.py``: strip trailing periods, lower-case."""
    return answer.rstrip(".").lower()


_NORMALIZERS = {"vqa": normalize_vqa_answer, "gqa": _gqa_normalize, "none": lambda s: s}


def exact_match_accuracy(preds: Sequence[str], gts: Sequence[str], normalize: str = "vqa") -> float:
    """GQA-style accuracy in percent: the share of predictions equal to their single gold answer.

    Args:
        preds: model answers.
        gts: one gold answer per question.
        normalize: applied to both sides before comparing: ``"vqa"`` (:func:`normalize_vqa_answer`),
            ``"gqa"`` (LLaVA's GQA converter: strip trailing ``.``, lower-case; GQA's ``eval.py`` then
            compares exactly) or ``"none"``.
    """
    if normalize not in _NORMALIZERS:
        raise ValueError(f"normalize must be one of {sorted(_NORMALIZERS)}, got {normalize!r}")
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions but {len(gts)} gold answers")
    if len(preds) == 0:
        raise ValueError("no predictions to score")
    norm = _NORMALIZERS[normalize]
    for i, (p, g) in enumerate(zip(preds, gts)):
        if not isinstance(p, str) or not isinstance(g, str):
            raise TypeError(
                f"item {i}: prediction and gold answer must be str, "
                f"got {type(p).__name__}, {type(g).__name__}"
            )
    return 100.0 * sum(norm(p) == norm(g) for p, g in zip(preds, gts)) / len(preds)


def pope_answer(text: str) -> str:
    """POPE's parser (LLaVA ``eval_pope.py``, Osprey ``pope_eval.py``): ``"yes"`` or ``"no"``.

    The text is cut at its first ``.``, commas are deleted, and it is split on single spaces; the answer
    is ``"no"`` if one of the words is exactly ``No``, ``no`` or ``not``, else ``"yes"`` (so ``"NO"``,
    ``"No!"`` and an empty answer count as yes, as in the official script).
    """
    if not isinstance(text, str):
        raise TypeError(f"POPE answer must be a str, got {type(text).__name__}")
    words = text.split(".", 1)[0].replace(",", "").split(" ")
    return "no" if ("No" in words or "not" in words or "no" in words) else "yes"


def pope_metrics(pred_texts: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """POPE scores of free-text answers against ``"yes"`` / ``"no"`` labels; "yes" is the positive class.

    Args:
        pred_texts: the model's answers (parsed with :func:`pope_answer`).
        labels: ``"yes"`` / ``"no"`` per question (case-insensitive).

    Returns:
        ``accuracy``, ``precision``, ``recall``, ``f1``, ``yes_ratio`` in percent (precision / F1 are 0
        when nothing is answered yes), plus the counts ``tp``, ``fp``, ``tn``, ``fn``.
    """
    if len(pred_texts) != len(labels):
        raise ValueError(f"{len(pred_texts)} answers but {len(labels)} labels")
    if len(labels) == 0:
        raise ValueError("no answers to score")
    gold = []
    for i, label in enumerate(labels):
        value = label.strip().lower() if isinstance(label, str) else None
        if value not in ("yes", "no"):
            raise ValueError(f"labels[{i}] must be 'yes' or 'no', got {label!r}")
        gold.append(value == "yes")
    said_yes = [pope_answer(t) == "yes" for t in pred_texts]
    tp = sum(p and g for p, g in zip(said_yes, gold))
    fp = sum(p and not g for p, g in zip(said_yes, gold))
    tn = sum(not p and not g for p, g in zip(said_yes, gold))
    fn = sum(not p and g for p, g in zip(said_yes, gold))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n = len(labels)
    return {
        "accuracy": 100.0 * (tp + tn) / n,
        "precision": 100.0 * precision,
        "recall": 100.0 * recall,
        "f1": 100.0 * f1,
        "yes_ratio": 100.0 * (tp + fp) / n,
        "tp": float(tp),
        "fp": float(fp),
        "tn": float(tn),
        "fn": float(fn),
    }


def ocrbench_match(pred: str, answers: str | Sequence[str], dataset_name: str) -> bool:
    """OCRBench's hit test (TokenPacker / LLaVA ``eval_ocr_bench.py``): is an answer inside the output?

    For every dataset but ``HME100k`` the match is case-insensitive after stripping and turning
    newlines into spaces. For ``HME100k`` (handwritten formulas) all spaces are removed on both sides
    and the match is **case-sensitive**, as in the official script. The benchmark's score is the number
    of hits over its 1000 questions.
    """
    if not isinstance(pred, str):
        raise TypeError(f"pred must be a str, got {type(pred).__name__}")
    candidates = [answers] if isinstance(answers, str) else list(answers)
    if not candidates or not all(isinstance(a, str) for a in candidates):
        raise ValueError("answers must be a str or a non-empty list of str")
    if dataset_name == "HME100k":
        output = pred.strip().replace("\n", " ").replace(" ", "")
        return any(a.strip().replace("\n", " ").replace(" ", "") in output for a in candidates)
    output = pred.lower().strip().replace("\n", " ")
    return any(a.lower().strip().replace("\n", " ") in output for a in candidates)


_LETTER_CHOICE_NOISE = ".()[],:;!*#{}"  # characters VLMEvalKit blanks out before looking for a lone letter


def mmbench_letter(pred: str, options: Mapping[str, str] | Sequence[str]) -> str | None:
    """The option letter a free-text MMBench answer picks, or ``None`` when it cannot be told.

    Rules (the rule-based part of OpenCompass / VLMEvalKit's matching; its GPT fallback is not used):

    1. Blank out ``. ( ) [ ] , : ; ! * # { }`` and split on whitespace. If exactly one option letter
       appears as a whole token, that is the answer ("B", "(B) cat", "Answer: B.") -- unless the token
       is ``A`` inside a longer sentence, which is more likely the article ("A cat sits ...").
    2. Otherwise (no letter, several letters, or the article case): if exactly one option's text appears
       in the answer (case-insensitively), its letter.

    Args:
        pred: the model's answer.
        options: ``{"A": text, "B": text, ...}`` or the option texts in order (lettered A, B, C, ...).
    """
    if not isinstance(pred, str):
        raise TypeError(f"pred must be a str, got {type(pred).__name__}")
    if isinstance(options, Mapping):
        choices = {
            str(k).strip().upper(): str(v) for k, v in options.items() if v is not None and str(v).strip()
        }
    else:
        choices = {
            chr(ord("A") + i): str(v) for i, v in enumerate(options) if v is not None and str(v).strip()
        }
    if not choices:
        raise ValueError("options is empty")
    blanked = pred
    for ch in _LETTER_CHOICE_NOISE:
        blanked = blanked.replace(ch, " ")
    tokens = blanked.split()
    found = [letter for letter in choices if letter in tokens]
    if len(found) == 1 and not (found[0] == "A" and len(tokens) > 3):
        return found[0]
    lowered = pred.lower()
    by_text = [letter for letter, text in choices.items() if text.strip().lower() in lowered]
    return by_text[0] if len(by_text) == 1 else None
