"""Training never loses work: divergence, resume settings, corrupt checkpoints, the out_dir lock, a full disk."""

import errno
import os
import socket
import subprocess
import sys

import pytest
import torch
from train_helpers import tiny_recipe, write_dataset, write_recipe

from magnetkit.errors import CheckpointError, RecipeError, UsageError
from magnetkit.train import checkpointing as ckpt
from magnetkit.train import loop, safety
from magnetkit.train.loop import train
from magnetkit.train.metrics import METRICS_FILE, read_log
from magnetkit.train.optim import lr_factor


@pytest.fixture
def setup(tmp_path, fakes):
    manifest = write_dataset(tmp_path / "data", count=4)

    def recipe(**train_settings):
        return write_recipe(tmp_path / "recipe.yaml", tiny_recipe(tmp_path / "run", manifest, **train_settings))

    return tmp_path / "run", recipe


def steps_saved(out_dir):
    return [step for step, _ in ckpt.list_checkpoints(out_dir)]


def test_a_diverging_run_stops_naming_the_step_and_keeps_its_good_checkpoints(setup, monkeypatch):
    out_dir, recipe = setup
    original = loop.train_step

    def poisoned(run, step):
        metrics = original(run, step)
        if step == 2:  # the 3rd step: the weights and the loss go NaN
            with torch.no_grad():
                next(run.lm.parameters()).fill_(float("nan"))
            metrics["loss"] = torch.tensor(float("nan"))
        return metrics

    monkeypatch.setattr(loop, "train_step", poisoned)
    with pytest.raises(safety.TrainingDiverged, match="diverged at step 3"):
        train(recipe(steps=8, save_every=1, keep_last=1, log_every=5))
    assert steps_saved(out_dir) == [2]  # the last good one, not pruned for a bad one
    state = ckpt.load_state(ckpt.checkpoint_dir(out_dir, 2))
    assert all(torch.isfinite(t).all() for t in state["model"].values())
    assert not (out_dir / safety.LOCK_FILE).exists()  # the lock is released on error


def test_nan_weights_with_a_finite_loss_are_not_saved(setup, monkeypatch):
    out_dir, recipe = setup
    original = loop.train_step

    def poisoned(run, step):
        metrics = original(run, step)
        if step == 1:
            with torch.no_grad():
                next(run.lm.parameters()).fill_(float("inf"))
        return metrics

    monkeypatch.setattr(loop, "train_step", poisoned)
    with pytest.raises(safety.TrainingDiverged, match="diverged at step 2: weights are NaN or infinite"):
        train(recipe(steps=4, save_every=2, log_every=10))
    assert steps_saved(out_dir) == []


def test_resume_applies_a_changed_learning_rate_and_logs_it(setup, capsys):
    out_dir, recipe = setup
    train(recipe(steps=4, save_every=2, lr=3e-3))
    capsys.readouterr()
    train(recipe(steps=6, save_every=2, lr=1e-3))
    out = capsys.readouterr().out + capsys.readouterr().err
    assert "resume applies a changed setting: train.lr: 0.003 -> 0.001" in out
    lrs = {r["step"]: r["lr"] for r in read_log(out_dir / METRICS_FILE) if r["split"] == "train"}
    assert lrs[5] == pytest.approx(1e-3 * lr_factor(4, 2, 6, 0.0))


def test_resume_refuses_a_setting_it_cannot_honour(setup):
    _out_dir, recipe = setup
    train(recipe(steps=2, save_every=2))
    with pytest.raises(RecipeError) as info:
        train(recipe(steps=4, save_every=2, seed=7, batch_size=2))
    message = str(info.value)
    assert "train.seed: 0 -> 7" in message and "train.batch_size: 4 -> 2" in message
    assert "another train.out_dir" in message


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(setup, capsys):
    out_dir, recipe = setup
    train(recipe(steps=4, save_every=2))
    newest = ckpt.checkpoint_dir(out_dir, 4)
    (newest / ckpt.STATE_FILE).write_bytes(b"not a checkpoint")
    capsys.readouterr()
    train(recipe(steps=6, save_every=2))
    out = capsys.readouterr().out
    assert "is unreadable" in out and "resuming from the previous one" in out
    assert f"resumed from {ckpt.checkpoint_dir(out_dir, 2)}" in out
    assert (out_dir / "checkpoints" / "step-0000004.corrupt").is_dir()
    assert steps_saved(out_dir)[-1] == 6


def test_a_second_run_on_the_same_out_dir_is_refused(setup):
    out_dir, recipe = setup
    out_dir.mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out_dir / safety.LOCK_FILE).write_text(f"{socket.gethostname()}:{sleeper.pid}")
        with pytest.raises(UsageError, match=f"in use by another run \\(pid {sleeper.pid}"):
            train(recipe(steps=2))
        assert steps_saved(out_dir) == []
    finally:
        sleeper.kill()
        sleeper.wait()
    train(recipe(steps=2))  # its process is gone: a stale lock is taken over
    assert steps_saved(out_dir) == [2]


def test_out_dir_that_is_a_file_or_not_writable(setup, monkeypatch):
    out_dir, recipe = setup
    out_dir.write_text("a file")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        train(recipe(steps=2))
    out_dir.unlink()

    def read_only(self, data):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(type(out_dir), "write_bytes", read_only)
    with pytest.raises(UsageError, match="cannot be written: Permission denied"):
        train(recipe(steps=2))


def test_stage_weights_that_do_not_fit_the_model_are_refused_before_any_encoding(setup, monkeypatch):
    out_dir, recipe = setup
    monkeypatch.setattr(loop, "prepare_tokens", lambda *a, **k: pytest.fail("encoded before checking"))
    with pytest.raises(UsageError, match="stage_weights has 3 weights"):
        train(recipe(steps=2, stage_weights=[1, 1, 1]))


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint(setup, monkeypatch):
    out_dir, recipe = setup
    train(recipe(steps=2, save_every=2))
    before = sorted(p.name for p in ckpt.checkpoint_dir(out_dir, 2).iterdir())

    def full(folder, state):
        (folder / ckpt.STATE_FILE).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt, "save_state", full)
    with pytest.raises(CheckpointError, match="the disk is full; nothing was replaced"):
        train(recipe(steps=4, save_every=2))
    assert steps_saved(out_dir) == [2]
    assert sorted(p.name for p in ckpt.checkpoint_dir(out_dir, 2).iterdir()) == before
    assert not list((out_dir / "checkpoints").glob(".step-*"))  # no temporary folder left
    ckpt.load_state(ckpt.checkpoint_dir(out_dir, 2))


def test_a_non_utf8_manifest_is_one_error(tmp_path, fakes):
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_bytes('{"path": "a.wav", "caption": "caf\xe9"}\n'.encode("latin-1"))
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(tmp_path / "run", manifest))
    with pytest.raises(UsageError, match="not UTF-8"):
        train(recipe)
