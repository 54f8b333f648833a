"""Toy-CLIP pretraining: a smoke run produces towers that load like real weights; the report is computed right."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from vlzoo.toyworld import CATEGORIES, UNSEEN_CATEGORIES
from vlzoo.toyworld.pretrain import TowerRecipe, ToyClipRecipe, _drop_words, pretrain_toy_clips, recipe_key
from vlzoo.toyworld.pretrain_data import load_split
from vlzoo.toyworld.zeroshot import TOY_TEMPLATES, zero_shot_report


def _tiny_recipe(steps: int = 2) -> ToyClipRecipe:
    return ToyClipRecipe(
        vit=TowerRecipe("vlzoo-tiny-vit", attribute_steps=steps, lit_steps=steps, batch_size=4, lit_batch_size=8),
        convnext=TowerRecipe(
            "vlzoo-tiny-convnext",
            attribute_steps=steps,
            lit_steps=steps,
            batch_size=4,
            lit_batch_size=8,
            layer_scale_init=1.0,
            color_shuffle=0.5,
        ),
    )


@pytest.fixture(scope="module")
def pretrained(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("toyclip") / "run"
    return pretrain_toy_clips(_tiny_recipe(), world=world, out=out)


def test_smoke_pretrain_writes_every_artifact(pretrained):
    names = {p.name for p in pretrained.iterdir()}
    assert {"vit", "convnext", "vit_hf", "report.json", "report.md", "recipe.json"} <= names
    assert {"metrics_vit.jsonl", "metrics_convnext.jsonl", "metrics_vit.png"} <= names
    report = json.loads((pretrained / "report.json").read_text())
    for kind in ("vit", "convnext"):
        r = report["towers"][kind]
        assert 0 <= r["single_object_top1"] <= 100 and 0 <= r["map_unseen"] <= 100
        assert "probe_object_category" in r
    phases = [json.loads(line)["phase"] for line in (pretrained / "metrics_vit.jsonl").read_text().splitlines()]
    assert phases == ["attributes", "attributes", "lit", "lit"]


def test_checkpoints_load_through_vlzoo_clip_and_transformers(pretrained):
    from transformers import CLIPModel

    from vlzoo.clip import create_clip, load_hf_clip

    vit = create_clip("vlzoo-tiny-vit", weights=pretrained / "vit")
    cnx = create_clip("vlzoo-tiny-convnext", weights=pretrained / "convnext")
    assert vit.load_report.missing_keys == [] and cnx.load_report.missing_keys == []
    hf = load_hf_clip(pretrained / "vit_hf")
    pixels = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(hf.encode_image(pixels), vit.encode_image(pixels), atol=1e-4, rtol=1e-4)
        ids = vit.tokenize(["a small red heart"])
        torch.testing.assert_close(
            hf.encode_text(["a small red heart"]), vit.encode_text(ids), atol=1e-4, rtol=1e-4
        )
        assert cnx.encode_image(torch.rand(1, 3, 128, 128)).shape == (1, 128)
    model = CLIPModel.from_pretrained(pretrained / "vit_hf")
    assert model.config.vision_config.image_size == 96


def test_pretraining_changes_the_towers(pretrained):
    from vlzoo.clip import create_clip

    trained = create_clip("vlzoo-tiny-vit", weights=pretrained / "vit").state_dict()
    torch.manual_seed(0)
    fresh = create_clip("vlzoo-tiny-vit").state_dict()
    visual_changed = any(not torch.equal(trained[k], fresh[k]) for k in trained if ".visual." in k)
    text_changed = any(
        not torch.equal(trained[k], fresh[k]) for k in trained if "transformer.resblocks" in k and ".visual." not in k
    )
    assert visual_changed and text_changed


def test_attribute_phase_leaves_no_hooks_on_the_convnext(world, tmp_path):
    from vlzoo.clip import create_clip
    from vlzoo.run import MetricsLog
    from vlzoo.toyworld.pretrain import train_attributes

    split = load_split(world / "train")
    clip = create_clip("vlzoo-tiny-convnext")
    recipe = _tiny_recipe(steps=1).convnext
    train_attributes(clip, split, split, recipe, MetricsLog(tmp_path / "m.jsonl"), seed=0, desc="t")
    assert all(not stage._forward_hooks for stage in clip.visual.trunk.stages)


def test_complete_output_is_reused_and_force_retrains(pretrained, world):
    before = (pretrained / "report.json").stat().st_mtime_ns
    assert pretrain_toy_clips(_tiny_recipe(), world=world, out=pretrained) == pretrained
    assert (pretrained / "report.json").stat().st_mtime_ns == before


def test_concurrent_callers_train_once_and_share_the_result(world, tmp_path, monkeypatch, concurrently):
    """Two processes asking for the same missing toy CLIP: the second waits on the cache lock and reuses the
    first one's folder (before the lock, the second deleted the first one's staging folder mid-run)."""
    import vlzoo.toyworld.pretrain as pretrain

    calls = []
    real = pretrain._pretrain_into

    def counting(staging, recipe, world_dir):
        calls.append(staging)
        real(staging, recipe, world_dir)

    monkeypatch.setattr(pretrain, "_pretrain_into", counting)
    out = tmp_path / "shared_run"

    results, errors = concurrently(lambda: pretrain_toy_clips(_tiny_recipe(), world=world, out=out))
    assert errors == [] and results == [out, out]
    assert len(calls) == 1
    lines = (out / "metrics_vit.jsonl").read_text().splitlines()
    assert [json.loads(line)["phase"] for line in lines] == ["attributes", "attributes", "lit", "lit"]
    assert not list(tmp_path.glob(".shared_run.partial-*"))  # the staging folder became the output


def test_recomputed_report_keeps_training_figures_and_adds_attributes(pretrained):
    from vlzoo.toyworld.pretrain import recompute_report

    before = json.loads((pretrained / "report.json").read_text())["towers"]["vit"]
    after = recompute_report(pretrained)["towers"]["vit"]
    assert after["probe_object_category"] == before["probe_object_category"]
    assert after["single_object_top1"] == before["single_object_top1"]  # same towers, same figure
    assert 0 <= after["single_object_color_top1"] <= 100 and 0 <= after["single_object_size_top1"] <= 100
    assert "colour top-1" in (pretrained / "report.md").read_text()


def test_towers_evaluate_on_another_split_without_touching_the_report(pretrained, world, capsys):
    from vlzoo.clip import create_clip
    from vlzoo.toyworld.__main__ import main
    from vlzoo.toyworld.pretrain import evaluate_towers

    saved = (pretrained / "report.json").read_text()
    on_train = evaluate_towers(pretrained, world / "train")
    assert set(on_train) == {"vlzoo-tiny-vit", "vlzoo-tiny-convnext"}
    expected = zero_shot_report(
        create_clip("vlzoo-tiny-vit", weights=pretrained / "vit"),
        load_split(world / "train"),
    )
    assert on_train["vlzoo-tiny-vit"] == expected
    assert on_train["vlzoo-tiny-vit"]["images"] == len(load_split(world / "train"))
    assert (pretrained / "report.json").read_text() == saved  # evaluation only

    assert main(["report", "--dir", str(pretrained), "--split", str(world / "train")]) == 0
    assert f"report on {world / 'train'}" in capsys.readouterr().out
    assert main(["report", "--dir", str(pretrained), "--split", str(world)]) == 2  # the world, not a split
    assert "not a toy-world split folder" in capsys.readouterr().err


def test_cache_key_follows_the_recipe(world):
    base = _tiny_recipe()
    assert recipe_key(base, world) == recipe_key(_tiny_recipe(), world)
    assert recipe_key(base, world) != recipe_key(_tiny_recipe(steps=3), world)
    assert recipe_key(base, world) == recipe_key(replace(base, threads=4), world)  # threads do not change results
    no_dropout = replace(base, vit=replace(base.vit, lit_drop_color=0.0))
    assert recipe_key(no_dropout, world) != recipe_key(base, world)


def test_fields_added_later_at_their_neutral_value_keep_the_old_key(world):
    # The digest of the default recipe before the LiT caption-dropout fields existed (computed with that code
    # on this fixture world): with the dropout off, the towers cached under it are found again.
    # The ConvNeXt's batch-16 default (2026-12-03) is spelled out as the old recipe's values.
    v1 = ToyClipRecipe()
    old_convnext = TowerRecipe(
        "vlzoo-tiny-convnext", attribute_steps=400, layer_scale_init=1.0, color_shuffle=0.5
    )
    v1 = replace(
        v1,
        vit=replace(v1.vit, lit_drop_color=0.0, lit_drop_size=0.0),
        convnext=replace(old_convnext, lit_drop_color=0.0, lit_drop_size=0.0),
    )
    assert recipe_key(v1, world) == "toyclip-v1_toyworld-v1_ff29468d6d10"
    assert recipe_key(ToyClipRecipe(), world) != recipe_key(v1, world)


def test_embedding_gap_fields_change_the_key_only_when_used(world):
    base = _tiny_recipe()
    as_list = replace(base, convnext=replace(base.convnext, region_stages=[1, 2]))  # a YAML / CLI override
    assert recipe_key(as_list, world) == recipe_key(base, world)
    for changed in (
        replace(base, convnext=replace(base.convnext, region_stages=(1, 2, 3))),
        replace(base, vit=replace(base.vit, embedding_distill=1.0)),
        replace(base, convnext=replace(base.convnext, embedding_distill=0.5)),
        replace(base, convnext=replace(base.convnext, presence_mil=3.0)),
    ):
        assert recipe_key(changed, world) != recipe_key(base, world)


def test_region_stages_are_checked(world, tmp_path):
    from vlzoo.clip import create_clip
    from vlzoo.run import MetricsLog
    from vlzoo.toyworld.pretrain import train_attributes

    split = load_split(world / "train")
    log = MetricsLog(tmp_path / "m.jsonl")
    vit = replace(_tiny_recipe(steps=1).vit, region_stages=(2,))
    with pytest.raises(ValueError, match="ConvNeXt setting"):
        train_attributes(create_clip("vlzoo-tiny-vit"), split, split, vit, log, seed=0, desc="t")
    for bad in ((1, 4), (2, 2), ()):
        cnx = replace(_tiny_recipe(steps=1).convnext, region_stages=bad)
        with pytest.raises(ValueError, match="distinct stage indices in 0..3"):
            train_attributes(create_clip("vlzoo-tiny-convnext"), split, split, cnx, log, seed=0, desc="t")


def test_embedding_distill_loss_matches_a_loop_and_pulls_only_the_summary():
    from vlzoo.toyworld.pretrain import _AttributeHeads, _embedding_distill_loss

    torch.manual_seed(0)
    heads = _AttributeHeads([8, 6], embed_dim=5, distill_adapter=True)
    summary = torch.randn(3, 5, requires_grad=True)
    per_slot = torch.randn(3, 4, 6, requires_grad=True)
    valid = torch.tensor(
        [[True, True, False, False], [False, False, False, False], [True, False, False, False]]
    )
    loss = _embedding_distill_loss(heads, summary, per_slot, valid)
    expected = []
    for b in (0, 2):  # image 1 has no object and is left out
        target = per_slot[b][valid[b]].mean(0)
        expected.append(1 - F.cosine_similarity(heads.distill(summary[b]), target, dim=0))
    torch.testing.assert_close(loss, torch.stack(expected).mean())
    loss.backward()
    assert per_slot.grad is None and summary.grad.abs().sum() > 0  # the target is detached
    assert _AttributeHeads([8, 6], embed_dim=5).distill is None  # no adapter unless asked for


def test_presence_mil_loss_matches_a_loop_over_cells():
    from vlzoo.toyworld.pretrain import _AttributeHeads, _presence_mil_loss

    torch.manual_seed(0)
    heads = _AttributeHeads([8, 6], embed_dim=5)
    last_map = torch.randn(2, 6, 3, 3, requires_grad=True)
    targets = torch.zeros(2, 16)
    targets[0, [1, 4]] = 1.0  # image 1 holds no object: every cell should say "no category"
    loss = _presence_mil_loss(heads, last_map, targets)
    head = heads.region[-1]["category"]  # the last map's head, not the first one's
    expected = 0.0
    for b in range(2):
        cells = torch.stack([head(last_map[b, :, y, x]) for y in range(3) for x in range(3)])  # (9, 16)
        best = cells.max(dim=0).values
        expected = expected + sum(
            -(t * torch.log(torch.sigmoid(z)) + (1 - t) * torch.log(1 - torch.sigmoid(z)))
            for z, t in zip(best, targets[b])
        )
    torch.testing.assert_close(loss, expected / 32)
    loss.backward()
    assert last_map.grad.abs().sum() > 0 and heads.region[0]["category"].weight.grad is None


@pytest.mark.parametrize("kind", ["vit", "convnext"])
def test_attribute_phase_with_the_embedding_gap_fields(world, tmp_path, monkeypatch, kind):
    from vlzoo.clip import create_clip
    from vlzoo.run import MetricsLog
    from vlzoo.toyworld import pretrain

    split = load_split(world / "train")
    recipe = replace(getattr(_tiny_recipe(steps=3), kind), embedding_distill=1.0, presence_mil=2.0)
    if kind == "convnext":
        recipe = replace(recipe, region_stages=(1, 2, 3))
    clip = create_clip(recipe.arch)
    built = []
    real_heads = pretrain._AttributeHeads

    def recording_heads(*args, **kwargs):
        built.append(real_heads(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(pretrain, "_AttributeHeads", recording_heads)
    pretrain.train_attributes(clip, split, split, recipe, MetricsLog(tmp_path / "m.jsonl"), seed=0, desc="t")
    rows = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(0 <= r["embedding_distill"] <= 2 for r in rows)
    assert all(r["presence_mil"] > 0 for r in rows)
    heads = built[0]
    assert len(heads.region) == (3 if kind == "convnext" else 1)
    assert (heads.distill is not None) == (kind == "convnext")  # the ViT's CLS already has the tokens' width
    if kind == "convnext":
        assert heads.region[-1]["category"].in_features == 128  # the last stage's width
        assert all(not stage._forward_hooks for stage in clip.visual.trunk.stages)


def test_lit_caption_dropout_removes_only_colour_and_size_words():
    caption = (
        "a small red pentagon to the left of a large white ring in the top right corner on a striped background"
    )
    assert _drop_words(caption, 0) == caption
    assert _drop_words(caption, 1) == (
        "a small pentagon to the left of a large ring in the top right corner on a striped background"
    )
    assert _drop_words(caption, 2) == (
        "a red pentagon to the left of a white ring in the top right corner on a striped background"
    )
    assert _drop_words(caption, 3) == (
        "a pentagon to the left of a ring in the top right corner on a striped background"
    )


def test_lit_with_caption_dropout_feeds_only_stripped_captions(world, tmp_path, monkeypatch):
    from vlzoo.clip import create_clip
    from vlzoo.run import MetricsLog
    from vlzoo.toyworld import pretrain

    clip = create_clip("vlzoo-tiny-vit")
    split = load_split(world / "train")
    fed: list[torch.Tensor] = []
    encode_text = clip.model.encode_text

    def recording_encode_text(text):
        fed.append(text.clone())
        return encode_text(text)

    monkeypatch.setattr(clip.model, "encode_text", recording_encode_text)
    recipe = replace(_tiny_recipe().vit, lit_steps=3, lit_drop_color=1.0, lit_drop_size=0.0)
    before = {k: v.clone() for k, v in clip.model.state_dict().items() if k.startswith("visual.")}
    loss = pretrain.train_lit(clip, split, recipe, MetricsLog(tmp_path / "m.jsonl"), seed=0, desc="test")
    assert torch.isfinite(torch.tensor(loss))

    def rows(variant):
        tokens = [clip.tokenize([_drop_words(c, variant) for c in caps]) for caps in split.captions]
        return {tuple(r.tolist()) for t in tokens for r in t}
    fed_rows = {tuple(r.tolist()) for batch in fed for r in batch}
    assert len(fed) == 3 and fed_rows <= rows(1) and not fed_rows & rows(0)  # every caption lost its colours
    after = clip.model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())  # the image tower stays locked


def test_a_run_with_its_own_thread_count_restores_the_callers(world, tmp_path):
    before = torch.get_num_threads()
    own = before + 1  # tests run on one thread (tests/conftest.py), so this differs from the caller's
    out = pretrain_toy_clips(replace(_tiny_recipe(), threads=own), world=world, out=tmp_path / "own_threads")
    assert torch.get_num_threads() == before  # before, a run left its callers (tests, demos) on its threads
    report = json.loads((out / "report.json").read_text())
    assert report["threads"] == own and {r["threads"] for r in report["towers"].values()} == {own}


class _OracleClip:
    """Image embedding = the image's category presence (looked up by call order); text = the named category."""

    def __init__(self, presence: torch.Tensor):
        self.presence = presence
        self.image_size = (96, 96)
        self.device = torch.device("cpu")
        self._seen = 0

    def encode_image(self, pixels, normalize=False):
        rows = self.presence[self._seen : self._seen + pixels.shape[0]]
        self._seen += pixels.shape[0]
        return F.normalize(rows + 1e-3, dim=-1) if normalize else rows

    def tokenize(self, texts):
        none = len(CATEGORIES)  # prompts without a category word (colour / size prompts) embed to zero
        return torch.tensor([([i for i, c in enumerate(CATEGORIES) if c in text.split()] + [none])[:1] for text in texts])

    def encode_text(self, ids, normalize=False):
        return F.one_hot(ids[:, 0], len(CATEGORIES) + 1)[:, :-1].float()


