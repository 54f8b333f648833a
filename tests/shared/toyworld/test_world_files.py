"""A generated world: determinism, format validity, and annotations that agree with the pixels."""

import csv
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from scipy import ndimage

from vlzoo.toyworld import (
    CATEGORIES,
    COLORS,
    SEEN_CATEGORIES,
    UNSEEN_CATEGORIES,
    generate_world,
    render_background,
    scene_for,
)
from vlzoo.toyworld.render import OBJECT_MAX_DEVIATION

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools
SEED, SIZE = 3, 96  # as in conftest
SPLITS = ("train", "val")
SINGLE = "\nAnswer the question using a single word or phrase."


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_and_other_seed_differs(world, tmp_path):
    again = generate_world(tmp_path / "again", 16, 12, SIZE, SEED)
    reference = tree_digest(world)
    assert tree_digest(again) == reference
    other = tree_digest(generate_world(tmp_path / "other", 16, 12, SIZE, SEED + 1))
    assert other.keys() == reference.keys()
    assert other["train/images/000001.png"] != reference["train/images/000001.png"]
    assert other["train/instances.json"] != reference["train/instances.json"]


def test_image_i_does_not_depend_on_the_split_size(world, tmp_path):
    small = generate_world(tmp_path / "small", 5, 3, SIZE, SEED)
    for split, n in (("train", 5), ("val", 3)):
        for i in range(1, n + 1):
            for folder in ("images", "semantic", "scribbles", "points"):
                name = f"{split}/{folder}/{i:06d}.png"
                assert (small / name).read_bytes() == (world / name).read_bytes(), name
        big = json.loads((world / split / "instances.json").read_text())["annotations"]
        assert json.loads((small / split / "instances.json").read_text())["annotations"] == [
            a for a in big if a["image_id"] <= n
        ]


def test_folder_layout(world):
    manifest = json.loads((world / "world.json").read_text())
    assert manifest["splits"] == {"train": 16, "val": 12} and manifest["seed"] == SEED
    assert manifest["unseen_categories"] == list(UNSEEN_CATEGORIES)
    for split in SPLITS:
        d = world / split
        for name in (
            "instances.json",
            "captions.json",
            "llava_pretrain.json",
            "llava.json",
            "regions.json",
            "texts.json",
        ):
            assert (d / name).is_file(), name
        for name in ("label_seen.txt", "label_unseen.txt", "train.txt", "test.txt"):
            assert (d / "multilabel" / name).is_file(), name
        n = manifest["splits"][split]
        for folder in ("images", "semantic", "scribbles", "points"):
            assert sorted(p.name for p in (d / folder).iterdir()) == [f"{i:06d}.png" for i in range(1, n + 1)]
    assert (world / "val" / "vqa_questions.jsonl").is_file()
    assert not (world / "train" / "vqa_questions.jsonl").exists()


@pytest.mark.parametrize("split", SPLITS)
def test_coco_instances_load_in_pycocotools_with_exact_masks(world, split):
    coco = COCO(str(world / split / "instances.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CATEGORIES)
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        image = np.array(Image.open(world / split / "images" / info["file_name"]))
        assert image.shape == (info["height"], info["width"], 3)
        union = np.zeros(image.shape[:2], dtype=bool)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id)):
            assert isinstance(ann["segmentation"]["counts"], str) and ann["iscrowd"] == 0
            mask = coco.annToMask(ann).astype(bool)
            assert mask.sum() == ann["area"] > 0
            rows, cols = np.nonzero(mask)
            x, y = cols.min(), rows.min()
            assert ann["bbox"] == [x, y, cols.max() - x + 1, rows.max() - y + 1]
            assert not (mask & union).any(), "object masks overlap"
            union |= mask


