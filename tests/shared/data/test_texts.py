import json

import pytest
import torch

from vlzoo.data import multi_hot_targets, read_text_labels_json

LABELS = ["person", "dog", "bicycle"]


def _write(tmp_path, data):
    path = tmp_path / "texts.json"
    path.write_text(json.dumps(data))
    return path


def test_valid_samples_and_targets(tmp_path):
    samples = read_text_labels_json(_write(tmp_path, [
        {"id": 0, "text": "A person walks a dog.", "labels": ["person", "dog"], "source": "llm"},
        {"id": "b", "text": "A bicycle.", "labels": ["bicycle", "bicycle"]},
    ]), LABELS)
    assert samples[0].labels == ("person", "dog") and samples[0].label_indices == (0, 1)
    assert samples[1].labels == ("bicycle",) and samples[1].id == "b"
    targets = multi_hot_targets(samples, len(LABELS))
    assert targets.dtype == torch.float32
    assert targets.tolist() == [[1, 1, 0], [0, 0, 1]]


TEXT_ERRORS = [
    ({"records": []}, None, "top level must be a list"),
    ([{"id": 0, "text": "x", "labels": ["cat"]}], "0 (id 0)", "unknown label 'cat' (not in the label list)"),
    ([{"id": 0, "text": "   ", "labels": ["dog"]}], "0 (id 0)", "text is empty"),
    ([{"id": 0, "text": "x", "labels": []}], "0 (id 0)", "labels is empty"),
    ([{"id": 0, "text": "x", "labels": "dog"}], "0 (id 0)", "labels must be a list"),
    ([{"id": 0, "text": "x", "labels": ["dog", 3]}], "0 (id 0)", "label 3 is not a string"),
    ([{"id": 0, "text": 5, "labels": ["dog"]}], "0 (id 0)", "text must be a string"),
    ([{"id": 0, "text": "x", "labels": ["dog"]}, {"id": 0, "text": "y", "labels": ["dog"]}], "1 (id 0)",
     "duplicate id 0 (first at record 0)"),
    ([{"text": "x", "labels": ["dog"]}], "0", "missing required key(s) ['id']"),
    ([{"id": None, "text": "x", "labels": ["dog"]}], "0", "id must be an integer or a non-empty string"),
    (["a sentence"], "0", "must be a JSON object"),
]


@pytest.mark.parametrize(("data", "record", "problem"), TEXT_ERRORS)
def test_malformed_texts(tmp_path, expect_error, data, record, problem):
    path = _write(tmp_path, data)
    with expect_error(path, record, problem):
        read_text_labels_json(path, LABELS)


def test_duplicate_label_list_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="twice"):
        read_text_labels_json(_write(tmp_path, []), ["a", "a"])
