import copy
import json
import math

import pytest

from vlzoo.data import Turn, read_jsonl, read_llava_json, read_llava_questions, write_jsonl


def _records():
    return [
        {"id": "000000033471", "image": "coco/train2017/000000033471.jpg",
         "conversations": [{"from": "human", "value": "<image>\nWhat are the colors of the bus?"},
                           {"from": "gpt", "value": "White and red."},
                           {"from": "human", "value": "Where is it?"},
                           {"from": "gpt", "value": "On a street."}]},
        {"id": 7, "model": "", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
        {"id": "multi", "image": ["a.jpg", "b.jpg"],
         "conversations": [{"from": "human", "value": "<image> vs <image>: which is bigger?"},
                           {"from": "gpt", "value": "The first."}]},
    ]


def _write(tmp_path, data, name="llava.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_valid_records(tmp_path):
    records = read_llava_json(_write(tmp_path, _records()))
    assert [r.id for r in records] == ["000000033471", 7, "multi"]
    assert records[0].images == ("coco/train2017/000000033471.jpg",)
    assert records[0].conversations[1] == Turn("gpt", "White and red.")
    assert len(records[0].conversations) == 4
    assert records[1].is_text_only and records[1].extra == {"model": ""}
    assert records[2].images == ("a.jpg", "b.jpg")
    assert records[2].image_paths(tmp_path) == [tmp_path / "a.jpg", tmp_path / "b.jpg"]


def test_check_images(tmp_path, expect_error):
    path = _write(tmp_path, _records())
    (tmp_path / "coco" / "train2017").mkdir(parents=True)
    (tmp_path / "coco" / "train2017" / "000000033471.jpg").write_bytes(b"x")
    (tmp_path / "a.jpg").write_bytes(b"x")
    with expect_error(path, "2 (id 'multi')", "image file not found"):
        read_llava_json(path, image_root=tmp_path, check_images=True)
    (tmp_path / "b.jpg").write_bytes(b"x")
    assert len(read_llava_json(path, image_root=tmp_path, check_images=True)) == 3
    with pytest.raises(ValueError, match="image_root"):
        read_llava_json(path, check_images=True)


def test_duplicate_ids_can_be_allowed(tmp_path, expect_error):
    data = _records()
    data[2]["id"] = 7
    path = _write(tmp_path, data)
    with expect_error(path, "2 (id 7)", "duplicate id 7 (first at record 1)"):
        read_llava_json(path)
    assert [r.id for r in read_llava_json(path, unique_ids=False)] == ["000000033471", 7, 7]


def _conv(k, **fields):
    def mutate(data):
        data[0]["conversations"][k].update(fields)
    return mutate


LLAVA_ERRORS = [
    (lambda d: d.__setitem__(1, "x"), "1", "must be a JSON object, got string"),
    (lambda d: d[1].pop("id"), "1", "missing required key 'id'"),
    (lambda d: d[1].update(id=True), "1", "id must be an integer or a non-empty string"),
    (lambda d: d[1].pop("conversations"), "1 (id 7)", "missing required key 'conversations'"),
    (lambda d: d[1].update(conversations=[]), "1 (id 7)", "conversations is empty"),
    (lambda d: d[1].update(conversations={"from": "human"}), "1 (id 7)", "conversations must be a list"),
    (_conv(0, **{"from": "gpt"}), "0 (id '000000033471')", "conversations[0] has role 'gpt', expected 'human'"),
    (lambda d: d[1]["conversations"].insert(0, {"from": "system", "value": "Be nice."}), "1 (id 7)",
     "conversations[0] has role 'system'"),
    (_conv(2, **{"from": "gpt"}), "0 (id '000000033471')", "conversations[2] has role 'gpt'"),
    (_conv(1, value=None), "0 (id '000000033471')", "conversations[1] value must be a string"),
    (lambda d: d[0]["conversations"][1].pop("value"), "0 (id", "conversations[1] lacks ['value']"),
    (_conv(0, value="What are the colors?"), "0 (id '000000033471')",
     "human turns contain 0 <image> placeholder(s) but the record has 1 image(s)"),
    (lambda d: d[1]["conversations"][0].update(value="<image> hi"), "1 (id 7)", "contain 1 <image> placeholder(s) "
     "but the record has 0 image(s)"),
    (lambda d: d[2].update(image=["a.jpg"]), "2 (id 'multi')", "contain 2 <image> placeholder(s) but the record has 1"),
    (_conv(1, value="<image>"), "0 (id '000000033471')", "gpt turns contain 1 <image>"),
    (lambda d: d[0].update(image=3), "0 (id '000000033471')", "image must be a non-empty string or a list"),
    (lambda d: d[2].update(image=["a.jpg", ""]), "2 (id 'multi')", "image must be a non-empty string"),
]


@pytest.mark.parametrize(("mutate", "record", "problem"), LLAVA_ERRORS)
def test_malformed_llava(tmp_path, expect_error, mutate, record, problem):
    data = copy.deepcopy(_records())
    mutate(data)
    path = _write(tmp_path, data)
    with expect_error(path, record, problem):
        read_llava_json(path)


def test_file_level_errors(tmp_path, expect_error):
    with expect_error(_write(tmp_path, {"data": []}), None, "top level must be a list"):
        read_llava_json(tmp_path / "llava.json")
    (tmp_path / "cut.json").write_text('[{"id": 1, "conversations": [')
    with expect_error(tmp_path / "cut.json", None, "invalid JSON at line 1"):
        read_llava_json(tmp_path / "cut.json")
    with expect_error(tmp_path / "missing.json", None, "file not found"):
        read_llava_json(tmp_path / "missing.json")
    (tmp_path / "latin1.json").write_bytes('[{"id": "caf\xe9"}]'.encode("latin-1"))
    with expect_error(tmp_path / "latin1.json", None, "not valid UTF-8"):
        read_llava_json(tmp_path / "latin1.json")


def test_jsonl_round_trip_is_atomic_and_keeps_unicode(tmp_path):
    records = [{"question_id": 1, "text": "caf\u00e9 \u2028 line separator"}, [1, 2], "plain", None]
    path = write_jsonl(tmp_path / "out" / "a.jsonl", records)
    assert path.read_text(encoding="utf-8").count("\n") == 4
    assert "caf\u00e9" in path.read_text(encoding="utf-8")
    assert read_jsonl(path) == records
    with pytest.raises(ValueError, match="record 1 cannot be written"):
        write_jsonl(tmp_path / "bad.jsonl", [{"a": 1}, {"b": math.nan}])
    with pytest.raises(ValueError, match="record 0 cannot be written"):
        write_jsonl(tmp_path / "bad.jsonl", [{"a": object()}])
    assert not (tmp_path / "bad.jsonl").exists()


def test_jsonl_reader_names_the_line_and_skips_blank_lines(tmp_path, expect_error):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\r\n{"a": \n')
    with expect_error(path, "line 4", "invalid JSON"):
        read_jsonl(path)
    path.write_text('{"a": 1}\n\n{"a": 2}\r\n')
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    path.write_bytes(b'{"a": "\xff"}\n')
    with expect_error(path, None, "not valid UTF-8 text (byte 7)"):
        read_jsonl(path)
    with expect_error(tmp_path / "none.jsonl", None, "file not found"):
        read_jsonl(tmp_path / "none.jsonl")


def _questions(tmp_path, lines):
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def test_questions(tmp_path):
    path = _questions(tmp_path, [{"question_id": 0, "image": "a.jpg", "text": "What?", "category": "conv"}, "",
                                 {"question_id": "q1", "image": "b.jpg", "text": "Why?", "extra": 1}])
    questions = read_llava_questions(path)
    assert [q["question_id"] for q in questions] == [0, "q1"] and questions[1]["extra"] == 1


QUESTION_ERRORS = [
    ('{"question_id": 1, "image": "a.jpg", "text": "x"', "line 2", "invalid JSON"),
    ([1, 2], "line 2", "must be a JSON object"),
    ({"question_id": 1, "image": "a.jpg"}, "line 2 (question_id 1)", "missing required key(s) ['text']"),
    ({"question_id": 0, "image": "a.jpg", "text": "x"}, "line 2 (question_id 0)", "duplicate question_id 0 (first on line 1)"),
    ({"question_id": 1.5, "image": "a.jpg", "text": "x"}, "line 2", "question_id must be an integer or"),
    ({"question_id": 1, "image": "", "text": "x"}, "line 2 (question_id 1)", "image must be a non-empty string"),
    ({"question_id": 1, "image": "a.jpg", "text": 5}, "line 2 (question_id 1)", "text must be a string"),
    ({"question_id": 1, "image": "a.jpg", "text": "x", "category": 3}, "line 2", "category must be a string"),
]


@pytest.mark.parametrize(("line", "record", "problem"), QUESTION_ERRORS)
def test_malformed_questions(tmp_path, expect_error, line, record, problem):
    path = _questions(tmp_path, [{"question_id": 0, "image": "a.jpg", "text": "x"}, line])
    with expect_error(path, record, problem):
        read_llava_questions(path)
