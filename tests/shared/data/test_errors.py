import pickle

from vlzoo.data import DataError, ImageError


def test_message_names_file_record_and_problem():
    error = DataError("data/a.json", "bbox width is 0", "annotations[3] (id 7)")
    assert str(error) == "data/a.json: record annotations[3] (id 7): bbox width is 0"
    assert (error.file, error.record, error.problem) == ("data/a.json", "annotations[3] (id 7)", "bbox width is 0")
    assert isinstance(error, ValueError)


def test_message_without_record_and_with_record_zero():
    assert str(DataError("a.json", "file not found")) == "a.json: file not found"
    assert str(DataError("a.json", "bad", 0)) == "a.json: record 0: bad"


def test_errors_survive_pickling_for_dataloader_workers():
    error = pickle.loads(pickle.dumps(ImageError("x.png", "truncated", 5)))
    assert type(error) is ImageError and isinstance(error, DataError)
    assert (error.file, error.record, error.problem) == ("x.png", 5, "truncated")
    assert str(error) == "x.png: record 5: truncated"
