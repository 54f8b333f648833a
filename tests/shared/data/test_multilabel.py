import pytest
import torch

from vlzoo.data import read_label_list, read_multilabel_csv, read_qks_dataset

SEEN = ["sky", "traffic light", "dog"]
UNSEEN = ["cat", "boat"]
TRAIN = ("image_path,posi_labels,nega_labels\n"
         "img/1.jpg,sky|dog,traffic light\n"
         "img/2.jpg,,sky\n"
         "img/3.jpg,NaN,NaN\n"
         '"img/4, with comma.jpg",traffic light|sky| dog ,\n')
TEST = ("image_path,unseen_posi_labels,unseen_nega_labels,seen_posi_labels,seen_nega_labels\n"
        "t/1.jpg,cat,boat,dog,sky|traffic light\n"
        "t/2.jpg,nan,cat|boat,,\n")


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_label_list(tmp_path, expect_error):
    assert read_label_list(_write(tmp_path, "l.txt", "sky\r\n traffic light \ndog")) == SEEN
    with expect_error(_write(tmp_path, "dup.txt", "sky\ndog\nsky\n"), "line 3", "duplicate label 'sky' (first on line 1)"):
        read_label_list(tmp_path / "dup.txt")
    with expect_error(_write(tmp_path, "blank.txt", "sky\n\ndog\n"), "line 2", "blank label name"):
        read_label_list(tmp_path / "blank.txt")
    with expect_error(_write(tmp_path, "trail.txt", "sky\ndog\n  \n"), "line 3", "blank label name"):
        read_label_list(tmp_path / "trail.txt")
    with expect_error(_write(tmp_path, "empty.txt", ""), None, "the label list is empty"):
        read_label_list(tmp_path / "empty.txt")
    with expect_error(tmp_path / "missing.txt", None, "file not found"):
        read_label_list(tmp_path / "missing.txt")


def test_train_csv(tmp_path):
    data = read_multilabel_csv(_write(tmp_path, "train.txt", TRAIN), SEEN, "train")
    assert data.image_paths == ["img/1.jpg", "img/2.jpg", "img/3.jpg", "img/4, with comma.jpg"]
    assert data.targets.dtype == torch.int8 and data.label_names == SEEN and data.num_seen == 3
    assert data.targets.tolist() == [[1, -1, 1], [-1, 0, 0], [0, 0, 0], [1, 1, 1]]
    assert data.unseen_targets.shape == (4, 0) and len(data) == 4


def test_test_csv_puts_seen_columns_first(tmp_path):
    data = read_multilabel_csv(_write(tmp_path, "test.txt", TEST), SEEN, "test", unseen_labels=UNSEEN)
    assert data.label_names == SEEN + UNSEEN and data.num_seen == 3
    #                             sky traffic dog | cat boat
    assert data.targets.tolist() == [[-1, -1, 1, 1, -1], [0, 0, 0, -1, -1]]
    assert data.seen_targets.tolist() == [[-1, -1, 1], [0, 0, 0]]
    assert data.unseen_targets.tolist() == [[1, -1], [-1, -1]]


def test_extra_columns_and_header_order_are_tolerated(tmp_path):
    text = ",nega_labels,image_path,posi_labels\n0,dog,a.jpg,sky\n"  # pandas' index column, other order
    data = read_multilabel_csv(_write(tmp_path, "train.txt", text), SEEN)
    assert data.targets.tolist() == [[1, 0, -1]]


TRAIN_ERRORS = [
    ("image_path,posi_labels\na.jpg,sky\n", "line 1", "missing column(s) ['nega_labels'] for a train file"),
    ("image_path,posi_labels,nega_labels\na.jpg,sky|horse,\n", "row 0 (line 2, 'a.jpg')",
     "posi_labels holds unknown label 'horse'"),
    ("image_path,posi_labels,nega_labels\na.jpg,sky,dog\nb.jpg,dog|sky,sky\n", "row 1 (line 3, 'b.jpg')",
     "label 'sky' is both positive and negative (posi_labels and nega_labels)"),
    ("image_path,posi_labels,nega_labels\na.jpg,cat,\n", "row 0 (line 2, 'a.jpg')",
     "posi_labels holds 'cat', an unseen label; a train file may only hold seen labels"),
    ("image_path,posi_labels,nega_labels\na.jpg,sky\n", "row 0 (line 2)", "has 2 fields but the header has 3"),
    ("image_path,posi_labels,nega_labels\n,sky,\n", "row 0 (line 2)", "empty image_path"),
    ("image_path,posi_labels,nega_labels\na.jpg,sky||dog,\n", "row 0", "posi_labels has an empty label name"),
    ("image_path,posi_labels,posi_labels,nega_labels\n", "line 1", "duplicate header column(s) ['posi_labels']"),
    ("", None, "the file is empty"),
]


@pytest.mark.parametrize(("text", "record", "problem"), TRAIN_ERRORS)
def test_malformed_train_csv(tmp_path, expect_error, text, record, problem):
    path = _write(tmp_path, "train.txt", text)
    with expect_error(path, record, problem):
        read_multilabel_csv(path, SEEN, "train", unseen_labels=UNSEEN)


TEST_ERRORS = [
    ("t.jpg,dog,,,\n", "unseen_posi_labels holds 'dog', which is a seen label, not an unseen one"),
    ("t.jpg,,,cat,\n", "seen_posi_labels holds 'cat', which is an unseen label, not a seen one"),
    ("t.jpg,,,,horse\n", "seen_nega_labels holds unknown label 'horse' (not in the seen label list)"),
    ("t.jpg,boat,boat,,\n", "label 'boat' is both positive and negative"),
]


@pytest.mark.parametrize(("row", "problem"), TEST_ERRORS)
def test_malformed_test_csv(tmp_path, expect_error, row, problem):
    path = _write(tmp_path, "test.txt", TEST + row)
    with expect_error(path, "row 2 (line 4, 't.jpg')", problem):
        read_multilabel_csv(path, SEEN, "test", unseen_labels=UNSEEN)


def test_bad_arguments(tmp_path):
    path = _write(tmp_path, "test.txt", TEST)
    with pytest.raises(ValueError, match="needs unseen_labels"):
        read_multilabel_csv(path, SEEN, "test")
    with pytest.raises(ValueError, match="split"):
        read_multilabel_csv(path, SEEN, "val")
    with pytest.raises(ValueError, match="both seen and unseen"):
        read_multilabel_csv(path, SEEN, "test", unseen_labels=["dog"])
    with pytest.raises(ValueError, match="twice"):
        read_multilabel_csv(path, ["a", "a"], "train")


def test_qks_folder(tmp_path, expect_error):
    _write(tmp_path, "label_seen.txt", "\n".join(SEEN) + "\n")
    _write(tmp_path, "label_unseen.txt", "\n".join(UNSEEN) + "\n")
    _write(tmp_path, "train.txt", TRAIN)
    with expect_error(tmp_path / "test.txt", None, "file not found"):
        read_qks_dataset(tmp_path)
    _write(tmp_path, "test.txt", TEST)
    dataset = read_qks_dataset(tmp_path)
    assert dataset.seen_labels == SEEN and dataset.unseen_labels == UNSEEN
    assert dataset.train.targets.shape == (4, 3) and dataset.test.targets.shape == (2, 5)
    _write(tmp_path, "label_unseen.txt", "cat\ndog\n")
    with expect_error(tmp_path / "label_unseen.txt", "line 2", "label 'dog' is also in label_seen.txt"):
        read_qks_dataset(tmp_path)