@pytest.mark.parametrize("split", SPLITS)
def test_masks_agree_with_the_painted_pixels(world, split, objects):
    for index, (name, objs) in enumerate(sorted(objects[split].items())):
        image = np.array(Image.open(world / split / "images" / name)).astype(np.int16)
        background = render_background(scene_for(SEED, split, index, SIZE)).astype(np.int16)
        union = np.zeros((SIZE, SIZE), dtype=bool)
        for obj in objs:
            assert np.abs(image[obj.mask] - np.array(obj.rgb)).max() <= OBJECT_MAX_DEVIATION
            # The named colour is the palette colour nearest to the object's mean pixel.
            mean = image[obj.mask].mean(axis=0)
            assert min(COLORS, key=lambda c: np.linalg.norm(np.array(COLORS[c]) - mean)) == obj.color
            union |= obj.mask
        assert np.array_equal(image[~union], background[~union]), name


@pytest.mark.parametrize("split", SPLITS)
def test_semantic_scribble_and_point_labels(world, split, objects):
    for name, objs in objects[split].items():
        semantic = Image.open(world / split / "semantic" / name)
        scribbles = Image.open(world / split / "scribbles" / name)
        points = Image.open(world / split / "points" / name)
        assert semantic.mode == scribbles.mode == points.mode == "P"
        semantic, scribbles, points = (np.array(im) for im in (semantic, scribbles, points))
        expected = np.zeros((SIZE, SIZE), dtype=np.uint8)
        for obj in sorted(objs, key=lambda o: o.depth):
            expected[obj.mask] = CATEGORIES.index(obj.category) + 1
        assert np.array_equal(semantic, expected)
        for sparse in (scribbles, points):
            labelled = sparse != 255
            assert np.array_equal(sparse[labelled], semantic[labelled]), (
                "sparse label disagrees with the mask"
            )
        for obj in objs:
            assert (scribbles[obj.mask] != 255).sum() >= 2, "object without a scribble"
            assert (points[obj.mask] != 255).sum() == 1, "objects get exactly one click"
        assert (scribbles == 0).sum() > 0 and (points == 0).sum() == 1


def _parse_ref(ref: str, objs):
    words = ref.split()
    category = words[-1]
    sizes, colors = {"small", "medium", "large"}, {o.color for o in objs} | {"red", "blue"}
    attrs = {"category": category}
    for w in words[:-1]:
        attrs["size" if w in sizes else "color"] = w
    matches = [o for o in objs if all(getattr(o, k) == v for k, v in attrs.items())]
    assert len(matches) == 1, f"reference {ref!r} is not unique"
    return matches[0], attrs, sizes, colors


def _check_answer(question: str, answer: str, objs, oracle) -> str:
    """Answer a generated question from the decoded masks and attributes; returns its kind."""
    plurals = {c + ("es" if c.endswith(("s", "x")) else "s"): c for c in CATEGORIES}
    if question == "How many shapes are there in the image?":
        assert answer == str(len(objs))
        return "count"
    if m := re.fullmatch(r"How many (\w+) shapes are there in the image\?", question):
        assert answer == str(sum(o.color == m[1] for o in objs))
        return "count"
    if m := re.fullmatch(r"How many (\w+) are there in the image\?", question):
        assert answer == str(sum(o.category == plurals[m[1]] for o in objs))
        return "count"
    if m := re.fullmatch(r"What color is the (.+)\?", question):
        obj, attrs, *_ = _parse_ref(m[1], objs)
        assert "color" not in attrs and answer == obj.color
        return "color"
    if m := re.fullmatch(r"What shape is the (.+) object\?", question):
        words = m[1].split()
        match = [o for o in objs if o.color == words[-1] and (len(words) == 1 or o.size == words[0])]
        assert len(match) == 1 and answer == match[0].category
        return "shape"
    if m := re.fullmatch(r"Where is the (.+) in the image\?", question):
        obj, *_ = _parse_ref(m[1], objs)
        assert answer == oracle.position_of(obj, SIZE)
        return "position"
    if m := re.fullmatch(r"What size is the (.+)\?", question):
        obj, attrs, *_ = _parse_ref(m[1], objs)
        assert "size" not in attrs and answer == obj.size
        return "size"
    if m := re.fullmatch(r"Is the (.+) (to the left of|to the right of|above|below) the (.+)\?", question):
        a, b = _parse_ref(m[1], objs)[0], _parse_ref(m[3], objs)[0]
        truth = oracle.relation_truth(m[2], a, b, SIZE)
        assert truth is not None and answer == ("yes" if truth else "no")
        return "relation"
    if m := re.fullmatch(r"Is there an? (.+) in the image\?", question):
        words = m[1].split()
        present = any(o.category == words[-1] and (len(words) == 1 or o.color == words[0]) for o in objs)
        assert answer == ("yes" if present else "no")
        return "existence"
    raise AssertionError(f"unparsed question {question!r}")


