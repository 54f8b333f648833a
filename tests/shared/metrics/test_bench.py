"""vlzoo.metrics.bench runs end to end on a small problem and checks agreement with scikit-learn."""

from vlzoo.metrics.bench import main


def test_bench_small_problem_agrees_with_sklearn(capsys):
    assert main(["--num-images", "3000", "--num-labels", "12", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    assert "max |AP_vlzoo - AP_sklearn| over 12 labels" in out
    assert "speed-up:" in out and "mAP vlzoo" in out


def test_bench_extrapolates_from_a_label_subset(capsys):
    assert main(["--num-images", "2000", "--num-labels", "30", "--sklearn-labels", "5", "--rounds", "2"]) == 0
    assert "extrapolated" in capsys.readouterr().out
