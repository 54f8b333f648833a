"""The APro benchmark (apro_affinity.bench, `make bench-apro`) runs end to end on tiny grids.

It lives here because the benchmark is part of the vlzoo.ops work; it only imports the bench module.
"""

import json

from apro_affinity import bench


def test_python_union_baseline_matches_the_kernel(rng):
    import torch

    import vlzoo.ops as O

    signal, image = bench.synthetic_inputs(10, 1)
    tree = O.grid_mst(image, impl="reference")
    costs = O.tree_edge_costs(image, tree)[0].tolist()
    values = signal.flatten().double().tolist()
    python = bench.python_union_propagate([tuple(e) for e in tree[0].tolist()], costs, values, 0.2)
    expected = O.global_propagate(signal.double(), image.double(), 0.2, tree, impl="reference")
    torch.testing.assert_close(torch.tensor(python, dtype=torch.float64), expected.flatten(), rtol=0, atol=1e-12)


def test_main_prints_ratios_and_saves_the_plot(tmp_path, capsys, ops):
    ops.cpu_ops()
    argv = ["--sizes", "12", "16", "--channels", "1", "3", "--repeats", "1", "--goal-size", "16"]
    assert bench.main([*argv, "--dense-goal-size", "12", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "[goal] MST+GP 16^2 K=1 / SciPy MST alone 16^2" in printed
    assert "[goal] dense 12^2 / MST+GP 12^2 K=1" in printed
    assert (tmp_path / "apro_scaling.png").stat().st_size > 1000
    numbers = json.loads((tmp_path / "apro_bench.json").read_text())
    names = {row["name"] for row in numbers["rows"]}
    assert {"grid MST (C++)", "MST + GP (C++)", "SciPy minimum_spanning_tree", "dense O(N^2) (tree given)"} <= names
    assert all(row["best_ms"] > 0 for row in numbers["rows"])


def test_compared_calls_are_measured_in_turns_after_a_warm_up_round():
    order = []
    calls = {name: (lambda name=name: order.append(name) or name) for name in ("one", "many")}
    timed = bench.measure_interleaved(calls, repeats=3, budget_s=60.0)
    assert order == ["one", "many"] * 4  # the warm-up round, then 3 timed rounds, alternating
    assert set(timed) == {"one", "many"}
    for name, (best, median, cpu, result) in timed.items():
        assert 0 <= best <= median and cpu >= 0 and result == name