def test_llava_records_and_answers(world, objects, oracle):
    kinds = set()
    for split in SPLITS:
        for name in ("llava.json", "llava_pretrain.json"):
            records = json.loads((world / split / name).read_text())
            assert len({r["id"] for r in records}) == len(records) == len(objects[split])
            for record in records:
                turns = record["conversations"]
                assert (world / split / "images" / record["image"]).is_file()
                assert [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2) and len(
                    turns
                ) % 2 == 0
                assert turns[0]["value"].startswith("<image>\n")
                assert sum(t["value"].count("<image>") for t in turns) == 1
                if name == "llava_pretrain.json":
                    assert len(turns) == 2
                    continue
                objs = objects[split][record["image"]]
                for human, gpt in zip(turns[::2], turns[1::2]):
                    question = human["value"].removeprefix("<image>\n")
                    if question.endswith(SINGLE):
                        kinds.add(_check_answer(question.removesuffix(SINGLE), gpt["value"], objs, oracle))
                    else:  # the detailed description names every object
                        kinds.add("description")
                        for obj in objs:
                            assert f"{obj.size} {obj.color} {obj.category}" in gpt["value"]
    assert kinds == {"count", "color", "shape", "position", "size", "relation", "existence", "description"}


def test_vqa_eval_files(world, objects, oracle):
    questions = [
        json.loads(line) for line in (world / "val" / "vqa_questions.jsonl").read_text().splitlines()
    ]
    answers = {
        a["question_id"]: a
        for a in map(json.loads, (world / "val" / "vqa_answers.jsonl").read_text().splitlines())
    }
    assert len(answers) == len(questions) == len({q["question_id"] for q in questions})
    categories = {}
    for q in questions:
        a = answers[q["question_id"]]
        assert q["category"] == a["category"] and q["text"].endswith(SINGLE)
        kind = _check_answer(q["text"].removesuffix(SINGLE), a["answer"], objects["val"][q["image"]], oracle)
        assert q["category"].startswith(kind)
        categories.setdefault(q["category"], []).append(a["answer"])
    assert set(categories) == {
        "count",
        "color",
        "shape",
        "position",
        "size",
        "existence_random",
        "existence_popular",
        "existence_adversarial",
    }
    for scheme in ("random", "popular", "adversarial"):
        answers_of = categories[f"existence_{scheme}"]
        assert answers_of.count("yes") == answers_of.count("no") == len(objects["val"])


