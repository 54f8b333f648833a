"""The miniature reproduction's bookkeeping: method settings, the README table generated from results/toy.json."""

import json
from pathlib import Path

import pytest

from tokenpacker import reproduce

REPO = Path(__file__).resolve().parents[2]


def _results():
    methods = {}
    for name, tokens in (("mlp", 144), ("tokenpacker", 36)):
        methods[name] = {"accuracy": 50.0 + tokens / 100, "visual_tokens": tokens, "tokens_per_second": 12.5,
                         "per_type": {t: 40.0 for t in reproduce.TYPES}}
    return {"methods": methods, "seeds": [0], "steps": 30, "stage_steps": {"stage1": 10, "stage2": 20},
            "eval_questions": 80, "tps_questions": 8, "wall_time_s": 12.0, "load_average_before": [1.0, 1.0, 1.0],
            "towers": {"vision_tower": "toy"}}


def test_methods_cover_the_paper_table():
    assert set(reproduce.METHODS) == {"mlp", "avgpool", "resampler", "pixel_shuffle", "c_abstractor", "ldp_v2",
                                      "tokenpacker", "tokenpacker_s3", "tokenpacker_s4"}
    rc = reproduce.ReproduceConfig()
    overrides = reproduce._method_overrides(rc, "tokenpacker_s3", 0)
    assert "projector.scale_factor=3" in overrides and "projector.feature_layers=[3,4,5]" in overrides
    mlp = reproduce._method_overrides(rc, "mlp", 1)
    assert "projector.feature_layers=[5]" in mlp and "seed=1" in mlp
    assert not any(o.startswith("projector.scale_factor") for o in mlp)
    # equal recipe for every method: only the projector settings, output folder and model id differ
    def recipe(method):
        return [o for o in reproduce._method_overrides(rc, method, 0)
                if not o.startswith(("projector.", "output_dir=", "eval.model_id="))]

    assert all(recipe(method) == recipe("mlp") for method in reproduce.METHODS)


def test_readme_table_is_regenerated_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{reproduce.TABLE_START}\nold\n{reproduce.TABLE_END}\noutro\n")
    reproduce.update_readme(readme, _results())
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
    assert "| tokenpacker | 36 | 40.0 | 40.0 | 40.0 | 40.0 | 40.0 | 40.0 | 50.4 | 12.5 |" in text
    (tmp_path / "bare.md").write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        reproduce.update_readme(tmp_path / "bare.md", _results())


def test_committed_readme_table_matches_committed_results():
    """The README's toy table is exactly what results/toy.json renders to (both come from the same command)."""
    results_file = REPO / "tokenpacker" / "results" / "toy.json"
    if not results_file.is_file():
        pytest.skip("tokenpacker/results/toy.json not produced yet (make reproduce-tokenpacker)")
    results = json.loads(results_file.read_text())
    assert {"methods", "seeds", "steps", "wall_time_s"} <= set(results)  # the layout the issue fixes
    assert set(results["methods"]) == set(reproduce.METHODS)
    assert all({"accuracy", "visual_tokens"} <= set(m) for m in results["methods"].values())
    # ... and from the command's defaults, so `make reproduce-tokenpacker` reruns exactly this budget
    defaults = reproduce.ReproduceConfig()
    assert results["stage_steps"] == {"stage1": defaults.stage1_steps, "stage2": defaults.stage2_steps}
    assert results["batch_sizes"] == {"stage1": defaults.stage1_batch, "stage2": defaults.stage2_batch}
    assert results["learning_rates"] == {"stage1": defaults.stage1_lr, "stage2": defaults.stage2_lr}
    assert results["seeds"] == list(defaults.seeds)
    text = (REPO / "tokenpacker" / "README.md").read_text()
    block = text.split(reproduce.TABLE_START, 1)[1].split(reproduce.TABLE_END, 1)[0].strip()
    assert block == reproduce.render_table(results)
