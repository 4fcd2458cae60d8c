"""The ``encodec`` codec: audiocraft parity, every published checkpoint form, the codec contract."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import torch
import yaml

import magnetkit
from magnetkit.codecs import ChunkedDecoding
from magnetkit.errors import CheckpointError, HubUnavailableError, UsageError
from magnetkit.testing.codec_contract import CodecContract, check_codec, sample_audio
from magnetkit_encodec import EncodecCodec, EncodecCodecConfig, factory, load_encodec_model
from magnetkit_encodec.audiocraft_format import read_package, transformers_name

FIXTURE = Path(__file__).parents[1] / "fixtures" / "magnet_tiny"
HF_FOLDER = FIXTURE / "hf_encodec_32khz_random"
VARIANT = FIXTURE / "codec_variant" / "compression_state_dict.bin"


def build(model: str | Path, **params) -> EncodecCodec:
    return factory(EncodecCodecConfig(model=str(model), **params))


@pytest.fixture(scope="module")
def hf_codec() -> EncodecCodec:
    return build(HF_FOLDER)


@pytest.fixture(scope="module")
def variant_codec() -> EncodecCodec:
    return build(VARIANT)


def cache_repo(cache: Path, repo_id: str, files: list[Path]) -> None:
    """Lay out ``files`` as the cached snapshot of hub repo ``repo_id``."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    revision = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    (repo / "snapshots" / revision).mkdir(parents=True)
    for file in files:
        shutil.copy(file, repo / "snapshots" / revision / file.name)


@pytest.fixture
def fake_hub_cache(tmp_path, monkeypatch) -> Path:
    """A Hugging Face cache: ``facebook/encodec_32khz`` is the tiny random EnCodec, and
    ``facebook/magnet-small-10secs`` holds the tiny MAGNeT's pointer compression_state_dict.bin."""
    import huggingface_hub.constants

    cache_repo(tmp_path, "facebook/encodec_32khz", sorted(HF_FOLDER.iterdir()))
    cache_repo(tmp_path, "facebook/magnet-small-10secs", [FIXTURE / "compression_state_dict.bin"])
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    return tmp_path


def save_package(path: Path, pkg: dict) -> Path:
    torch.save(pkg, path)
    return path


def edited_variant(tmp_path: Path, edit) -> Path:
    """The audiocraft codec with ``edit(cfg_dict, state)`` applied, saved under tmp_path."""
    pkg = read_package(VARIANT)
    cfg = yaml.safe_load(pkg["xp.cfg"])
    state = dict(pkg["best_state"])
    edit(cfg, state)
    edited = {**pkg, "xp.cfg": yaml.safe_dump(cfg), "best_state": state}
    return save_package(tmp_path / "compression_state_dict.bin", edited)


# ------------------------------------------------------------------------------ parity
def test_registered_as_a_plugin():
    spec = magnetkit.get_registry().get("codec", "encodec")
    assert spec.config is EncodecCodecConfig and spec.plugin == "encodec"
    codec = magnetkit.build("codec", "encodec", {"model": str(HF_FOLDER)})
    assert isinstance(codec, magnetkit.Codec)


def test_decode_matches_audiocraft_with_the_transformers_folder(hf_codec, reference):
    wav = hf_codec.decode(torch.from_numpy(reference["gen_a_codes"]))
    expected = torch.from_numpy(reference["gen_a_wav_hf_codec"])
    assert wav.shape == expected.shape == (2, 1, 96000)
    assert (wav - expected).abs().max().item() < 1e-4


@pytest.mark.parametrize("source", [VARIANT, VARIANT.parent], ids=["file", "folder"])
def test_decode_matches_audiocraft_with_the_full_audiocraft_codec(source, reference):
    codec = build(source)
    wav = codec.decode(torch.from_numpy(reference["gen_a_codes"]))
    expected = torch.from_numpy(reference["gen_a_wav_codec_variant"])
    assert wav.shape == expected.shape
    assert (wav - expected).abs().max().item() < 1e-4


def test_audiocraft_codec_attributes_come_from_its_config(variant_codec):
    assert (variant_codec.sample_rate, variant_codec.channels, variant_codec.frame_rate) == (32000, 1, 50.0)
    assert (variant_codec.num_codebooks, variant_codec.cardinality) == (4, 2048)
    config = variant_codec.model.config
    assert config.pad_mode == "constant" and config.use_conv_shortcut is False
    assert config.upsampling_ratios == [8, 5, 4, 4]


def test_every_audiocraft_tensor_lands_in_the_model(variant_codec):
    state = read_package(VARIANT)["best_state"]
    loaded = variant_codec.model.state_dict()
    for name, tensor in state.items():
        assert torch.equal(loaded[transformers_name(name)], tensor), name


