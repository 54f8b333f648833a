"""tokenpacker-bench on tiny sizes: every measurement runs and the ratios are consistent with the timings."""

import json

import pytest

from tokenpacker import bench

TINY = ["--layers", "1", "--width", "64", "--vocab", "128", "--text-tokens", "8", "--new-tokens", "3", "--grid", "6",
        "--vision-dim", "32", "--projector-llm-dim", "64", "--scales", "2", "3", "--heads", "4", "--repeats", "1",
        "--threads", "1"]


def test_bench_runs_on_tiny_sizes_and_writes_its_report(tmp_path, capsys):
    assert bench.main([*TINY, "--json", str(tmp_path / "bench.json")]) == 0
    printed = capsys.readouterr().out
    assert "prefill speed-up" in printed and "TokenPacker (sdpa) / official call" in printed
    report = json.loads((tmp_path / "bench.json").read_text())
    rows = report["llm"]
    assert {name: r["visual_tokens"] for name, r in rows.items()} == {"mlp_36": 36, "tokenpacker_9": 9,
                                                                        "tokenpacker_4": 4}
    for r in rows.values():
        assert r["prefill_s"] > 0 and r["generate_s"] > 0 and r["tps"] > 0
        assert r["prefill_speedup"] == pytest.approx(rows["mlp_36"]["prefill_s"] / r["prefill_s"])
        assert r["share_of_ideal"] == pytest.approx(r["prefill_speedup"] / r["ideal_speedup"])
    assert rows["tokenpacker_4"]["ideal_speedup"] == pytest.approx((8 + 36) / (8 + 4))
    ratios, seconds = report["projector_ratios"], report["projector_s"]
    assert ratios["tokenpacker_sdpa_vs_official"] == pytest.approx(
        seconds["tokenpacker_9_sdpa"] / seconds["tokenpacker_9_official"])
    assert set(seconds) == {"mlp_36", "tokenpacker_9_official", "tokenpacker_9_sdpa"}