def test_report_of_an_oracle_is_perfect_and_the_positive_rates_are_right(world):
    split = load_split(world / "val")
    presence = split.presence()["category"]
    report = zero_shot_report(_OracleClip(presence), split)
    single = int((split.num_objects == 1).sum())
    assert report["single_object_images"] == single
    if single:
        assert report["single_object_top1"] == 100.0
    unseen = [CATEGORIES.index(c) for c in UNSEEN_CATEGORIES]
    assert report["positive_rate_unseen"] == pytest.approx(100 * presence[:, unseen].mean().item(), abs=0.01)
    # columns without positives count as AP 0 (QKS protocol), so check only columns that have positives
    if (presence.sum(0) > 0).all():
        assert report["map_all"] == 100.0


def test_toy_templates_are_format_strings_with_one_slot():
    assert len(TOY_TEMPLATES) >= 8
    for template in TOY_TEMPLATES:
        assert template.count("{}") == 1
        assert "heart" in template.format("heart")


@pytest.mark.slow
def test_full_pretrain_learns_colour_and_aligns_text(tmp_path):
    """The default recipe on the default world, what it does reach (23 min on 2 quiet cores of the slow EPYC
    host on 2026-12-03, with the batch-16 ConvNeXt; the recipe before it: 12-23 min, 45 min with busy
    neighbours)."""
    from vlzoo.toyworld import default_world

    out = pretrain_toy_clips(ToyClipRecipe(), world=default_world(show_progress=False), out=tmp_path / "toyclip")
    report = json.loads((out / "report.json").read_text())["towers"]
    assert report["vit"]["probe_object_color"] >= 90 and report["convnext"]["probe_object_color"] >= 90
    for tower in ("vit", "convnext"):  # zero-shot colour through the LiT text tower (ConvNeXt: needs max pooling)
        assert report[tower]["single_object_color_top1"] >= 90
    assert report["vit"]["single_object_size_top1"] >= 60  # chance 33
    # the batch-16 ConvNeXt's mask-pooled features know shape (measured 57.7 % on 2 threads, 58.5 % on one)
    assert report["convnext"]["probe_object_category"] >= 50  # chance 6.25
    # and, through the MIL presence loss, so does its embedding: zero-shot 57.0 % on 2 threads, 58.1 % on one
    # (two seeds); 31.2 % at most without the loss
    assert report["convnext"]["single_object_top1"] >= 40


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="measured 2026-12-04 (ConvNeXt with the MIL presence loss at weight 12): single-object category "
    "top-1 12.9 % (ViT) / 57.0 % (ConvNeXt), unseen mAP 11.1 / 15.9 at a 13.9 % positive rate: neither "
    "embedding carries shape well enough within the budget (shared/README.md)",
)
def test_full_pretrain_meets_the_zero_shot_goals():
    """The issue's goals, on the cached default towers (trained if missing): >= 90 % single-object top-1, unseen
    mAP far above chance."""
    report = json.loads((pretrain_toy_clips() / "report.json").read_text())["towers"]
    assert max(r["single_object_top1"] for r in report.values()) >= 90
    assert all(r["map_unseen"] > 2 * r["positive_rate_unseen"] for r in report.values())
