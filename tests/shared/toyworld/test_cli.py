"""The command line and the cached default world."""

import json
import os

import pytest

from vlzoo.toyworld import default_world, generate_world, world_key
from vlzoo.toyworld.__main__ import build_parser, main


def test_generate_command(tmp_path, capsys):
    out = tmp_path / "w"
    args = [
        "generate",
        "--out",
        str(out),
        "--n-train",
        "3",
        "--n-val",
        "2",
        "--image-size",
        "48",
        "--seed",
        "5",
        "--quiet",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "5 images" in printed and "ms/image" in printed
    manifest = json.loads((out / "world.json").read_text())
    assert manifest["image_size"] == 48 and manifest["splits"] == {"train": 3, "val": 2}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a partial folder was left behind"
    # A second run into the same folder refuses, unless asked to overwrite.
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--image-size", "20"], "image size"),
        (["--n-train", "-1"], "n_train"),
        (["--n-train", "0", "--n-val", "0"], "at least one"),
    ],
)
def test_generate_rejects_bad_arguments(tmp_path, capsys, extra, message):
    assert (
        main(["generate", "--out", str(tmp_path / "w"), "--n-train", "2", "--n-val", "1", "--quiet", *extra])
        == 2
    )
    assert message in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_generate_world_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        generate_world(tmp_path, 1, 0, 32, 0, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_concurrent_generate_world_calls_on_one_folder_do_not_overwrite_each_other(tmp_path):
    """Of two concurrent calls, the one that finishes second refuses the filled folder (no silent replacement)."""
    import threading

    out = tmp_path / "w"
    results: dict[int, object] = {}

    def call(seed: int) -> None:
        try:
            results[seed] = generate_world(out, 2, 0, 32, seed)
        except FileExistsError as err:
            results[seed] = err

    threads = [threading.Thread(target=call, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r for r in results.values() if isinstance(r, FileExistsError)]
    assert len(errors) == 1, results
    winner = next(seed for seed, r in results.items() if not isinstance(r, FileExistsError))
    assert json.loads((out / "world.json").read_text())["seed"] == winner
    assert [p.name for p in tmp_path.iterdir()] == ["w"], "a staging folder was left behind"


def test_parser_lists_the_commands():
    help_text = build_parser().format_help()
    assert "generate" in help_text and "default" in help_text


def test_default_world_is_generated_once_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("VLZOO_CACHE", str(tmp_path / "cache"))
    key = world_key(3, 2, 40, 1)
    base = tmp_path / "cache" / "toyworld"
    # A half-written world under the key (no manifest) is not reused: it is replaced.
    (base / key / "train").mkdir(parents=True)
    path = default_world(3, 2, 40, 1, show_progress=False)
    assert (
        path == base / key and (path / "world.json").is_file() and (path / "val" / "instances.json").is_file()
    )
    stamp = os.stat(path / "world.json").st_mtime_ns
    assert default_world(3, 2, 40, 1, show_progress=False) == path
    assert os.stat(path / "world.json").st_mtime_ns == stamp, "the cached world was regenerated"
    assert sorted(p.name for p in base.iterdir()) == sorted([key, f".{key}.lock"])  # no staging left


def test_concurrent_callers_render_the_default_world_once(tmp_path, monkeypatch, concurrently):
    import vlzoo.toyworld.generate as generate

    monkeypatch.setenv("VLZOO_CACHE", str(tmp_path / "cache"))
    calls = []
    real = generate._write_world

    def counting(out, *args):
        calls.append(out)
        real(out, *args)

    monkeypatch.setattr(generate, "_write_world", counting)

    results, errors = concurrently(lambda: default_world(3, 2, 40, 1, show_progress=False))
    assert errors == [] and len(calls) == 1
    assert results[0] == results[1] and (results[0] / "world.json").is_file()


def test_pretrain_clip_takes_dotted_recipe_overrides(tmp_path, monkeypatch, capsys):
    """`pretrain-clip vit.batch_size=16 ...` trains that recipe (its own cache key); a wrong key is refused."""
    import vlzoo.toyworld.pretrain as pretrain

    seen = []

    def fake(recipe, out=None, force=False):
        seen.append(recipe)
        (tmp_path / "report.md").write_text("# report\n")
        return tmp_path

    monkeypatch.setattr(pretrain, "pretrain_toy_clips", fake)
    assert main(["pretrain-clip", "--threads", "2", "vit.batch_size=16", "vit.attribute_steps=6000"]) == 0
    (recipe,) = seen
    assert (recipe.vit.batch_size, recipe.vit.attribute_steps, recipe.threads) == (16, 6000, 2)
    assert recipe.convnext == pretrain.ToyClipRecipe().convnext  # the rest of the recipe is the default
    assert main(["pretrain-clip", "vit.batchsize=16"]) == 2
    assert "unknown key 'batchsize'" in capsys.readouterr().err