def test_pointer_file_resolves_through_the_hub_cache(fake_hub_cache, reference):
    pointer = read_package(FIXTURE / "compression_state_dict.bin")
    assert pointer["pretrained"] == "facebook/encodec_32khz"
    codec = build(FIXTURE / "compression_state_dict.bin")
    wav = codec.decode(torch.from_numpy(reference["gen_a_codes"]))
    assert (wav - torch.from_numpy(reference["gen_a_wav_hf_codec"])).abs().max().item() < 1e-4


@pytest.mark.parametrize("repo_id", ["facebook/encodec_32khz", "facebook/magnet-small-10secs"],
                         ids=["transformers-repo", "audiocraft-repo"])
def test_hub_id_resolves_through_the_hub_cache(fake_hub_cache, hf_codec, repo_id):
    codec = build(repo_id)
    embed = codec.model.quantizer.layers[3].codebook.embed
    assert torch.equal(embed, hf_codec.model.quantizer.layers[3].codebook.embed)


def test_uncached_hub_id_fails_fast_in_one_line(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(HubUnavailableError) as info:
        build("facebook/encodec_24khz")
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert "\n" not in message and "facebook/encodec_24khz" in message and "download" in message


def test_plain_weights_map_exactly(tmp_path, variant_codec):
    """An audiocraft codec trained without weight norm (norm: none) decodes as its weights say."""

    def drop_weight_norm(cfg, state):
        cfg["seanet"]["norm"] = "none"
        for name in [n for n in state if n.endswith("weight_g")]:
            g, v = state.pop(name), state.pop(name[:-1] + "v")
            state[name[:-len("_g")]] = torch._weight_norm(v, g, 0)

    codec = build(edited_variant(tmp_path, drop_weight_norm))
    codes = torch.randint(0, 2048, (1, 4, 20), generator=torch.Generator().manual_seed(3))
    assert (codec.decode(codes) - variant_codec.decode(codes)).abs().max().item() < 1e-6


# ------------------------------------------------------------------------------ refusals
@pytest.mark.parametrize("edit, words", [
    (lambda cfg, state: cfg["seanet"].update(activation="LeakyReLU"), "activation"),
    (lambda cfg, state: cfg["seanet"].update(lstm=0), "LSTM"),
    (lambda cfg, state: cfg["seanet"].update(norm="spectral_norm"), "norm"),
    (lambda cfg, state: cfg["seanet"]["decoder"].update(final_activation="Tanh"), "final_activation"),
    (lambda cfg, state: cfg["seanet"]["encoder"].update(n_filters=8), "differ in n_filters"),
    (lambda cfg, state: cfg["rvq"].update(bins=1000), "power of two"),
    (lambda cfg, state: cfg["encodec"].update(quantizer="no_quant"), "encodec.quantizer"),
], ids=["activation", "no-lstm", "spectral-norm", "final-activation", "asymmetric", "bins", "quantizer"])
def test_unmappable_audiocraft_codecs_are_refused(tmp_path, edit, words):
    with pytest.raises(CheckpointError, match=words) as info:
        build(edited_variant(tmp_path, edit))
    assert "cannot represent" in str(info.value)


def test_missing_tensor_is_named(tmp_path):
    path = edited_variant(tmp_path, lambda cfg, state: state.pop("decoder.model.15.conv.conv.bias"))
    with pytest.raises(CheckpointError, match=r"missing decoder\.layers\.15\.conv\.bias"):
        build(path)


def test_config_that_disagrees_with_the_weights_is_refused(tmp_path):
    path = edited_variant(tmp_path, lambda cfg, state: cfg["seanet"].update(n_filters=8))
    with pytest.raises(CheckpointError, match="does not match its own xp.cfg"):
        build(path)


def test_unsafe_and_corrupt_files_are_refused(tmp_path):
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"not a torch file at all")
    with pytest.raises(CheckpointError, match="cannot load codec checkpoint"):
        build(garbage)
    unsafe = save_package(tmp_path / "unsafe.bin", {"xp.cfg": "a: 1", "best_state": {}, "hook": Path("/")})
    with pytest.raises(CheckpointError, match="cannot load codec checkpoint"):
        build(unsafe)
    other = save_package(tmp_path / "other.bin", {"weights": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="neither a 'pretrained' pointer nor an audiocraft EnCodec"):
        build(other)


def test_folder_of_another_model_is_refused(tiny_dir):
    with pytest.raises(CheckpointError, match="EnCodec.*is not a complete checkpoint"):
        load_encodec_model(str(tiny_dir / "t5_random"))


def test_missing_path_and_empty_folder_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        build(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="neither config.json"):
        build(tmp_path)


def test_dac_pointer_names_the_dac_codec(tmp_path):
    path = save_package(tmp_path / "compression_state_dict.bin", {"pretrained": "dac_44khz"})
    with pytest.raises(CheckpointError, match="use codec 'dac'"):
        build(path)


# ------------------------------------------------------------------------------ behaviour
def test_fewer_codebooks_are_the_leading_residual_codes(hf_codec):
    two = build(HF_FOLDER, num_codebooks=2)
    wav = sample_audio(hf_codec, seconds=0.5)
    codes = two.encode(wav)
    assert codes.shape[1] == two.num_codebooks == 2
    assert torch.equal(codes, hf_codec.encode(wav)[:, :2])
    assert two.decode(codes).shape == (2, 1, codes.shape[-1] * 640)


def test_too_many_codebooks_is_a_usage_error():
    with pytest.raises(UsageError, match="codec.num_codebooks: 5"):
        build(HF_FOLDER, num_codebooks=5)


def test_bad_inputs_are_usage_errors(hf_codec):
    with pytest.raises(UsageError, match=r"\[0, 2048\)"):
        hf_codec.decode(torch.full((1, 4, 10), 2048))  # the MAGNeT mask id is not a code
    with pytest.raises(UsageError, match="K <= 4"):
        hf_codec.decode(torch.zeros(1, 5, 10, dtype=torch.long))
    with pytest.raises(UsageError, match=r"\[B, 1, S\]"):
        hf_codec.encode(torch.zeros(1, 2, 640))


def test_long_sequences_decode_in_windows():
    one_shot = random_encodec(chunk_seconds=None)
    windowed = random_encodec(chunk_seconds=0.25)  # 63-frame windows, 1 s (250 frames) of context
    codes = torch.randint(0, 256, (1, 2, 300), generator=torch.Generator().manual_seed(5))
    assert torch.allclose(windowed.decode(codes), one_shot.decode(codes), atol=1e-5)
    rough = windowed.decode_chunked(codes, 63, context_frames=0)  # no context: different seams
    assert (rough - one_shot.decode(codes)).abs().max().item() > 1e-3


# ------------------------------------------------------------------------------ contract
def random_encodec(chunk_seconds: float | None = 30.0, **overrides) -> EncodecCodec:
    """A tiny random EnCodec with every config field set, and random (non-zero) codebooks."""
    from transformers import EncodecConfig, EncodecModel

    fields = dict(
        target_bandwidths=[4.0], sampling_rate=8000, audio_channels=1, normalize=False, chunk_length_s=None,
        overlap=None, hidden_size=16, num_filters=4, num_residual_layers=1, upsampling_ratios=[8, 4],
        norm_type="weight_norm", kernel_size=7, last_kernel_size=7, residual_kernel_size=3, dilation_growth_rate=2,
        use_causal_conv=False, pad_mode="reflect", compress=2, num_lstm_layers=1, trim_right_ratio=1.0,
        codebook_size=256, codebook_dim=16, use_conv_shortcut=True,
    )
    fields.update(overrides)
    torch.manual_seed(0)
    model = EncodecModel(EncodecConfig(**fields))
    generator = torch.Generator().manual_seed(0)
    for layer in model.quantizer.layers:  # a random EncodecModel has all-zero codebooks
        layer.codebook.embed.copy_(0.5 * torch.randn(layer.codebook.embed.shape, generator=generator))
    return EncodecCodec(model, chunking=ChunkedDecoding(chunk_seconds=chunk_seconds, chunk_context_seconds=1.0))


@pytest.mark.parametrize("overrides", [
    {},
    {"audio_channels": 2, "normalize": True, "use_causal_conv": True, "trim_right_ratio": 0.5},
], ids=["mono", "stereo-causal-normalized"])
def test_random_encodec_passes_the_codec_contract(overrides):
    codec = random_encodec(**overrides)
    assert codec.num_codebooks == 2  # 4 kbps at 250 frames/s of 8 bits
    check_codec(codec, seconds=0.5)


class TestTinyParityCodecContract(CodecContract):
    """The parity fixture's 32 kHz EnCodec, one pytest test per contract check."""

    seconds = 0.3

    @pytest.fixture
    def codec(self, hf_codec):
        return hf_codec


def test_the_contract_catches_broken_codecs():
    from transformers import EncodecConfig, EncodecModel

    empty = random_encodec()
    empty.model = EncodecModel(EncodecConfig(**empty.model.config.to_dict()))  # all-zero codebooks
    with pytest.raises(AssertionError, match="codebooks initialised"):
        check_codec(empty, seconds=0.2)

    class Int32Codes(EncodecCodec):
        def encode(self, wav):
            return super().encode(wav).int()

    wrong = Int32Codes(random_encodec().model)
    with pytest.raises(AssertionError, match="int64"):
        check_codec(wrong, seconds=0.2)