def test_region_records(world, objects):
    for split in SPLITS:
        records = json.loads((world / split / "regions.json").read_text())
        assert len(records) == 2 * len(objects[split])
        for record in records:
            objs = objects[split][record["file_name"]]
            ann = record["annotation"]
            masks = []
            for a in ann:
                rle = dict(a["segmentation"], counts=a["segmentation"]["counts"].encode())
                mask = mask_utils.decode(rle).astype(bool)
                assert list(mask.shape) == [record["height"], record["width"]] and mask.sum() == a["area"] > 0
                rows, cols = np.nonzero(mask)
                assert a["bbox"] == [
                    cols.min(),
                    rows.min(),
                    cols.max() - cols.min() + 1,
                    rows.max() - rows.min() + 1,
                ]
                masks.append(mask)
            whole = [a for a in ann if "part" not in a]
            assert sorted((a["category"], a["attributes"]["color"]) for a in whole) == sorted(
                (o.category, o.color) for o in objs
            )
            for a, mask in zip(ann, masks):
                if "part" in a:
                    parent = masks[a["parent"] - 1]
                    assert ann[a["parent"] - 1]["category"] == a["category"]
                    # Parts lie inside their object, except a ring's hole, which is what the ring encloses.
                    assert not (mask & parent).any() if a["part"] == "hole" else not (mask & ~parent).any()
            texts = [t["value"] for t in record.get("conversations", [])] + record.get("description", [])
            assert not any("<image>" in t for t in texts)
            for text in texts:
                for n in re.findall(r"<region(\d+)>", text):
                    assert 1 <= int(n) <= len(ann)
            if record["task"] == "description":
                assert [d.split(":")[0] for d in record["description"]] == [
                    f"<region{n}>" for n in range(1, len(ann) + 1)
                ]
                continue
            turns = record["conversations"]
            assert [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2)
            asked = set()
            for human, gpt in zip(turns[::2], turns[1::2]):
                q, answer = human["value"], gpt["value"]
                if m := re.fullmatch(
                    r"What is <region(\d+)>\? Answer the question using a short phrase\.", q
                ):
                    a = ann[int(m[1]) - 1]
                    asked.add(int(m[1]))
                    if "part" in a:
                        assert a["part"] in answer and a["category"] in answer
                    else:
                        assert answer.split()[-3:] == [
                            a["attributes"]["size"],
                            a["attributes"]["color"],
                            a["category"],
                        ]
                elif m := re.fullmatch(r"What (color|shape|size) is <region(\d+)>\? .*", q):
                    a = ann[int(m[2]) - 1]
                    expected = {
                        "color": a["attributes"]["color"],
                        "size": a["attributes"]["size"],
                        "shape": a["category"],
                    }
                    assert answer == expected[m[1]]
                elif m := re.fullmatch(r"Is <region(\d+)> an? (\w+)\? .*", q):
                    assert answer == ("yes" if ann[int(m[1]) - 1]["category"] == m[2] else "no")
                elif m := re.fullmatch(r"Which part of the (\w+) is <region(\d+)>\? .*", q):
                    assert answer == ann[int(m[2]) - 1]["part"] and m[1] == ann[int(m[2]) - 1]["category"]
                elif m := re.fullmatch(
                    r"Is <region(\d+)> (to the left of|to the right of|above|below) <region(\d+)>\? .*", q
                ):
                    ca = np.argwhere(masks[int(m[1]) - 1]).mean(0)[::-1] + 0.5
                    cb = np.argwhere(masks[int(m[3]) - 1]).mean(0)[::-1] + 0.5
                    d = {
                        "to the left of": cb[0] - ca[0],
                        "to the right of": ca[0] - cb[0],
                        "above": cb[1] - ca[1],
                        "below": ca[1] - cb[1],
                    }[m[2]]
                    assert abs(d) > 0.1 * SIZE and answer == ("yes" if d > 0 else "no")
                else:
                    raise AssertionError(f"unparsed region question {q!r}")
            assert asked == set(range(1, len(ann) + 1)), "every region is asked about"


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_multilabel_split(world, objects):
    for split in SPLITS:
        ml = world / split / "multilabel"
        assert (ml / "label_seen.txt").read_text().split() == list(SEEN_CATEGORIES)
        assert (ml / "label_unseen.txt").read_text().split() == list(UNSEEN_CATEGORIES)
        train, test = _rows(ml / "train.txt"), _rows(ml / "test.txt")
        assert list(train[0]) == ["image_path", "posi_labels", "nega_labels"]
        assert list(test[0]) == [
            "image_path",
            "unseen_posi_labels",
            "unseen_nega_labels",
            "seen_posi_labels",
            "seen_nega_labels",
        ]
        unseen_positives = 0
        for row, trow in zip(train, test):
            present = {o.category for o in objects[split][Path(row["image_path"]).name]}
            assert (world / split / row["image_path"]).is_file()
            labels = [c for cell in (row["posi_labels"], row["nega_labels"]) for c in cell.split("|") if c]
            assert not set(labels) & set(UNSEEN_CATEGORIES), "an unseen label in train.txt"
            assert sorted(labels) == sorted(SEEN_CATEGORIES)
            assert set(filter(None, row["posi_labels"].split("|"))) == present - set(UNSEEN_CATEGORIES)
            assert set(filter(None, trow["unseen_posi_labels"].split("|"))) == present & set(
                UNSEEN_CATEGORIES
            )
            assert set(filter(None, trow["seen_posi_labels"].split("|"))) == present - set(UNSEEN_CATEGORIES)
            unseen_positives += bool(present & set(UNSEEN_CATEGORIES))
        assert unseen_positives > 0, "unseen shapes must appear in the images"


