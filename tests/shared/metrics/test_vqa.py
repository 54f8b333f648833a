"""vlzoo.metrics.vqa: VQAv2 normalisation and soft accuracy, GQA, POPE, OCRBench and MMBench scoring."""

import random

import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from vlzoo.metrics import (
    exact_match_accuracy,
    mmbench_letter,
    normalize_vqa_answer,
    ocrbench_match,
    pope_answer,
    pope_metrics,
    vqa_accuracy,
    vqa_soft_accuracy,
)


# ---------------------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Two", "2"),  # number words -> digits (case folded first)
        ("none", "0"),
        ("The dog.", "dog"),  # article dropped, final period deleted
        ("a red  car", "red car"),  # whitespace collapsed
        ("dont know", "don't know"),  # missing apostrophe restored
        ("couldnt've", "couldn't've"),
        ("Yes!", "yes"),  # '!' touches no space and no digit comma -> becomes a space, then trimmed
        ("black-and-white", "black and white"),  # '-' with no space around -> a space
        ("t - shirt", "t shirt"),  # '-' touching a space -> deleted
        ("1,000", "1000"),  # comma between digits -> every listed mark is deleted
        ("3.5", "3.5"),  # a period before a digit stays
        ("10:30", "10:30"),  # colons are kept
        ("it's", "it's"),  # apostrophes are kept
        ("  left\tside\n", "left side"),
        ("(yes)", "yes"),
        ("A", ""),  # the lone article goes away
    ],
)
def test_normalize_examples(raw, expected):
    assert normalize_vqa_answer(raw) == expected


def test_punctuation_rule_looks_at_the_whole_answer():
    # "/" touches no space, but "," does (", "): each mark is decided on its own.
    assert normalize_vqa_answer("yes/no, maybe") == "yes no maybe"
    # A digit-comma-digit anywhere switches every mark to deletion, "/" included.
    assert normalize_vqa_answer("1,000 yes/no") == "1000 yesno"


def test_official_period_quirk_deletes_at_most_32():
    assert normalize_vqa_answer("." * 40) == "." * 8


# ---------------------------------------------------------------------------------------------------
# soft accuracy
# ---------------------------------------------------------------------------------------------------
def brute_soft_accuracy(answer, humans):
    """The official loop: for each human, count the *other* humans that gave the answer."""
    scores = []
    for i in range(len(humans)):
        others = humans[:i] + humans[i + 1 :]
        scores.append(min(1.0, sum(h == answer for h in others) / 3))
    return sum(scores) / len(scores)


@pytest.mark.parametrize("matches, expected", [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)])
def test_soft_accuracy_by_number_of_matching_humans(matches, expected):
    humans = ["cat"] * matches + ["dog"] * (10 - matches)
    assert vqa_soft_accuracy("Cat.", humans) == pytest.approx(expected)


def test_soft_accuracy_matches_leave_one_out_loop():
    rng = random.Random(0)
    vocab = ["2", "two", "red", "blue", "yes", "no"]
    for _ in range(200):
        humans = [rng.choice(vocab) for _ in range(rng.randint(1, 12))]
        pred = rng.choice(vocab + ["The Red."])
        assert vqa_soft_accuracy(pred, humans) == pytest.approx(
            brute_soft_accuracy(normalize_vqa_answer(pred), humans)
        )


def test_human_answers_get_punctuation_only_and_only_when_they_differ():
    # Official behaviour: the human answers are not digit/article-normalised ("two" stays "two") ...
    assert vqa_soft_accuracy("two", ["two"] * 10) == 0.0  # the prediction became "2"
    assert vqa_soft_accuracy("2", ["2"] * 10) == 1.0
    # ... their punctuation is processed when they disagree ("yes." -> "yes") ...
    assert vqa_soft_accuracy("yes", ["yes."] * 4 + ["no"] * 6) == 1.0
    # ... and not at all when all ten agree.
    assert vqa_soft_accuracy("yes", ["yes."] * 10) == 0.0


def test_textvqa_protocol_normalises_both_sides():
    humans = ["Two"] * 3 + ["Coca-Cola"] * 7
    assert vqa_soft_accuracy("two", humans, protocol="textvqa") == pytest.approx(0.9)
    assert vqa_soft_accuracy("coca cola", humans, protocol="textvqa") == 1.0
    assert vqa_soft_accuracy("two", humans) == 0.0  # vqav2 protocol: "Two" is not "2"


