"""Generation reproduces audiocraft's outputs on the tiny fixture exactly (argmax and sampling)."""

import numpy as np
import pytest
import torch

from magnetkit.cli import main
from magnetkit.loading import load

GREEDY = ["sampler.name=greedy", "sampler.temperature=3.0", "generation.decoding_steps=[4,2,2,2]",
          "generation.cfg_max=10", "generation.cfg_min=1", "generation.progress=false"]


@pytest.fixture(scope="module")
def components(tiny_dir):
    return [f"conditioner.model={tiny_dir}/t5_random", f"codec.model={tiny_dir}/hf_encodec_32khz_random"]


def record_inputs(pipeline, batch):
    """Wrap the transformer to record the codes given at each call (first ``batch`` rows)."""
    seen, forward = [], pipeline.model.forward

    def spy(codes, *args, **kwargs):
        seen.append(codes[:batch].clone())
        return forward(codes, *args, **kwargs)

    pipeline.model.forward = spy
    return seen


@pytest.mark.parametrize("name, texts, duration, extra", [
    ("gen_a", ["happy rock", "sad piano"], 3.0, []),
    ("gen_b", None, 2.0, []),
    ("gen_c", ["happy rock", "sad piano"], 3.0, ["scheduler.arrangement=stride1"]),
])
def test_greedy_generation_step_by_step(tiny_dir, components, reference, name, texts, duration, extra):
    pipeline = load(tiny_dir, components + GREEDY + extra, device="cpu")
    texts = texts or [str(t) for t in reference["gen_b_text"]]
    seen = record_inputs(pipeline, len(texts))
    result = pipeline.generate(texts, duration=duration)
    expected_steps = reference[f"{name}_step_inputs"].astype(np.int64)
    assert len(seen) == len(expected_steps) == 10
    for step, (got, want) in enumerate(zip(seen, expected_steps)):
        assert np.array_equal(got.numpy(), want), f"{name}: LM inputs differ at call {step}"
    np.testing.assert_array_equal(result.codes.numpy(), reference[f"{name}_codes"])


def test_prompt_continuation(tiny_dir, components, reference):
    pipeline = load(tiny_dir, components + GREEDY, device="cpu")
    prompt = torch.from_numpy(reference["gen_p_prompt"])
    result = pipeline.continue_codes(prompt, ["happy rock", "sad piano"], frames=150)
    np.testing.assert_array_equal(result.codes.numpy(), reference["gen_p_codes"])


def test_top_p_sampling_draws_like_audiocraft(tiny_dir, components, reference):
    pipeline = load(tiny_dir, components + ["generation.decoding_steps=[4,2,2,2]", "generation.progress=false",
                                          "sampler.audiocraft_stream=true"],
                    device="cpu")
    assert pipeline.recipe.sampler.name == "top_p"  # audiocraft's API default: top-p 0.9, temperature 3
    result = pipeline.generate(["happy rock", "sad piano"], duration=3.0, seed=42)
    np.testing.assert_array_equal(result.codes.numpy(), reference["gen_s_codes"])


def test_audiocraft_api_defaults_for_a_folder_without_recipe(tiny_dir, components):
    recipe = load(tiny_dir, components, device="cpu").recipe
    assert recipe.generation.decoding_steps == [20, 10, 10, 10]
    assert (recipe.generation.cfg_max, recipe.generation.cfg_min) == (10.0, 1.0)
    assert recipe.sampler.config.temperature == 3.0 and recipe.sampler.config.top_p == 0.9
    assert recipe.scheduler.name == "cosine" and recipe.scheduler.config.arrangement == "nonoverlap"


def test_cli_reproduces_gen_a(tiny_dir, reference, tmp_path, capsys):
    codes = tmp_path / "codes.npy"
    code = main(["generate", str(tiny_dir), "happy rock", "sad piano",
                 f"conditioner.model={tiny_dir}/t5_random", f"codec.model={tiny_dir}/hf_encodec_32khz_random",
                 "sampler.name=greedy", "sampler.temperature=3.0", "generation.decoding_steps=[4,2,2,2]",
                 "generation.duration=3", "generation.cfg_max=10", "generation.cfg_min=1",
                 "--codes-out", str(codes), "-o", str(tmp_path / "out"), "--quiet"])
    assert code == 0
    np.testing.assert_array_equal(np.load(codes), reference["gen_a_codes"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["00_happy_rock.wav", "01_sad_piano.wav"]
    assert "real-time factor" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["happy rock", "generation.duration=0"], "generation.duration: Input should be greater than 0"),
    (["", ], "empty"),
    (["happy rock", "generation.decoding_steps=[4,2]"], "generation.decoding_steps: 2 entries"),
])
def test_cli_errors_are_one_line(tiny_dir, components, capsys, args, message):
    code = main(["generate", str(tiny_dir), *args, *components, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