def test_captions_name_every_object_including_unseen_ones(world, objects):
    unseen_mentions = 0
    for split in SPLITS:
        data = json.loads((world / split / "captions.json").read_text())
        files = {im["id"]: im["file_name"] for im in data["images"]}
        by_image = {}
        for ann in data["annotations"]:
            by_image.setdefault(files[ann["image_id"]], []).append(ann["caption"])
        assert all(len(c) == 5 for c in by_image.values()) and len(by_image) == len(objects[split])
        for name, captions in by_image.items():
            for caption in captions:
                for obj in objects[split][name]:
                    phrase = f"{obj.size} {obj.color} {obj.category}"
                    assert caption.count(phrase) >= sum(
                        f"{o.size} {o.color} {o.category}" == phrase for o in objects[split][name]
                    )
                unseen_mentions += any(re.search(rf"\b{c}\b", caption) for c in UNSEEN_CATEGORIES)
    assert unseen_mentions > 0


def test_texts_labels_are_the_synonyms_they_contain(world):
    from vlzoo.toyworld.texts import SYNONYMS

    patterns = {
        label: re.compile(r"\b(" + "|".join(re.escape(w) for pair in syns for w in pair) + r")\b", re.I)
        for label, syns in SYNONYMS.items()
    }
    for split in SPLITS:
        texts = json.loads((world / split / "texts.json").read_text())
        assert len(texts) == 2 * (16 if split == "train" else 12)
        for t in texts:
            found = [label for label, p in patterns.items() if p.search(t["text"])]
            assert found == t["labels"] and 1 <= len(found) <= 4


def test_manifest_statistics_match_the_files(world, objects):
    stats = json.loads((world / "world.json").read_text())["stats"]
    for split in SPLITS:
        objs = [o for v in objects[split].values() for o in v]
        assert stats[split]["objects"] == len(objs)
        assert sum(stats[split]["categories"].values()) == len(objs)
        assert stats[split]["categories"]["star"] == sum(o.category == "star" for o in objs)
    n_questions = len((world / "val" / "vqa_questions.jsonl").read_text().splitlines())
    assert sum(stats["val"]["vqa_questions"].values()) == n_questions


def test_bytes_do_not_depend_on_the_hash_seed_or_the_worker_count(tmp_path):
    """Set iteration order changes with PYTHONHASHSEED; no output may depend on it, nor on ``workers``."""
    import os
    import subprocess
    import sys

    here = generate_world(tmp_path / "here", 4, 3, 64, 11)
    # Two worker processes write the same bytes as one.
    assert tree_digest(generate_world(tmp_path / "pool", 4, 3, 64, 11, workers=2)) == tree_digest(here)
    env = dict(os.environ, PYTHONHASHSEED="12345")
    code = "import sys; from vlzoo.toyworld import generate_world; generate_world(sys.argv[1], 4, 3, 64, 11)"
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "there")], env=env, check=True)
    assert tree_digest(tmp_path / "there") == tree_digest(here)


