"""A run killed with SIGKILL and resumed repeats the uninterrupted run exactly."""

import signal
import subprocess
import time

from safetensors.torch import load_file
from train_helpers import child_env, cli_command, losses, run_cli, tiny_recipe, write_dataset, write_recipe

from magnetkit.train.checkpointing import list_checkpoints
from magnetkit.train.loop import train


def recipe(tmp_path, name, manifest):
    data = tiny_recipe(tmp_path / name, manifest, steps=60, batch_size=4, grad_accum=2, lr=3e-3, warmup_steps=5,
                       save_every=5, keep_last=2, ema_decay=0.9, ema_every=3, cfg_dropout=0.3)
    data["model"]["dropout"] = 0.1  # draws from torch's global generator: its saved state matters
    data["data"]["cache"] = str(tmp_path / "tokens")
    return str(write_recipe(tmp_path / f"{name}.yaml", data))


def test_sigkill_then_resume_reproduces_the_loss_sequence_exactly(tmp_path, fakes):
    manifest = write_dataset(tmp_path / "data", count=6, seconds=1.2)
    train(recipe(tmp_path, "whole", manifest))  # in this process, on one thread like the subprocesses

    # The same run, killed without warning once it has written a few checkpoints.
    killed = tmp_path / "killed"
    process = subprocess.Popen(cli_command("train", recipe(tmp_path, "killed", manifest)), env=child_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any(step >= 10 for step, _ in list_checkpoints(killed)):
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint within a minute"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    assert not (killed / "model").exists()  # it really stopped mid-training
    stopped_at = list_checkpoints(killed)[-1][0]
    assert stopped_at < 60

    run_cli("train", recipe(tmp_path, "killed", manifest))
    assert losses(killed) == losses(tmp_path / "whole")  # every step's loss, bit for bit
    assert [step for step, _ in losses(killed)] == list(range(1, 61))
    a = load_file(str(killed / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "whole" / "model" / "model.safetensors"))
    assert all(a[key].equal(b[key]) for key in a)
    assert [step for step, _ in list_checkpoints(killed)] == [55, 60]  # keep_last=2


def test_sigterm_checkpoints_the_current_step_and_stops(tmp_path):
    manifest = write_dataset(tmp_path / "data", count=4)
    path = recipe(tmp_path, "stopped", manifest)
    process = subprocess.Popen(cli_command("train", path), env=child_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(losses(tmp_path / "stopped")) < 3:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "the checkpoint is saved" in stderr and "Traceback" not in stderr
    step = list_checkpoints(tmp_path / "stopped")[-1][0]
    assert step == losses(tmp_path / "stopped")[-1][0] < 60  # the step it stopped at
