"""The built-in embedders pass the contract suite; the mel embedder's vectors mean what they say."""

import math
import sys
from pathlib import Path

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


# ------------------------------------------------------------------------- model embedders
@pytest.fixture(scope="module")
def clap_folder(tmp_path_factory):
    from magnetkit.testing.tiny import tiny_clap

    return tiny_clap(tmp_path_factory.mktemp("clap"))


def tiny_ast(folder):
    """A random 5-label AST on 1 s of 32-band fbank frames, saved with its feature extractor."""
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    torch.manual_seed(0)
    config = ASTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       patch_size=16, frequency_stride=16, time_stride=16, max_length=100, num_mel_bins=32,
                       num_labels=5, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ASTForAudioClassification(config).save_pretrained(folder)
    ASTFeatureExtractor(num_mel_bins=32, max_length=100, sampling_rate=16000).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def ast_folder(tmp_path_factory):
    return tiny_ast(tmp_path_factory.mktemp("ast"))


def test_clap_passes_the_contract_and_embeds_text(clap_folder):
    clap = build("embedder", "clap", {"model": str(clap_folder)})
    assert (clap.sample_rate, clap.dim, clap.per_frame) == (48000, 8, False)
    check_embedder(clap, seconds=3.0)  # longer than the tiny model's 2 s window: two windows averaged
    text = clap.embed_text(["a", "b c"])
    assert torch.allclose(text.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_ast_passes_the_contract_and_gives_label_distributions(ast_folder):
    ast = build("embedder", "ast", {"model": str(ast_folder), "segment_seconds": 1.0})
    assert (ast.sample_rate, ast.dim, ast.label_probs) == (16000, 5, True)
    check_embedder(ast, seconds=2.5)
    # 2.5 s in 1 s segments: 1 + 1 + 0.5 (kept: longer than 0.15 s)
    assert ast.embed_audio(torch.randn(1, 1, 40000))[0].shape == (3, 5)
    assert ast.embed_audio(torch.randn(1, 1, 33000))[0].shape == (2, 5)  # 0.0625 s tail dropped


@pytest.mark.parametrize("name", ["clap", "ast"])
def test_offline_hub_id_is_one_line(name, monkeypatch):
    from magnetkit.errors import HubUnavailableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnavailableError) as info:
        build("embedder", name, {"model": "nobody/not-a-cached-model"})
    assert "\n" not in str(info.value) and "huggingface-cli download" in str(info.value)


@pytest.mark.slow  # loads transformers' EnCodec
def test_encodec_latents_pass_the_contract(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from test_encodec import random_encodec

    random_encodec().model.save_pretrained(tmp_path / "encodec")
    emb = build("embedder", "encodec", {"model": str(tmp_path / "encodec")})
    assert (emb.sample_rate, emb.channels, emb.dim, emb.per_frame) == (8000, 1, 16, True)
    check_embedder(emb, seconds=0.5)
    assert emb.embed_audio(torch.randn(1, 1, 8000))[0].shape == (8000 // 32, 16)  # one vector per frame


def test_a_codec_without_latents_is_refused():
    from magnetkit.errors import UsageError
    from magnetkit.testing import FakeCodec
    from magnetkit_embedders.encodec import CodecEmbedder, CodecEmbedderConfig

    with pytest.raises(UsageError, match="no latents"):
        CodecEmbedder(FakeCodec(), CodecEmbedderConfig(codec="fake"))


# ------------------------------------------------------------------------------- vggish
@pytest.mark.slow  # builds a model twice
def test_vggish_passes_the_contract_with_a_local_weights_file(tmp_path):
    import numpy as np

    from magnetkit_embedders.vggish import Vggish

    torch.manual_seed(0)
    torch.save(Vggish().state_dict(), tmp_path / "vggish-10086976.pth")
    torch.save({"pca_eigen_vectors": np.eye(128), "pca_means": np.zeros((128, 1))}, tmp_path / "pca.pth")
    emb = build("embedder", "vggish", {"weights": str(tmp_path)})
    check_embedder(emb, seconds=2.0)
    # 0.96 s examples without overlap: 2.5 s -> 2 vectors; a short clip is padded to 1
    assert emb.embed_audio(torch.randn(1, 1, 40000))[0].shape == (2, 128)
    assert emb.embed_audio(torch.randn(1, 1, 4000))[0].shape == (1, 128)
    pca = build("embedder", "vggish", {"weights": str(tmp_path), "pca": True, "pca_weights": str(tmp_path / "pca.pth")})
    quantised = pca.embed_audio(torch.randn(1, 1, 16000))[0]
    assert torch.equal(quantised, quantised.round()) and quantised.min() >= 0 and quantised.max() <= 255


def test_vggish_log_mel_examples_follow_the_reference_framing():
    import numpy as np

    from magnetkit_embedders.vggish import log_mel_examples, mel_matrix

    assert log_mel_examples(np.zeros(16000 * 3))[0].shape == (96, 64)
    assert len(log_mel_examples(np.zeros(16000 * 3))) == 3  # 298 frames of 10 ms: 3 full examples
    weights = mel_matrix()
    assert weights.shape == (257, 64) and (weights[0] == 0).all() and (weights >= 0).all()
    # a 1 kHz tone peaks in the band centred near 1 kHz
    t = np.arange(16000) / 16000
    example = log_mel_examples(np.sin(2 * np.pi * 1000 * t))[0]
    centres = 700 * (np.exp(np.linspace(1127 * np.log(1 + 125 / 700), 1127 * np.log(1 + 7500 / 700), 66)[1:-1] / 1127) - 1)
    assert abs(centres[example.mean(0).argmax()] - 1000) < 120


def test_vggish_bad_weights_are_one_clear_error(tmp_path, monkeypatch):
    from magnetkit.errors import CheckpointError, HubUnavailableError

    with pytest.raises(CheckpointError, match="does not exist"):
        build("embedder", "vggish", {"weights": str(tmp_path / "missing.pth")})
    torch.save({"wrong": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match="do not fit"):
        build("embedder", "vggish", {"weights": str(tmp_path / "wrong.pth")})
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    with pytest.raises(HubUnavailableError, match="torch hub cache"):
        build("embedder", "vggish", {"weights": "http://127.0.0.1:9/vggish-10086976.pth"})
