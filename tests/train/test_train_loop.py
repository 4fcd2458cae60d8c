"""The training loop end to end in-process: a tiny model overfits, its checkpoint generates, bad files are skipped."""

import json
import math

import numpy as np
import pytest
import torch
from train_helpers import losses, tiny_recipe, write_dataset, write_recipe

from magnetkit.audio import read_audio
from magnetkit import training_seconds
from magnetkit.cli import main
from magnetkit.errors import RecipeError
from magnetkit.testing.fakes import FakeCodec, FakeCodecConfig
from magnetkit.train.checkpointing import list_checkpoints, load_state
from magnetkit.train.loop import train


def test_tiny_model_overfits_and_generate_loads_its_checkpoint(tmp_path, fakes, capsys):
    manifest = write_dataset(tmp_path / "data", count=4, seconds=1.0, corrupt=True)
    recipe = tiny_recipe(tmp_path / "run", manifest, manifest, steps=300, lr=1e-2, warmup_steps=10, batch_size=8,
                         cfg_dropout=0.0, log_every=50, valid_every=300, save_every=150, keep_last=1)
    recipe["model"]["segment_duration"] = 1.0  # whole clips: the model can memorise them
    recipe["generation"]["duration"] = 1.0
    final = train(write_recipe(tmp_path / "recipe.yaml", recipe))
    printed = capsys.readouterr().out

    # The corrupt file is skipped, counted and reported; training went on without it.
    assert "4 files encoded" in printed and "1 skipped" in printed and "broken.wav" in printed
    trained = losses(tmp_path / "run")
    assert trained[0][1] > 2.0  # about ln(16) = 2.77 at the start
    valid = losses(tmp_path / "run", "valid")
    assert valid[-1][0] == 300 and valid[-1][1] < 0.1 * math.log(16)
    # keep_last=1: only the final checkpoint remains, and it restores the run's step and data position.
    (step, folder), = list_checkpoints(tmp_path / "run")
    state = load_state(folder)
    assert step == 300 and state["step"] == 300 and state["position"] == 300 * 8

    # The final folder is a magnetkit checkpoint that `magnetkit generate` loads; greedy decoding
    # without guidance reproduces the memorised clip.
    codes_file = tmp_path / "codes.npy"
    assert main(["generate", str(final), CAPTION0, "sampler.name=greedy", "generation.cfg_max=1",
                 "generation.cfg_min=1", "-o", str(tmp_path / "out"), "--seed", "0", "--quiet",
                 "--codes-out", str(codes_file)]) == 0
    generated = torch.from_numpy(np.load(codes_file))[0]  # [K, T]
    target = FakeCodec(FakeCodecConfig(cardinality=16)).encode(read_audio(tmp_path / "data" / "clip0.wav")[0][None])[0]
    frames = generated.shape[-1]
    assert (generated[0] == target[0, :frames]).float().mean() > 0.9


CAPTION0 = "low slow hum"


def test_metrics_log_and_samples(tmp_path, fakes):
    manifest = write_dataset(tmp_path / "data", count=3)
    recipe = tiny_recipe(tmp_path / "run", manifest, manifest, steps=4, log_every=2, valid_every=2,
                         generate_every=4, sample_texts=["mid pulse"], tensorboard=True)
    train(write_recipe(tmp_path / "recipe.yaml", recipe))
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["split"], r["step"]) for r in records] == [("train", 2), ("valid", 2), ("train", 4), ("valid", 4)]
    assert {"loss", "grad_norm", "lr", "sec_per_step"} <= set(records[0])
    assert {"loss", "loss_q0", "loss_q3"} <= set(records[1])
    assert list((tmp_path / "run" / "samples" / "step-0000004").glob("00_mid_pulse.wav"))
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    steps = [r["sec_per_step"] for r in records if r["split"] == "train"]
    assert training_seconds(tmp_path / "run") == pytest.approx(2 * steps[0] + 2 * steps[1])
    # a finished run called again trains nothing; its logged time stays
    train(write_recipe(tmp_path / "recipe.yaml", recipe))
    assert training_seconds(tmp_path / "run") == pytest.approx(2 * steps[0] + 2 * steps[1])
    assert training_seconds(tmp_path / "nothing") is None


def test_recipe_problems_are_reported_before_training(tmp_path, fakes):
    manifest = write_dataset(tmp_path / "data", count=2)
    recipe = tiny_recipe(tmp_path / "run", manifest, batch_size=3, grad_accum=2)
    with pytest.raises(RecipeError, match="train.batch_size: 3 is not a multiple"):
        train(write_recipe(tmp_path / "recipe.yaml", recipe))
    recipe = tiny_recipe(tmp_path / "run", manifest)
    recipe["model"]["cardinality"] = 32  # the fake codec makes 16
    with pytest.raises(RecipeError, match="model.cardinality: 32, but the codec has 16"):
        train(write_recipe(tmp_path / "recipe.yaml", recipe))
    del recipe["data"]
    with pytest.raises(RecipeError, match="data: required for training"):
        train(write_recipe(tmp_path / "recipe.yaml", recipe))


@pytest.mark.slow  # real EnCodec and T5 (tiny random ones): a few seconds
def test_shipped_tiny_recipe_trains_with_real_codec_and_conditioner(tmp_path, tiny_dir):
    manifest = write_dataset(tmp_path / "data", count=3, seconds=2.5)
    final = train("train-tiny", [
        f"data.train={manifest}", f"data.valid={manifest}", f"data.cache={tmp_path / 'tokens'}",
        f"codec.model={tiny_dir / 'hf_encodec_32khz_random'}", f"conditioner.model={tiny_dir / 't5_random'}",
        "train.steps=2", "train.batch_size=2", "train.warmup_steps=1", f"train.out_dir={tmp_path / 'run'}",
        "train.progress=false", "train.tensorboard=false", "train.generate_every=2", "generation.decoding_steps=[2,1,1,1]",
    ])
    assert [step for step, _ in losses(tmp_path / "run", "valid")] == [2]
    assert len(list((tmp_path / "run" / "samples" / "step-0000002").glob("*.wav"))) == 2
    assert main(["generate", str(final), "a slow low sine arpeggio", "generation.decoding_steps=[2,1,1,1]",
                 "-o", str(tmp_path / "out"), "--quiet"]) == 0
