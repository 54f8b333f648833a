"""The results file of the miniature and the README tables generated from it."""

import json
from pathlib import Path

import pytest

from apro_affinity import report
from apro_affinity.config import BOX_METHODS, SEMANTIC_METHODS

PACKAGE = Path(__file__).resolve().parents[2] / "apro_affinity"


def test_aggregate_mean_and_sample_std():
    per_seed = {"apro": {0: {"miou": 80.0, "mask_ap": 60.0}, 1: {"miou": 84.0, "mask_ap": 64.0}}}
    out = report.aggregate(per_seed)["apro"]
    assert out["miou"] == 82.0 and out["miou_std"] == pytest.approx(2 ** 0.5 * 2)  # stdev([80, 84])
    assert out["mask_ap"] == 62.0
    assert report.aggregate({"x": {0: {"miou": 1.0}}})["x"]["miou_std"] == 0.0


def test_update_readme_replaces_only_the_marked_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# t\nbefore\n{report.TABLE_START}\nold table\n{report.TABLE_END}\nafter\n")
    assert report.update_readme(readme, "NEW")
    assert readme.read_text() == f"# t\nbefore\n{report.TABLE_START}\nNEW\n{report.TABLE_END}\nafter\n"
    (tmp_path / "other.md").write_text("no markers")
    assert not report.update_readme(tmp_path / "other.md", "NEW")


def test_committed_results_have_every_method_and_the_readme_shows_them():
    results = json.loads((PACKAGE / "results" / "toy.json").read_text())
    assert {"methods", "seeds", "steps", "wall_time_s"} <= set(results)
    methods = results["methods"]
    for name in BOX_METHODS:
        assert {"miou", "mask_ap"} <= set(methods[name]), name
    for name in SEMANTIC_METHODS:
        assert "miou" in methods[name] and "miou" in methods[f"point_{name}"], name
    assert isinstance(results["steps"], int) and len(results["seeds"]) >= 1
    for name, seeds in results["per_seed"].items():
        assert sorted(seeds) == sorted(str(s) for s in results["seeds"]), name
    # the README's generated block is exactly what the results file renders to
    assert report.render_tables(results) in (PACKAGE / "README.md").read_text()
    assert (PACKAGE / "results" / "toy_pseudo_labels.png").is_file()
