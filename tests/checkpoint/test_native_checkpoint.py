"""magnetkit's own checkpoint folders: model.safetensors + recipe.yaml."""

import os

import pytest
import torch
import yaml
from safetensors.torch import save_file

from magnetkit import CheckpointError
from magnetkit.checkpoint import (
    is_audiocraft_checkpoint,
    is_native_checkpoint,
    load_checkpoint,
    load_weights,
    save_checkpoint,
)
from magnetkit.model.config import ModelConfig
from magnetkit.model.transformer import MagnetTransformer

CONFIG = ModelConfig(dim=32, num_heads=2, num_layers=1, num_codebooks=2, cardinality=16)
RECIPE = {"model": CONFIG.model_dump(), "conditioner": {"name": "t5", "model": "t5-base"},
          "sampler": {"name": "top_p", "top_p": 0.9}, "seed": 7}


@pytest.fixture()
def parts():
    torch.manual_seed(0)
    return MagnetTransformer(CONFIG), torch.nn.ModuleDict({"output_proj": torch.nn.Linear(8, 32)})


def test_round_trip_is_bit_identical(parts, tmp_path):
    model, conditioner = parts
    save_checkpoint(tmp_path / "ckpt", model=model, conditioner=conditioner, recipe=RECIPE)
    assert is_native_checkpoint(tmp_path / "ckpt") and not is_audiocraft_checkpoint(tmp_path / "ckpt")
    checkpoint = load_checkpoint(tmp_path / "ckpt")
    assert checkpoint.recipe == RECIPE
    assert sorted(checkpoint.model_state) == sorted(model.state_dict())  # safetensors sorts names
    assert all(torch.equal(checkpoint.model_state[k], v) for k, v in model.state_dict().items())
    assert set(checkpoint.conditioner_state) == {"output_proj.weight", "output_proj.bias"}
    fresh_model = MagnetTransformer(ModelConfig(**checkpoint.recipe["model"]))
    fresh_conditioner = torch.nn.ModuleDict({"output_proj": torch.nn.Linear(8, 32)})
    load_weights(fresh_model, checkpoint.model_state, what="model")
    load_weights(fresh_conditioner, checkpoint.conditioner_state, what="conditioner")
    codes, condition = torch.randint(0, 17, (1, 2, 9)), torch.randn(1, 3, 32)
    with torch.no_grad():
        assert torch.equal(fresh_model.eval()(codes, condition, 1), model.eval()(codes, condition, 1))


def test_overwrite_leaves_no_temporary_files(parts, tmp_path):
    model, conditioner = parts
    save_checkpoint(tmp_path, model=model, conditioner=conditioner, recipe=RECIPE)
    with torch.no_grad():
        model.out_norm.bias.fill_(0.5)
    save_checkpoint(tmp_path, model=model, conditioner=conditioner, recipe={**RECIPE, "seed": 8})
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors", "recipe.yaml"]
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint.recipe["seed"] == 8 and torch.all(checkpoint.model_state["out_norm.bias"] == 0.5)


def test_audiocraft_folders_are_told_apart(tiny_dir, tmp_path):
    assert is_audiocraft_checkpoint(tiny_dir) and not is_native_checkpoint(tiny_dir)
    assert not is_native_checkpoint(tmp_path / "missing") and not is_audiocraft_checkpoint(tmp_path / "missing")


def test_bad_folders_are_refused(parts, tmp_path):
    model, conditioner = parts
    with pytest.raises(CheckpointError, match="recipe must be a dict"):
        save_checkpoint(tmp_path, model=model, conditioner=conditioner, recipe=[1, 2])
    with pytest.raises(CheckpointError, match="recipe.yaml"):
        load_checkpoint(tmp_path)
    save_file({"model.x": torch.zeros(1), "optimizer.y": torch.zeros(1)}, str(tmp_path / "model.safetensors"))
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(RECIPE))
    with pytest.raises(CheckpointError, match="optimizer.y"):
        load_checkpoint(tmp_path)
    (tmp_path / "recipe.yaml").write_text("- not\n- a mapping\n")
    with pytest.raises(CheckpointError, match="recipe mapping"):
        load_checkpoint(tmp_path)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(RECIPE))
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="safetensors"):
        load_checkpoint(tmp_path)


def test_wrong_shapes_are_refused_on_load(parts):
    model, _ = parts
    state = dict(model.state_dict())
    state["out_norm.weight"] = torch.ones(31)
    with pytest.raises(CheckpointError, match=r"wrong shapes: out_norm\.weight \[31\] != \[32\]"):
        load_weights(model, state, what="model")