@pytest.mark.parametrize("size", [32, 512])
def test_smallest_and_largest_image_sizes(tmp_path, size):
    root = generate_world(tmp_path / "w", 2, 0, size, 0)
    assert not (root / "val").exists()
    assert json.loads((root / "world.json").read_text())["splits"] == {"train": 2, "val": 0}
    coco = COCO(str(root / "train" / "instances.json"))
    for ann in coco.loadAnns(coco.getAnnIds()):
        assert coco.annToMask(ann).sum() == ann["area"] > 0
    assert np.array(Image.open(root / "train" / "images" / "000001.png")).shape == (size, size, 3)


POSITION_PHRASES = {
    "top left": "in the top left corner",
    "top": "at the top",
    "top right": "in the top right corner",
    "left": "on the left",
    "center": "in the center",
    "right": "on the right",
    "bottom left": "in the bottom left corner",
    "bottom": "at the bottom",
    "bottom right": "in the bottom right corner",
}


def _dominant_truth(relation, a, b):
    """WORLD.md: the main-axis difference exceeds 10 % of S and 1.5x the other axis."""
    dx, dy = b.centroid[0] - a.centroid[0], b.centroid[1] - a.centroid[1]
    main, other = {
        "to the left of": (dx, dy),
        "to the right of": (-dx, dy),
        "above": (dy, dx),
        "below": (-dy, dx),
    }[relation]
    return main > 0.1 * SIZE and main >= 1.5 * abs(other)


def test_captions_and_descriptions_state_only_true_positions_and_relations(world, objects, oracle):
    checked = {"relation": 0, "position": 0, "cover": 0}
    for split in SPLITS:
        texts_by_image = {}
        data = json.loads((world / split / "captions.json").read_text())
        files = {im["id"]: im["file_name"] for im in data["images"]}
        for ann in data["annotations"]:
            texts_by_image.setdefault(files[ann["image_id"]], []).append(ann["caption"])
        for record in json.loads((world / split / "llava.json").read_text()):
            texts_by_image[record["image"]] += [t["value"] for t in record["conversations"][1::2]]
        for name, texts in texts_by_image.items():
            objs = objects[split][name]
            phrases = [f"{o.size} {o.color} {o.category}" for o in objs]
            unique = [o for o, p in zip(objs, phrases) if phrases.count(p) == 1]
            for text in texts:
                for a in unique:
                    pa = f"{a.size} {a.color} {a.category}"
                    for word, phrase in POSITION_PHRASES.items():
                        if f"{pa} {phrase}" in text:
                            assert oracle.position_of(a, SIZE) == word, (text, pa)
                            checked["position"] += 1
                    for b in unique:
                        pb = f"{b.size} {b.color} {b.category}"
                        for rel in ("to the left of", "to the right of", "above", "below"):
                            if re.search(rf"\b{pa} (is )?{rel} (an?|the) {pb}\b", text):
                                assert _dominant_truth(rel, a, b), (text, pa, rel, pb)
                                checked["relation"] += 1
    for split in SPLITS:
        for record in json.loads((world / split / "regions.json").read_text()):
            if record["task"] != "description":
                continue
            objs = objects[split][record["file_name"]]
            for a, text in zip(record["annotation"], record["description"]):
                if "part" in a:
                    continue
                key = (a["attributes"]["size"], a["attributes"]["color"], a["category"])
                obj = next(o for o in objs if (o.size, o.color, o.category) == key)
                for word, phrase in POSITION_PHRASES.items():
                    if f"{phrase} of the image" in text:
                        assert oracle.position_of(obj, SIZE) == word
                        checked["position"] += 1
                if m := re.search(r"partly covered by an? (\w+) (\w+) (\w+)\.", text):
                    cover = next(o for o in objs if (o.size, o.color, o.category) == m.groups())
                    assert cover.depth > obj.depth
                    assert (ndimage.binary_dilation(cover.mask) & obj.mask).any(), (
                        "the covering object does not touch"
                    )
                    checked["cover"] += 1
    assert min(checked.values()) > 0, checked
