"""Recipes that swap EnCodec for DAC and T5 for CLAP validate and generate end to end (tiny random models)."""

import pytest
import torch

from magnetkit.loading import load
from magnetkit.recipe import load_recipe
from magnetkit.testing.tiny import tiny_clap, tiny_dac_44khz

TINY = ["model.dim=32", "model.num_heads=2", "model.num_layers=2", "generation.progress=false"]


@pytest.fixture(scope="module")
def dac_folder(tmp_path_factory):
    return tiny_dac_44khz(tmp_path_factory.mktemp("dac44"))


@pytest.fixture(scope="module")
def clap_folder(tmp_path_factory):
    return tiny_clap(tmp_path_factory.mktemp("clap"))


def test_dac_recipe_generates_nine_codebooks_at_44khz(dac_folder, tiny_dir):
    recipe = load_recipe("example-dac-44khz")
    assert len(recipe.generation.decoding_steps) == recipe.model.num_codebooks == 9
    torch.manual_seed(0)
    pipe = load("example-dac-44khz", TINY + [f"codec.model={dac_folder}", f"conditioner.model={tiny_dir}/t5_random",
                                             "generation.decoding_steps=[2,1,1,1,1,1,1,1,1]"], device="cpu")
    assert (pipe.codec.sample_rate, pipe.codec.num_codebooks, pipe.codec.cardinality) == (44100, 9, 1024)
    out = pipe.generate(["warm analog synth pad"], duration=0.5, seed=0)
    assert out.codes.shape == (1, 9, 42)  # 43 frames at 86.13 Hz, cut to a multiple of the span
    assert out.audio.shape == (1, 1, 42 * 512) and out.sample_rate == 44100
    assert torch.isfinite(out.audio).all()


def test_clap_recipe_generates(clap_folder, tiny_dir):
    load_recipe("example-clap")
    pipe = load("example-clap", TINY + [f"conditioner.model={clap_folder}",
                                        f"codec.model={tiny_dir}/hf_encodec_32khz_random",
                                        "generation.decoding_steps=[2,1,1,1]"], device="cpu")
    out = pipe.generate(["upbeat acoustic guitar", "sad piano"], duration=0.5, seed=0)
    assert out.codes.shape == (2, 4, 24) and out.audio.shape == (2, 1, 24 * 640)


def test_mismatched_codec_and_model_are_refused(dac_folder, tiny_dir):
    from magnetkit.errors import RecipeError

    with pytest.raises(RecipeError, match="codec: 9 codebooks, but the model has 4"):
        load("example-clap", TINY + [f"codec.model={dac_folder}", "codec.name=dac",
                                     f"conditioner.model={tiny_dir}/t5_random", "conditioner.name=t5"], device="cpu")
