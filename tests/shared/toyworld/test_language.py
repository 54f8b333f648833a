"""The text grammar, POPE negatives, referring expressions and spatial words."""

import re

import numpy as np
import pytest

from vlzoo.toyworld import CATEGORIES, CATEGORY_IDS
from vlzoo.toyworld.spatial import dominant_relation, position_word, relation_holds
from vlzoo.toyworld.texts import SYNONYMS, TEMPLATES, find_labels, sample_text
from vlzoo.toyworld.vqa import pope_negative
from vlzoo.toyworld.world import CATEGORY_FREQUENCY, SIMILAR_CATEGORIES


def test_grammar_has_several_hundred_templates_and_disjoint_synonyms():
    assert len({frame for frame, _ in TEMPLATES}) >= 300
    assert set(SYNONYMS) == set(CATEGORIES)
    owner = {}
    for label, pairs in SYNONYMS.items():
        for word in (w for pair in pairs for w in pair):
            assert owner.setdefault(word, label) == label, f"{word!r} is a synonym of two labels"
    # A multi-word synonym may only contain synonyms of its own label.
    for word, label in owner.items():
        for other, other_label in owner.items():
            if other != word and re.search(rf"\b{re.escape(other)}\b", word):
                assert other_label == label, (word, other)


def test_sentences_carry_exactly_their_labels():
    rng = np.random.default_rng(0)
    seen_frames, sizes = set(), set()
    for _ in range(3000):
        text, labels = sample_text(rng)
        assert labels == find_labels(text) and 1 <= len(labels) <= 4
        assert text[0].isupper() and text.endswith((".", "!"))
        assert "{" not in text and "  " not in text
        seen_frames.add(re.sub(r"\W+", " ", text.lower())[:25])
        sizes.add(len(labels))
    assert sizes == {1, 2, 3, 4}
    assert len(seen_frames) > 1000, "text is not varied"


@pytest.mark.parametrize("scheme", ["random", "popular", "adversarial"])
def test_pope_negatives(scheme):
    rng = np.random.default_rng(1)
    for _ in range(200):
        present = {CATEGORIES[i] for i in rng.choice(16, size=int(rng.integers(1, 6)), replace=False)}
        negative = pope_negative(present, scheme, rng)
        assert negative in CATEGORIES and negative not in present
        absent = [c for c in CATEGORIES if c not in present]
        if scheme == "popular":
            top = sorted(CATEGORY_FREQUENCY[c] for c in absent)[-3:]
            assert CATEGORY_FREQUENCY[negative] >= top[0]
        if scheme == "adversarial" and any(s not in present for c in present for s in SIMILAR_CATEGORIES[c]):
            assert any(negative in SIMILAR_CATEGORIES[c] for c in present)
    with pytest.raises(ValueError, match="unknown POPE scheme"):
        pope_negative({"circle"}, "frequent", rng)


def test_positions_and_relations_have_dead_zones():
    assert position_word((10, 10), 96) == "top left"
    assert position_word((48, 48), 96) == "center"
    assert position_word((90, 48), 96) == "right"
    assert position_word((32, 48), 96) is None  # on the 1/3 cut
    assert relation_holds("to the left of", (10, 50), (40, 50), 96) is True
    assert relation_holds("to the left of", (40, 50), (10, 50), 96) is False
    assert relation_holds("above", (10, 50), (40, 55), 96) is None  # 5 px apart vertically: ambiguous
    assert dominant_relation((10, 50), (40, 55), 96) == "to the left of"
    assert dominant_relation((10, 10), (40, 40), 96) is None  # diagonal: no axis dominates
    with pytest.raises(ValueError, match="unknown relation"):
        relation_holds("inside", (0, 0), (1, 1), 96)


def test_category_ids_are_one_based():
    assert [CATEGORY_IDS[c] for c in CATEGORIES] == list(range(1, 17))
