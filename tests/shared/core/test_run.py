"""vlzoo.run: atomic checkpoints, exact resume, metrics log and plot, seeding."""

import json
import os
import random

import numpy as np
import pytest
import torch

from vlzoo.run import (
    Checkpointer,
    MetricsLog,
    TrainLoop,
    atomic_save,
    atomic_write_text,
    capture_rng_state,
    epoch_permutation,
    load_checkpoint,
    plot_metrics,
    restore_rng_state,
    seed_everything,
)


def test_atomic_write_leaves_no_temp_and_replaces(tmp_path):
    p = atomic_write_text(tmp_path / "a" / "f.txt", "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    assert sorted(os.listdir(p.parent)) == ["f.txt"]


def test_atomic_write_failure_keeps_previous(tmp_path, monkeypatch):
    p = atomic_write_text(tmp_path / "f.txt", "old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(p, "new")
    assert p.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["f.txt"]


def test_rng_capture_restore_is_exact():
    seed_everything(5)
    state = capture_rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_rng_state_survives_weights_only_load(tmp_path):
    seed_everything(1)
    atomic_save({"rng": capture_rng_state()}, tmp_path / "s.pt")
    expected = torch.rand(4)
    seed_everything(99)
    assert not torch.equal(torch.rand(4), expected)
    restore_rng_state(load_checkpoint(tmp_path / "s.pt")["rng"])
    assert torch.equal(torch.rand(4), expected)


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="bad.pt"):
        load_checkpoint(tmp_path / "bad.pt")


def test_checkpoint_refuses_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(RuntimeError, match="evil.pt"):
        load_checkpoint(tmp_path / "evil.pt")


def test_checkpointer_round_trip_and_keep(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    ck = Checkpointer(tmp_path, keep=2)
    for step in (1, 2, 3):
        ck.save(step, model, opt, extra={"note": step})
    assert [p.name for p in ck.all()] == ["step_00000002.pt", "step_00000003.pt"]
    clone = torch.nn.Linear(3, 2)
    opt2 = torch.optim.Adam(clone.parameters(), lr=0.1)
    info = ck.resume(clone, opt2)
    assert info["step"] == 3 and info["extra"] == {"note": 3}
    for a, b in zip(model.state_dict().values(), clone.state_dict().values()):
        assert torch.equal(a, b)
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    assert Checkpointer(tmp_path / "empty").resume(clone) == {}


def _make_loop(run_dir, total=12, save_every=4):
    seed_everything(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
    y = x.sum(dim=1, keepdim=True)

    def batch_fn(step):
        perm = epoch_permutation(7, step // 4, 64)  # 4 batches of 16 per epoch
        idx = perm[(step % 4) * 16:(step % 4 + 1) * 16]
        return x[idx], y[idx]

    def step_fn(m, batch, step):
        xb, yb = batch
        return {"loss": torch.nn.functional.mse_loss(m(xb), yb)}

    return model, TrainLoop(model, opt, step_fn, batch_fn, total, run_dir, scheduler=sched, save_every=save_every)


def test_interrupted_then_resumed_run_matches_uninterrupted(tmp_path):
    model_a, loop_a = _make_loop(tmp_path / "a")
    out_a = loop_a.run()
    assert out_a["step"] == 12

    model_b, loop_b = _make_loop(tmp_path / "b")
    loop_b.run(stop_after=6)  # "crash" after step 6; the last checkpoint is step 4
    model_c, loop_c = _make_loop(tmp_path / "b")  # a fresh process: new objects, resumes from step 4
    torch.manual_seed(12345)  # a different global RNG state must not matter: it is restored
    out_c = loop_c.run()
    assert out_c["step"] == 12
    for a, c in zip(model_a.state_dict().values(), model_c.state_dict().values()):
        assert torch.equal(a, c)
    assert out_c["loss"] == out_a["loss"]
    log_a = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    log_b = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log_b] == list(range(12))
    assert log_a == log_b
    assert (tmp_path / "a" / "metrics.png").is_file()


def test_loss_decreases_and_nonfinite_loss_is_an_error(tmp_path):
    model, loop = _make_loop(tmp_path / "r", total=40, save_every=40)
    loop.run()
    log = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert np.mean([r["loss"] for r in log[-5:]]) < np.mean([r["loss"] for r in log[:5]])

    bad = TrainLoop(model, torch.optim.SGD(model.parameters(), lr=0.1),
                    lambda m, b, s: {"loss": torch.tensor(float("nan"), requires_grad=True)},
                    lambda s: None, 3, tmp_path / "nan")
    with pytest.raises(FloatingPointError, match="step 0"):
        bad.run()


def test_metrics_log_and_plot(tmp_path):
    log = MetricsLog(tmp_path / "m.jsonl")
    for s in range(5):
        log.write(step=s, loss=torch.tensor(1.0 / (s + 1)), acc=s * 10)
    out = log.plot()
    assert out is not None and out.stat().st_size > 0
    assert plot_metrics(tmp_path / "none.jsonl") is None
    (tmp_path / "broken.jsonl").write_text('{"step": 1}\nnot json\n')
    with pytest.raises(ValueError, match="broken.jsonl:2"):
        plot_metrics(tmp_path / "broken.jsonl")


def test_epoch_permutation_deterministic():
    assert torch.equal(epoch_permutation(1, 2, 10), epoch_permutation(1, 2, 10))
    assert not torch.equal(epoch_permutation(1, 2, 50), epoch_permutation(1, 3, 50))
