"""The decoding engine and the pipeline on a tiny random model (fake codec and conditioner)."""

import pytest
import torch

from magnetkit.engine import KEEP_SCORE, Guidance, guide, initial_scores, units_fully_known
from magnetkit.errors import RecipeError, UsageError
from magnetkit.model.config import ModelConfig
from magnetkit.model.transformer import MagnetTransformer
from magnetkit.pipeline import Pipeline, num_windows
from magnetkit.plugins import register_plugin, unregister_plugin
from magnetkit.recipe import load_recipe
from magnetkit.testing import FakeCodec, FakeCodecConfig, FakeConditioner, FakePlugin, sine

CARD = 64


@pytest.fixture(scope="module")
def fakes():
    register_plugin(FakePlugin(), "fakes")
    yield
    unregister_plugin("fakes")


def make_pipeline(*overrides, segment=2.0):
    recipe = load_recipe({"codec": {"name": "fake", "cardinality": CARD}, "conditioner": {"name": "fake"},
                          "generation": {"duration": 1.0, "decoding_steps": [3, 2, 2, 1], "progress": False}},
                         list(overrides))
    torch.manual_seed(0)
    model = MagnetTransformer(ModelConfig(dim=32, num_heads=2, num_layers=2, num_codebooks=4, cardinality=CARD,
                                          segment_duration=segment))
    conditioner = FakeConditioner(output_dim=32)
    return Pipeline(recipe, model, conditioner, FakeCodec(FakeCodecConfig(cardinality=CARD)), device="cpu")


def test_pure_helpers():
    logits = torch.tensor([[1.0, 2.0], [0.0, 1.0]])
    assert torch.equal(guide(logits, 1, 3.0), torch.tensor([[3.0, 4.0]]))  # null + (cond - null) * 3
    frames = torch.tensor([[True, True, True, True, False, False]])
    assert units_fully_known(frames, 6, 2).tolist() == [[True, False]]
    assert initial_scores(frames, 1, 6, 2, torch.device("cpu")).tolist() == [[KEEP_SCORE, 0.0]]
    assert Guidance(torch.zeros(1), cfg_max=10, cfg_min=1).coefficient(torch.tensor(1.0)) == 10
    assert num_windows(100, 100, 20) == 1 and num_windows(101, 100, 20) == 2 and num_windows(260, 100, 20) == 3


def test_generate_shapes_progress_and_seed(fakes):
    pipe = make_pipeline()
    calls = []
    out = pipe.generate(["happy rock", "sad piano"], seed=3, callback=lambda d, t: calls.append((d, t)))
    assert out.codes.shape == (2, 4, 48)  # 50 frames cut to a multiple of the span (3)
    assert out.codes.min() >= 0 and out.codes.max() < CARD
    assert out.audio.shape == (2, 1, 48 * 160) and out.sample_rate == 8000
    assert calls == [(i, 8) for i in range(1, 9)]
    again = pipe.generate(["happy rock", "sad piano"], seed=3)
    other = pipe.generate(["happy rock", "sad piano"], seed=4)
    assert torch.equal(out.codes, again.codes) and not torch.equal(out.codes, other.codes)


def test_unconditional_and_negative_prompts(fakes):
    pipe = make_pipeline("sampler.name=greedy")
    unconditional = pipe.generate(None, num_samples=3, seed=0)
    assert unconditional.codes.shape[0] == 3
    plain = pipe.generate(["calm piano"], seed=0)
    negative = pipe.generate(["calm piano"], negative="loud drums", seed=0)
    assert plain.codes.shape == negative.codes.shape and not torch.equal(plain.codes, negative.codes)


def test_longer_than_the_window_continues_each_window(fakes):
    pipe = make_pipeline("generation.window_overlap=0.5", segment=1.0)  # window 50 frames, overlap 25
    steps = []
    out = pipe.generate(["a long piece"], duration=2.0, seed=1, callback=lambda d, t: steps.append(t))
    assert 90 <= out.codes.shape[-1] <= 100
    assert steps[0] == 8 * num_windows(100, 50, 25)
    # The carried-over frames are a prompt: continuing the first window reproduces them unchanged.
    first = pipe.generate(["a long piece"], duration=1.0, seed=1).codes
    assert torch.equal(out.codes[..., : first.shape[-1]], first)


def test_infill_keeps_frames_outside_the_range(fakes):
    pipe = make_pipeline()
    audio = sine(0.96, 8000, batch=2) * torch.linspace(0.2, 1.0, 7680)
    original = pipe.encode(audio, 8000)
    out = pipe.infill(audio, 8000, ["fill it", "fill it too"], start=0.3, end=0.6, seed=0)
    first, last = 15, 30
    assert torch.equal(out.codes[..., :first], original[..., :first])
    assert torch.equal(out.codes[..., last:], original[..., last:])
    assert not torch.equal(out.codes[..., first:last], original[..., first:last])


def test_continue_audio_keeps_the_prompt(fakes):
    pipe = make_pipeline()
    audio = sine(0.3, 8000) * 0.5
    prompt = pipe.encode(audio, 8000)
    out = pipe.continue_audio(audio, 8000, "go on", duration=0.96, seed=0)
    assert torch.equal(out.codes[..., : prompt.shape[-1]], prompt)


def test_clear_errors(fakes):
    pipe = make_pipeline()
    with pytest.raises(UsageError, match="empty"):
        pipe.generate([""])
    with pytest.raises(UsageError, match="duration must be > 0"):
        pipe.generate(["x"], duration=0)
    with pytest.raises(UsageError, match="negative prompt"):
        pipe.generate(["x", "y"], negative=["a", "b", "c"])
    with pytest.raises(UsageError, match="shorter than"):
        pipe.continue_audio(sine(2.0, 8000), 8000, "x", duration=1.0)
    with pytest.raises(RecipeError, match=r"generation.decoding_steps: 3 entries, but the model has 4 codebooks"):
        make_pipeline("generation.decoding_steps=[4,2,2]")