def test_vqa_accuracy_is_mean_percent_and_checks_lengths():
    preds = ["cat", "dog"]
    gts = [["cat"] * 10, ["cat"] * 9 + ["dog"]]
    assert vqa_accuracy(preds, gts) == pytest.approx(100 * (1.0 + 0.3) / 2)
    with pytest.raises(ValueError, match="2 predictions but 1"):
        vqa_accuracy(preds, gts[:1])
    with pytest.raises(ValueError, match="non-empty list"):
        vqa_soft_accuracy("cat", [])
    with pytest.raises(ValueError, match="protocol"):
        vqa_soft_accuracy("cat", ["cat"], protocol="okvqa")


def test_exact_match_accuracy():
    preds = ["Yes.", "two", "The Table"]
    gold = ["yes", "2", "table"]
    assert exact_match_accuracy(preds, gold) == pytest.approx(100.0)  # VQA normalisation
    assert exact_match_accuracy(preds, gold, normalize="gqa") == pytest.approx(100 / 3)  # only "Yes." matches
    assert exact_match_accuracy(preds, gold, normalize="none") == 0.0
    with pytest.raises(ValueError, match="normalize"):
        exact_match_accuracy(preds, gold, normalize="lower")


# ---------------------------------------------------------------------------------------------------
# POPE
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("Yes, there is a dog in the image.", "yes"),
        ("No, there is no dog.", "no"),
        ("There is not a dog", "no"),
        ("Yes. There is no cat though.", "yes"),  # only the first sentence counts
        ("Nope", "yes"),  # whole words only
        ("NO", "yes"),  # exactly "No", "no" or "not"
        ("No.", "no"),
        ("", "yes"),
    ],
)
def test_pope_answer(text, expected):
    assert pope_answer(text) == expected


def test_pope_metrics_hand_worked_and_vs_sklearn():
    answers = ["Yes", "No", "Yes, it is.", "no", "Yes", "There is not."]
    labels = ["yes", "no", "no", "yes", "yes", "no"]
    # parsed: yes no yes no yes no -> TP 2 (0, 4), FP 1 (2), TN 2 (1, 5), FN 1 (3)
    got = pope_metrics(answers, labels)
    assert (got["tp"], got["fp"], got["tn"], got["fn"]) == (2, 1, 2, 1)
    assert got["accuracy"] == pytest.approx(100 * 4 / 6)
    assert got["yes_ratio"] == pytest.approx(50.0)
    y_true = [label == "yes" for label in labels]
    y_pred = [pope_answer(a) == "yes" for a in answers]
    assert got["precision"] == pytest.approx(100 * precision_score(y_true, y_pred))
    assert got["recall"] == pytest.approx(100 * recall_score(y_true, y_pred))
    assert got["f1"] == pytest.approx(100 * f1_score(y_true, y_pred))


def test_pope_errors_and_all_no():
    assert pope_metrics(["no", "no"], ["yes", "no"])["precision"] == 0.0
    with pytest.raises(ValueError, match=r"labels\[1\] must be 'yes' or 'no'"):
        pope_metrics(["yes", "no"], ["yes", "maybe"])
    with pytest.raises(ValueError, match="2 answers but 1 labels"):
        pope_metrics(["yes", "no"], ["yes"])


# ---------------------------------------------------------------------------------------------------
# OCRBench and MMBench
# ---------------------------------------------------------------------------------------------------
def test_ocrbench_match():
    assert ocrbench_match("The sign says STOP here", ["stop"], "IIIT5K")  # case-insensitive substring
    assert ocrbench_match("Total: 12.50\n", "12.50", "SROIE")
    assert not ocrbench_match("stop", ["stops"], "svt")
    assert ocrbench_match("\\frac { a } { b }", ["\\frac{a}{b}"], "HME100k")  # spaces ignored
    assert not ocrbench_match("\\FRAC{a}{b}", ["\\frac{a}{b}"], "HME100k")  # ... but case matters there
    with pytest.raises(ValueError, match="answers"):
        ocrbench_match("x", [], "svt")


@pytest.mark.parametrize(
    "pred, expected",
    [
        ("B", "B"),
        ("(C) a tabby cat", "C"),
        ("The answer is D.", "D"),
        ("Answer: B", "B"),
        ("A", "A"),
        ("A cat is sitting on the mat", None),  # "A" as an article in a sentence is not a choice ...
        ("A dog sits on the sofa", "B"),  # ... but the option text still identifies B
        ("B or C", None),  # two letters and no option text
        ("a tabby cat", "C"),  # no letter: the option text
        ("", None),
    ],
)
def test_mmbench_letter(pred, expected):
    options = {"A": "a bird", "B": "dog", "C": "a tabby cat", "D": "a horse"}
    assert mmbench_letter(pred, options) == expected


def test_mmbench_letter_accepts_a_list_and_skips_empty_options():
    assert mmbench_letter("C", ["x", "y", "z"]) == "C"
    assert mmbench_letter("D", ["x", "y", "z", ""]) is None  # there is no option D
