"""The ``clap`` conditioner on a tiny random CLAP saved with a freshly trained tokenizer."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import magnetkit
from magnetkit.audio import convert_audio
from magnetkit.errors import CheckpointError, HubUnavailableError, UsageError
from magnetkit.testing.tiny import tiny_clap
from magnetkit_clap import ClapConditioner, ClapConditionerConfig, factory

def tiny_clap_folder(folder: Path) -> Path:
    """Save a random ClapModel, a trained tokenizer and a 2 s feature extractor (see magnetkit.testing.tiny)."""
    return tiny_clap(folder)


@pytest.fixture(scope="module")
def clap_folder(tmp_path_factory) -> Path:
    return tiny_clap_folder(tmp_path_factory.mktemp("clap_tiny"))


@pytest.fixture(scope="module")
def cond(clap_folder) -> ClapConditioner:
    torch.manual_seed(1)
    return factory(ClapConditionerConfig(model=str(clap_folder)), output_dim=32)


def tone(seconds: float, sample_rate: int, channels: int = 1, freq: float = 440.0) -> torch.Tensor:
    t = torch.arange(round(seconds * sample_rate)) / sample_rate
    wav = 0.5 * torch.sin(2 * math.pi * freq * t) * (1 + 0.5 * torch.sin(2 * math.pi * 3 * t))
    return wav.expand(channels, -1)


# ------------------------------------------------------------------------------ module
def test_registered_and_built_with_output_dim(clap_folder):
    assert magnetkit.get_registry().get("conditioner", "clap").config is ClapConditionerConfig
    built = magnetkit.build("conditioner", "clap", {"model": str(clap_folder)}, output_dim=24)
    assert isinstance(built, magnetkit.Conditioner) and built.output_dim == 24


def test_state_dict_holds_only_the_projection(cond):
    assert sorted(cond.state_dict()) == ["output_proj.bias", "output_proj.weight"]
    assert [name for name, _ in cond.named_parameters()] == ["output_proj.weight", "output_proj.bias"]
    assert cond.output_proj.weight.shape == (32, 8)


def test_only_the_projection_learns(cond):
    cond.zero_grad()
    cond(["happy rock"]).embeddings.sum().backward()
    assert cond.output_proj.weight.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in cond.backbone.model.parameters())


# ------------------------------------------------------------------------------ text
def test_text_condition_is_the_projected_clap_text_embedding(cond):
    texts = ["happy rock", "80s electronic track with melodic synthesizers"]
    condition = cond(texts)
    assert condition.embeddings.shape == (2, 1, 32) and condition.mask.tolist() == [[1], [1]]
    tokens = cond.backbone.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        clap = cond.backbone.model.get_text_features(input_ids=tokens["input_ids"],
                                                     attention_mask=tokens["attention_mask"]).pooler_output
    assert torch.allclose(clap.norm(dim=-1), torch.ones(2), atol=1e-5)  # CLAP normalises its embeddings
    assert torch.allclose(condition.embeddings[:, 0], cond.output_proj(clap), atol=1e-5)
    assert not torch.allclose(condition.embeddings[0], condition.embeddings[1], atol=1e-3)


def test_null_condition_is_zero_with_mask_zero(cond):
    condition = cond([None, "sad piano", ""])
    assert condition.mask.tolist() == [[0], [1], [0]]
    assert torch.equal(condition.embeddings[0], torch.zeros(1, 32))
    assert torch.equal(condition.embeddings[2], torch.zeros(1, 32))
    assert torch.allclose(condition.embeddings[1], cond(["sad piano"]).embeddings[0], atol=1e-5)


def test_batch_does_not_change_an_items_condition(cond):
    batch = cond(["happy rock", "a calm piano melody with soft drums"]).embeddings
    for i, text in enumerate(["happy rock", "a calm piano melody with soft drums"]):
        assert torch.allclose(batch[i], cond([text]).embeddings[0], atol=1e-5)


def test_long_texts_are_truncated(clap_folder):
    short = factory(ClapConditionerConfig(model=str(clap_folder), max_text_tokens=4), output_dim=8)
    torch.manual_seed(0)
    assert short(["happy rock " * 50]).embeddings.shape == (1, 1, 8)  # 100+ tokens, 80 positions


# ------------------------------------------------------------------------------ audio
def test_audio_condition_shapes_and_mask(cond):
    wav = torch.stack([tone(1.0, 16000, 2), tone(1.0, 16000, 2, freq=220.0)])
    condition = cond.condition_audio(wav, 16000)
    assert condition.embeddings.shape == (2, 1, 32) and condition.mask.tolist() == [[1], [1]]
    assert not torch.allclose(condition.embeddings[0], condition.embeddings[1], atol=1e-4)


def test_audio_is_resampled_to_clap_rate_and_downmixed(cond):
    wav = tone(1.0, 16000, 2)[None]
    at_48k = convert_audio(wav, 16000, 48000, 1)
    assert torch.allclose(cond.audio_embeddings(wav, 16000), cond.audio_embeddings(at_48k, 48000), atol=1e-5)


def test_long_audio_averages_deterministic_windows(cond):
    wav = tone(3.0, 48000)[None]  # 2 s windows, 1 s stride: windows [0, 2) and [1, 3)
    embed = cond.audio_embeddings(wav, 48000)
    assert torch.equal(embed, cond.audio_embeddings(wav, 48000))  # no random crop
    first = cond.audio_embeddings(wav[..., :96000], 48000)
    second = cond.audio_embeddings(wav[..., 48000:144000], 48000)
    assert torch.allclose(embed, F.normalize(first + second, dim=-1), atol=1e-5)
    assert torch.allclose(embed.norm(dim=-1), torch.ones(1), atol=1e-5)


def test_without_normalize_the_window_mean_is_kept(clap_folder, cond):
    raw = factory(ClapConditionerConfig(model=str(clap_folder), normalize=False), output_dim=32)
    wav = torch.cat([tone(2.0, 48000), tone(2.0, 48000, freq=1500.0)], dim=-1)[None]
    assert raw.audio_embeddings(wav, 48000).norm().item() < 0.999
    assert torch.allclose(F.normalize(raw.audio_embeddings(wav, 48000), dim=-1), cond.audio_embeddings(wav, 48000),
                          atol=1e-5)


def test_bad_audio_and_window_are_usage_errors(clap_folder, cond):
    with pytest.raises(UsageError, match=r"\[B, C, S\]"):
        cond.condition_audio(torch.zeros(16000), 16000)
    with pytest.raises(UsageError, match="audio_window_seconds"):
        factory(ClapConditionerConfig(model=str(clap_folder), audio_window_seconds=5.0), output_dim=8)


# ------------------------------------------------------------------------------ loading
def test_tokenizer_without_vocabulary_is_refused(clap_folder, tmp_path):
    from transformers import RobertaTokenizer

    broken = tmp_path / "clap_no_vocab"
    shutil.copytree(clap_folder, broken)
    for name in ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (broken / name).unlink(missing_ok=True)
    RobertaTokenizer().save_pretrained(broken)  # constructs without files, knows only special tokens
    with pytest.raises(CheckpointError, match="no real tokens"):
        factory(ClapConditionerConfig(model=str(broken)), output_dim=8)


def test_folder_of_another_model_is_refused(tiny_dir):
    with pytest.raises(CheckpointError, match="CLAP.*is not a complete checkpoint"):
        factory(ClapConditionerConfig(model=str(tiny_dir / "hf_encodec_32khz_random")), output_dim=8)


def test_uncached_hub_id_fails_fast_in_one_line(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(HubUnavailableError) as info:
        factory(ClapConditionerConfig(), output_dim=8)
    assert time.monotonic() - start < 5
    assert "\n" not in str(info.value) and "laion/larger_clap_music" in str(info.value)
