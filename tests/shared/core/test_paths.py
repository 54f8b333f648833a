"""vlzoo.paths.staged_dir: a folder is replaced only by a complete build, and a failed build leaves no trace."""

from __future__ import annotations

import pytest

from vlzoo.paths import staged_dir


def test_staged_dir_replaces_the_folder_only_when_the_build_finishes(tmp_path):
    target = tmp_path / "entry"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with staged_dir(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".entry.partial-")
        (tmp / "new.txt").write_text("new")
        assert (target / "old.txt").is_file()  # readers still see the previous folder while building
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]


def test_staged_dir_failure_keeps_the_previous_folder_and_removes_the_staging(tmp_path):
    target = tmp_path / "entry"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="boom"), staged_dir(target) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("boom")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]


def test_staged_dir_without_replace_lands_on_an_empty_folder_but_never_replaces_a_filled_one(tmp_path):
    target = tmp_path / "entry"
    target.mkdir()  # empty: taken over
    with staged_dir(target, replace=False) as tmp:
        (tmp / "mine.txt").write_text("mine")
    assert sorted(p.name for p in target.iterdir()) == ["mine.txt"]
    # A concurrent writer fills the folder while this build runs: this build is refused and cleaned up.
    other = tmp_path / "other"
    with pytest.raises(FileExistsError, match="filled by another writer"), staged_dir(other, replace=False) as tmp:
        (tmp / "late.txt").write_text("late")
        other.mkdir()
        (other / "first.txt").write_text("first")
    assert sorted(p.name for p in other.iterdir()) == ["first.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry", "other"]


def test_build_once_builds_a_missing_or_incomplete_entry_and_reuses_a_complete_one(tmp_path):
    from vlzoo.paths import build_once

    calls = []

    def build(staging):
        calls.append(staging)
        (staging / "done").write_text(str(len(calls)))

    def complete(p):
        return (p / "done").is_file()

    entry = tmp_path / "entry"
    entry.mkdir()  # present but incomplete: rebuilt
    assert build_once(entry, complete, build) == entry and (entry / "done").read_text() == "1"
    assert build_once(entry, complete, build) == entry and len(calls) == 1  # complete: reused
    assert build_once(entry, complete, build, force=True) == entry and (entry / "done").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".entry.lock", "entry"]
