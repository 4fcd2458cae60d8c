"""Fine-tuning an official (audiocraft-format) checkpoint, and exporting the result back to audiocraft's format."""

import pytest
import torch
from train_helpers import write_dataset, write_recipe

from magnetkit.checkpoint import load_checkpoint, read_audiocraft_checkpoint
from magnetkit.errors import CheckpointError
from magnetkit.recipe import load_recipe
from magnetkit.train.build import build_modules
from magnetkit.train.export import compression_source, export_run
from magnetkit.train.loop import train


def finetune_recipe(tmp_path, tiny_dir, manifest, **train):
    return {
        "codec": {"name": "encodec", "model": str(tiny_dir / "codec_variant")},  # a full audiocraft EnCodec
        "conditioner": {"name": "t5", "model": str(tiny_dir / "t5_random")},
        "generation": {"progress": False},
        # The fixture's window is 10 s; 2 s clips are padded (and the padding takes no loss).
        "data": {"train": str(manifest), "min_segment_ratio": 0.1},
        "train": {"init_from": str(tiny_dir), "steps": 2, "batch_size": 2, "lr": 1e-9, "warmup_steps": 0,
                  "ema_decay": None, "out_dir": str(tmp_path / "run"), "progress": False, "tensorboard": False,
                  **train},
    }


def test_fine_tune_starts_from_the_official_weights_and_exports_back(tmp_path, tiny_dir):
    manifest = write_dataset(tmp_path / "data", count=2, seconds=2.0)
    final = train(write_recipe(tmp_path / "ft.yaml", finetune_recipe(tmp_path, tiny_dir, manifest)))
    official = read_audiocraft_checkpoint(tiny_dir)
    tuned = load_checkpoint(final)
    assert tuned.recipe["model"] == official.model_config.model_dump()  # the model came from the checkpoint
    assert "init_from" not in tuned.recipe["train"]  # the folder itself is now the weights
    for key, value in official.model_state.items():  # a learning rate of 1e-9 leaves them in place
        torch.testing.assert_close(tuned.model_state[key], value.float(), atol=1e-6, rtol=0)

    # Back to audiocraft's format (audiocraft names T5 by hub id: the random local T5 stands in for t5-base).
    recipe = load_recipe(final / "recipe.yaml")
    model, conditioner = build_modules(recipe, tuned)
    conditioner.config = conditioner.config.model_copy(update={"model": "t5-base"})
    export_run(recipe, model, conditioner, tmp_path / "audiocraft")
    exported = read_audiocraft_checkpoint(tmp_path / "audiocraft")
    assert exported.model_config == official.model_config
    assert all(exported.model_state[k].equal(tuned.model_state[k]) for k in tuned.model_state)
    assert (tmp_path / "audiocraft" / "compression_state_dict.bin").read_bytes() == \
        (tiny_dir / "codec_variant" / "compression_state_dict.bin").read_bytes()
    assert compression_source(load_recipe(finetune_recipe(tmp_path, tiny_dir, manifest)
                                          | {"codec": {"name": "encodec", "model": "facebook/encodec_32khz"}})) \
        == "facebook/encodec_32khz"


def test_a_model_section_that_does_not_match_the_starting_weights_is_refused(tmp_path, tiny_dir):
    manifest = write_dataset(tmp_path / "data", count=1)
    recipe = finetune_recipe(tmp_path, tiny_dir, manifest)
    recipe["model"] = {**read_audiocraft_checkpoint(tiny_dir).model_config.model_dump(), "dim": 128}
    with pytest.raises(CheckpointError, match="model.dim: recipe 128, checkpoint 64"):
        train(write_recipe(tmp_path / "ft.yaml", recipe))
