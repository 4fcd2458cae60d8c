"""The built-in embedders pass the contract suite; the mel embedder's vectors mean what they say."""

import math

import pytest
import torch

from magnetkit import build, get_registry
from magnetkit.testing import check_embedder
from magnetkit_embedders.mel import MelEmbedder, MelEmbedderConfig


def test_embedders_are_registered():
    assert "mel" in get_registry().names("embedder")


@pytest.mark.parametrize("params", [{}, {"per_clip": True}, {"n_mels": 32, "sample_rate": 22050, "fmax": 8000}])
def test_mel_passes_the_contract(params):
    check_embedder(build("embedder", "mel", params))


def test_mel_windows_and_pitch():
    mel = MelEmbedder(MelEmbedderConfig())
    t = torch.arange(3 * 16000) / 16000
    low, high = torch.sin(2 * math.pi * 200 * t), torch.sin(2 * math.pi * 3000 * t)
    out = mel.embed_audio(torch.stack([low, high])[:, None])
    # 3 s of 10 ms frames = 301 frames; windows of 96 frames every 48
    assert out[0].shape == (1 + (301 - 96) // 48, 128)
    # the loudest band of a low tone is below that of a high one
    assert out[0][0, :64].argmax() < out[1][0, :64].argmax()


def test_mel_config_rejects_fmax_above_nyquist():
    with pytest.raises(ValueError, match="Nyquist"):
        MelEmbedderConfig(sample_rate=16000, fmax=9000)
