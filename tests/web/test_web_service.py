"""The web page's logic without a browser: settings, model cache, requests, files, spectrograms, the command."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import magnetkit
from magnetkit import UsageError
from magnetkit.cli import main
from magnetkit_web import service
from magnetkit_web.service import DEFAULT_MODEL, MODES, ModelCache, Settings

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one torch thread

PROMPT = "a fast high square-wave arpeggio"


@pytest.fixture(scope="module")
def cache() -> ModelCache:
    """One cache (the embedded default model) for the module, as one server holds one."""
    return ModelCache()


def settings(**changes) -> Settings:
    """A short request for the default model with its shipped sampler settings."""
    values = dict(prompt=PROMPT, duration=1.2, seed=0, temperature=1.0, cfg_max=3.0, cfg_min=1.0)
    return Settings(**{**values, **changes})


# --------------------------------------------------------------------------------- settings
def test_overrides_carry_only_the_chosen_samplers_parameters():
    top_p = Settings(prompt="x", sampler="top_p", temperature=2.0, top_p=0.8, top_k=7).overrides()
    assert "sampler.top_p=0.8" in top_p and not any(o.startswith("sampler.top_k") for o in top_p)
    top_k = Settings(prompt="x", sampler="top_k", top_k=7.0).overrides()
    assert "sampler.top_k=7" in top_k and not any(o.startswith("sampler.top_p") for o in top_k)
    greedy = Settings(prompt="x", sampler="greedy", cfg_max=5, cfg_min=2, decoding_steps="[4, 2,2, 2]").overrides()
    assert {"sampler.name=greedy", "generation.cfg_max=5", "generation.cfg_min=2",
            "generation.decoding_steps=[4, 2,2, 2]"} <= set(greedy)
    with pytest.raises(UsageError, match="Top-k must be a whole number"):
        Settings(prompt="x", sampler="top_k", top_k=2.5).overrides()


def test_page_values_become_settings_and_an_empty_number_is_a_readable_error():
    page = {"prompt": "x", "model": None, "negative": None, "duration": 2, "samples": 2.0, "seed": 5,
            "mode": MODES[0], "audio_prompt": None, "infill_start": 0, "infill_end": 1, "sampler": "top_k",
            "temperature": 2, "top_p": 0.5, "top_k": 10, "cfg_max": 4, "cfg_min": 1, "decoding_steps": None}
    got = service.settings_from_page(page)
    assert got.model == DEFAULT_MODEL and got.negative == "" and got.decoding_steps == ""
    assert got.duration == 2.0 and got.samples == 2.0 and got.top_k == 10.0 and got.seed == 5
    with pytest.raises(UsageError, match="CFG start: give a number"):
        service.settings_from_page({**page, "cfg_max": None})


def test_model_choices_list_the_default_model_and_inference_recipes_only(tmp_path):
    values = [value for _, value in service.model_choices()]
    assert values[0] == DEFAULT_MODEL and values.count(DEFAULT_MODEL) == 1
    assert "magnet-small-10secs" in values and "audio-magnet-small" in values
    assert not any(v.startswith("train-") or v == "demo-train" for v in values)  # no weights to sample from
    assert service.model_choices(str(tmp_path))[1] == (str(tmp_path), str(tmp_path))  # the server's own SOURCE
    assert [v for _, v in service.model_choices("magnet-small-10secs")].count("magnet-small-10secs") == 1


def test_the_cache_loads_each_model_once_and_drops_the_least_recently_used(monkeypatch):
    loads = []
    monkeypatch.setattr(magnetkit, "load", lambda source, device=None: loads.append(source) or object())
    cache = ModelCache(capacity=2)
    first = cache.get(DEFAULT_MODEL)
    assert cache.get(None) is first and cache.get(" ") is first and loads == [None]  # None: the default model
    cache.get("a")
    cache.get(DEFAULT_MODEL)  # now "a" is the least recently used
    cache.get("b")
    assert loads == [None, "a", "b"] and DEFAULT_MODEL in cache and "a" not in cache
    cache.get("a")
    assert loads == [None, "a", "b", "a"]


# --------------------------------------------------------------------------------- requests
@pytest.mark.slow  # the first generation: loads the model, compiles the sampling kernel
def test_a_request_writes_every_sample_its_codes_and_spectrograms_and_reports_progress(cache, tmp_path):
    steps = []
    result = service.generate(cache, settings(samples=2), tmp_path, lambda done, total: steps.append((done, total)))
    total = sum(cache.get(None).recipe.generation.decoding_steps)
    assert steps == [(i, total) for i in range(1, total + 1)]
    assert [p.name for p in result.files] == ["sample_1.wav", "sample_2.wav", "codes.npy"]
    for path in result.audio:
        wav, sr = sf.read(path, always_2d=True)
        assert sr == 16000 and wav.shape[0] == round(1.2 * sr) and np.sqrt(np.mean(wav ** 2)) > 1e-3
    codes = np.load(result.codes)
    assert codes.shape == (2, 4, 60) and codes.dtype == np.int64
    assert [image.shape for image in result.spectrograms] == [(160, 640, 3)] * 2
    assert result.summary.startswith("2 x 1.20 s at 16000 Hz")


@pytest.mark.slow  # three generations
def test_the_same_seed_gives_the_same_codes_and_settings_change_them(cache, tmp_path):
    a = np.load(service.generate(cache, settings(), tmp_path / "a").codes)
    b = np.load(service.generate(cache, settings(), tmp_path / "b").codes)
    greedy = np.load(service.generate(cache, settings(sampler="greedy"), tmp_path / "c").codes)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, greedy)
    assert cache.get(None).recipe.sampler.name == "top_p"  # the cached model keeps its own settings


@pytest.mark.slow  # three generations
def test_continuation_keeps_the_audio_prompt_and_infill_keeps_the_outside(cache, tmp_path):
    prompt = service.generate(cache, settings(duration=0.6), tmp_path / "prompt").audio[0]
    pipeline = cache.get(None)
    wav, sr = sf.read(prompt, dtype="float32", always_2d=True)
    import torch

    prompt_codes = pipeline.encode(torch.from_numpy(wav.T.copy()), sr)  # [1, K, 30]
    continued = service.generate(cache, settings(mode=MODES[1], audio_prompt=str(prompt)), tmp_path / "cont")
    codes = np.load(continued.codes)
    assert codes.shape == (1, 4, 60)
    np.testing.assert_array_equal(codes[..., :30], prompt_codes.numpy())

    infilled = service.generate(cache, settings(mode=MODES[2], audio_prompt=str(prompt), infill_start=0.18,
                                                infill_end=0.42), tmp_path / "infill")
    codes = np.load(infilled.codes)
    assert codes.shape == (1, 4, 30)
    keep = np.r_[0:9, 21:30]  # outside [0.18, 0.42) s at 50 frames/s
    np.testing.assert_array_equal(codes[..., keep], prompt_codes.numpy()[..., keep])


@pytest.mark.parametrize("changes, message", [
    ({"prompt": "  "}, "type a prompt"),
    ({"samples": 0}, "Samples must be between 1 and 4"),
    ({"samples": 1.5}, "Samples must be a whole number"),
    ({"mode": "sideways"}, "unknown mode 'sideways'"),
    ({"mode": MODES[1]}, "need an Audio prompt"),
    ({"duration": 0}, "duration must be > 0"),
    ({"temperature": 0}, "sampler.temperature: Input should be greater than 0"),
    ({"decoding_steps": "4, 2"}, "generation.decoding_steps: 2 entries, but the model has 4 codebooks"),
    ({"sampler": "no_such_sampler"}, "sampler.name: unknown sampler 'no_such_sampler'"),
    ({"model": "no-such-recipe"}, "no recipe file or shipped recipe named 'no-such-recipe'"),
    ({"model": "/no/such/folder"}, "no such folder or file: '/no/such/folder'"),
])
def test_bad_settings_are_one_readable_error(cache, tmp_path, changes, message):
    with pytest.raises(UsageError, match=message):
        service.generate(cache, settings(**changes), tmp_path)


def test_an_unreadable_audio_prompt_is_a_readable_error(cache, tmp_path):
    bad = tmp_path / "prompt.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(magnetkit.AudioError, match="cannot read audio file"):
        service.generate(cache, settings(mode=MODES[1], audio_prompt=str(bad)), tmp_path / "out")


def test_a_hub_model_without_the_hub_is_a_readable_error(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(magnetkit.HubUnavailableError, match="the hub cannot be reached: download it"):
        service.generate(cache, settings(model="facebook/magnet-small-10secs"), tmp_path)


def test_old_request_folders_are_deleted(tmp_path):
    import os

    old = service.new_output_dir(tmp_path)
    os.utime(old, (0, 0))
    new = service.new_output_dir(tmp_path, keep_seconds=60)
    assert new.is_dir() and not old.exists()


# ------------------------------------------------------------------------------ spectrogram
def test_a_tone_is_a_bright_line_at_its_frequency():
    sr, freq = 16000, 2000.0
    t = np.arange(sr) / sr
    image = service.spectrogram_image(np.sin(2 * np.pi * freq * t)[None], sr, height=161, width=100)
    assert image.shape == (161, 100, 3) and image.dtype == np.uint8
    brightness = image.astype(float).sum(axis=(1, 2))
    row = int(np.argmax(brightness))  # row 0 is the top: the Nyquist frequency
    assert abs((1 - row / 160) * sr / 2 - freq) < 100
    assert brightness[row] > 5 * np.median(brightness)
    assert service.spectrogram_image(np.zeros(10), sr).shape == (160, 640, 3)  # shorter than one window


# ---------------------------------------------------------------------------------- command
def test_without_gradio_the_command_says_how_to_install_it(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    assert main(["web"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "pip install 'magnetkit[web]'" in err


def test_bad_arguments_and_a_bad_source_fail_in_one_line_before_serving(capsys):
    assert main(["web", "--port", "70000"]) == 2
    assert "--port must be between 1 and 65535" in capsys.readouterr().err
    assert main(["web", "no-such-recipe"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no-such-recipe" in err and "Traceback" not in err


@pytest.mark.slow  # a fresh Python importing torch: seconds
def test_the_command_line_does_not_import_gradio_until_the_page_is_served():
    code = "import sys; from magnetkit.cli import _parser; _parser(); print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.slow  # imports Gradio (seconds)
def test_the_page_has_the_issues_labels_and_errors_become_readable_messages():
    from magnetkit_web.app import SETTING_KEYS, _readable, build_page, import_gradio

    gr = import_gradio()
    defaults = {"duration": 3.0, "sampler": "top_p", "temperature": 1.0, "top_p": 0.9, "top_k": 250,
                "cfg_max": 3.0, "cfg_min": 1.0, "decoding_steps": "40, 10, 10, 10"}
    assert set(defaults) == set(SETTING_KEYS)
    demo = build_page(gr, ModelCache(), DEFAULT_MODEL, defaults)
    labels = {block.label for block in demo.blocks.values() if getattr(block, "label", None)}
    assert {"Prompt", "Model", "Audio prompt", "Output", "Negative prompt", "Duration (s)", "Seed", "Samples",
            "Sampler", "Temperature", "CFG start", "CFG end", "Infill start (s)", "Infill end (s)"} <= labels
    assert any(getattr(block, "value", None) == "Generate" for block in demo.blocks.values())
    assert demo.analytics_enabled is False

    def fail(exc):
        raise exc

    with pytest.raises(gr.Error) as caught:
        _readable(gr, lambda: fail(UsageError("duration must be > 0 seconds, got 0")))
    assert caught.value.message == "duration must be > 0 seconds, got 0"
    with pytest.raises(gr.Error, match=r"internal error \(ZeroDivisionError: boom\)"):
        _readable(gr, lambda: fail(ZeroDivisionError("boom")))
