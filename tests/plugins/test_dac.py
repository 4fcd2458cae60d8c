"""The ``dac`` codec: random-config DAC models through the codec contract, loading and refusals."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

import magnetkit
from magnetkit.errors import CheckpointError, HubUnavailableError, UsageError
from magnetkit.testing.codec_contract import CodecContract, check_codec, sample_audio
from magnetkit_dac import DacCodec, DacCodecConfig, factory


def dac_config(**overrides):
    """A tiny DacConfig with every field set (the defaults mix settings of different models)."""
    from transformers import DacConfig

    fields = dict(encoder_hidden_size=8, downsampling_ratios=[4, 8], decoder_hidden_size=32, n_codebooks=3,
                  codebook_size=64, codebook_dim=4, quantizer_dropout=0.0, commitment_loss_weight=0.25,
                  codebook_loss_weight=1.0, sampling_rate=8000)
    fields.update(overrides)
    return DacConfig(**fields)


def random_dac(**overrides):
    from transformers import DacModel

    torch.manual_seed(0)
    return DacModel(dac_config(**overrides)).eval()


@pytest.fixture(scope="module")
def dac_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("dac_tiny")
    random_dac().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def codec(dac_folder) -> DacCodec:
    return factory(DacCodecConfig(model=str(dac_folder), chunk_context_seconds=0.1))


def test_registered_and_built_from_a_folder(dac_folder):
    assert magnetkit.get_registry().get("codec", "dac").config is DacCodecConfig
    codec = magnetkit.build("codec", "dac", {"model": str(dac_folder)})
    assert isinstance(codec, magnetkit.Codec)
    assert (codec.sample_rate, codec.channels, codec.num_codebooks, codec.cardinality) == (8000, 1, 3, 64)


def test_frame_rate_is_exact_not_rounded():
    codec = DacCodec(random_dac(sampling_rate=44100))
    assert codec.model.config.frame_rate == 1379  # transformers rounds 44100 / 32 up
    assert codec.frame_rate == pytest.approx(1378.125)


def test_partial_last_frame_is_padded_not_dropped(codec):
    wav = sample_audio(codec, seconds=0.2, batch=1)[..., :805]  # 25 frames of 32 samples + 5
    codes = codec.encode(wav)
    assert codes.shape == (1, 3, 26)
    assert codec.decode(codes).shape == (1, 1, 26 * 32)


def test_decode_equals_transformers_decode(codec):
    codes = torch.randint(0, 64, (2, 3, 40), generator=torch.Generator().manual_seed(1))
    expected = codec.model.decode(audio_codes=codes).audio_values
    assert torch.equal(codec.decode(codes)[:, 0], expected)


def test_encode_equals_transformers_encode_on_whole_frames(codec):
    wav = sample_audio(codec, seconds=0.2)  # 1600 samples = 50 whole frames
    expected = codec.model.encode(wav).audio_codes
    assert torch.equal(codec.encode(wav), expected)


def test_fewer_codebooks_are_the_leading_residual_codes(dac_folder, codec):
    two = factory(DacCodecConfig(model=str(dac_folder), num_codebooks=2))
    wav = sample_audio(codec, seconds=0.2)
    assert torch.equal(two.encode(wav), codec.encode(wav)[:, :2])
    with pytest.raises(UsageError, match="codec.num_codebooks: 4"):
        factory(DacCodecConfig(model=str(dac_folder), num_codebooks=4))


def test_bad_inputs_are_usage_errors(codec):
    with pytest.raises(UsageError, match=r"\[B, 1, S\]"):
        codec.encode(torch.zeros(1, 2, 320))
    with pytest.raises(UsageError, match=r"\[0, 64\)"):
        codec.decode(torch.full((1, 3, 5), 64))


def test_long_sequences_decode_in_windows(dac_folder):
    windowed = factory(DacCodecConfig(model=str(dac_folder), chunk_seconds=0.2, chunk_context_seconds=0.1))
    one_shot = factory(DacCodecConfig(model=str(dac_folder), chunk_seconds=None))
    codes = torch.randint(0, 64, (1, 3, 180), generator=torch.Generator().manual_seed(2))
    assert torch.allclose(windowed.decode(codes), one_shot.decode(codes), atol=1e-6)
    assert (windowed.decode_chunked(codes, 50, context_frames=0) - one_shot.decode(codes)).abs().max() > 1e-4


def test_folder_without_config_and_other_models_are_refused(tmp_path, tiny_dir):
    with pytest.raises(CheckpointError, match="no config.json"):
        factory(DacCodecConfig(model=str(tmp_path)))
    with pytest.raises(CheckpointError, match="DAC.*is not a complete checkpoint"):
        factory(DacCodecConfig(model=str(tiny_dir / "hf_encodec_32khz_random")))


def test_uncached_hub_id_fails_fast_in_one_line(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(HubUnavailableError) as info:
        factory(DacCodecConfig(model="descript/dac_44khz"))
    assert time.monotonic() - start < 5
    assert "\n" not in str(info.value) and "descript/dac_44khz" in str(info.value)


def test_random_dac_with_other_ratios_passes_the_codec_contract():
    check_codec(DacCodec(random_dac(downsampling_ratios=[2, 4, 4], sampling_rate=8000),
                         chunking=DacCodecConfig(chunk_context_seconds=0.1)),
                seconds=0.25)


class TestTinyDacCodecContract(CodecContract):
    """A tiny random DAC, one pytest test per contract check."""

    seconds = 0.5
