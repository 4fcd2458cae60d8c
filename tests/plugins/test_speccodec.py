"""The ``speccodec`` plugin: contract, fidelity of the shipped codec, fitting, files, CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from magnetkit import build
from magnetkit.cli import main
from magnetkit.errors import CheckpointError, UsageError
from magnetkit_synth import analysis
from magnetkit_synth.dataset import HELDOUT, Attributes, make_clip, midi_to_hz, render, write_dataset
from magnetkit_synth.fidelity import codec_fidelity
from magnetkit.testing.codec_contract import CodecContract
from magnetkit_speccodec import FitConfig, SpecCodec, SpecCodecConfig, fit_codec, load_speccodec
from magnetkit_speccodec.codec import SHIPPED


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one torch thread


@pytest.fixture(scope="module")
def codec() -> SpecCodec:
    """The shipped codec, built through the registry as a recipe would."""
    return build("codec", "speccodec")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """Six clips on disk with their manifest."""
    folder = tmp_path_factory.mktemp("synth")
    write_dataset(folder, 6, seed=0, split="train")
    return folder


TINY_FIT = FitConfig(params={"cardinality": 8, "shape_levels": 1}, tokens_per_clip=20, kmeans_iters=2)


class TestContract(CodecContract):
    """magnetkit's shared codec contract suite on the shipped codec."""


# ------------------------------------------------------------------------------- the shipped one
def test_layout(codec):
    assert isinstance(codec, SpecCodec)
    assert (codec.sample_rate, codec.channels, codec.frame_rate) == (16000, 1, 50.0)
    assert (codec.num_codebooks, codec.cardinality) == (4, 512)


def test_shipped_files_are_small():
    size = sum(p.stat().st_size for p in SHIPPED.glob("speccodec.*"))
    assert 0 < size < 5 * 2 ** 20


def test_frames_and_length(codec):
    wav = 0.1 * torch.randn(2, 1, 16000 + 1)  # one sample over a whole number of frames
    codes = codec.encode(wav)
    assert codes.shape == (2, 4, 51) and codes.dtype == torch.int64
    assert 0 <= codes.min() and codes.max() < 512
    assert codec.decode(codes).shape == (2, 1, 51 * 320)


@pytest.mark.parametrize("waveform", ["sine", "saw", "square"])
@pytest.mark.parametrize("register", ["low", "mid", "high"])
def test_round_trip_keeps_the_pitch_of_a_note(codec, waveform, register):
    wav, notes = render(Attributes(waveform, register, None, "sustained"), 1.0, np.random.default_rng(3))
    out = codec.decode(codec.encode(torch.from_numpy(wav).view(1, 1, -1)))[0, 0].numpy()
    f0, _ = analysis.f0_track(out)
    measured = np.nanmedian(f0[10:-10])
    assert abs(measured / midi_to_hz(notes[0].pitch) - 1) < 0.03


def test_silence_stays_silent(codec):
    out = codec.decode(codec.encode(torch.zeros(1, 1, 8000)))
    assert out.abs().max() < 1e-3


def test_heldout_fidelity(codec):
    clips = [make_clip(3, "heldout", i, attrs=attrs) for i, attrs in enumerate(HELDOUT)]
    report = codec_fidelity(codec, clips)
    assert report.note_pitch_within >= 0.95
    assert report.onset_recall >= 0.9 and report.onset_median_ms <= 10
    assert report.attribute_kept["register"] == 1.0
    assert report.attributes_kept >= 5 / 7


def test_encode_rejects_wrong_shapes(codec):
    with pytest.raises(UsageError, match=r"\[B, 1, S\]"):
        codec.encode(torch.zeros(1, 2, 1000))
    with pytest.raises(UsageError):
        codec.encode(torch.zeros(1000))


def test_decode_rejects_bad_codes(codec):
    with pytest.raises(UsageError, match=r"\[0, 512\)"):
        codec.decode(torch.full((1, 4, 5), 512))
    with pytest.raises(UsageError, match="shaped"):
        codec.decode(torch.zeros(1, 3, 5, dtype=torch.long))


def test_config_is_validated():
    assert SpecCodecConfig().model is None
    with pytest.raises(ValidationError):
        SpecCodecConfig(griffin_lim_iters=-1)
    with pytest.raises(ValidationError):
        SpecCodecConfig(modle="x")


def test_missing_or_foreign_model_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="fit-codec"):
        load_speccodec(tmp_path)
    (tmp_path / "speccodec.json").write_text(json.dumps({"format": "other"}))
    (tmp_path / "speccodec.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="not a magnetkit-speccodec"):
        load_speccodec(tmp_path)


# ---------------------------------------------------------------------------------------- fitting
def test_fit_save_load_round_trip(tiny_data, tmp_path):
    messages = []
    fitted = fit_codec(tiny_data, tmp_path / "codec", TINY_FIT, progress=messages.append)
    assert fitted.num_codebooks == 2 and fitted.cardinality == 8
    assert any("residual rms" in m for m in messages)
    loaded = build("codec", "speccodec", {"model": str(tmp_path / "codec")})
    wav = torch.from_numpy(make_clip(0, "heldout", 0).audio).view(1, 1, -1)
    assert torch.equal(fitted.encode(wav), loaded.encode(wav))  # float16 storage keeps the assignments
    assert loaded.fit_info["clips"] == 6 and loaded.fit_info["tokens"] == 6 * 20
    assert len(loaded.encode(wav).unique()) > 2


def test_fit_is_deterministic(tiny_data):
    a = fit_codec(tiny_data, None, TINY_FIT)
    b = fit_codec(tiny_data, None, TINY_FIT)
    assert torch.equal(a.shape_books, b.shape_books) and torch.equal(a.gain_book, b.gain_book)


def test_fit_needs_enough_tokens(tiny_data):
    with pytest.raises(UsageError, match="k-means needs"):
        fit_codec(tiny_data, None, FitConfig(params={"cardinality": 512}, tokens_per_clip=5))


# -------------------------------------------------------------------------------------------- CLI
def test_cli_synth_fit_and_measure(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "codec"
    assert main(["synth-data", str(data), "--clips", "4", "--seed", "2"]) == 0
    assert len((data / "manifest.jsonl").read_text().splitlines()) == 4
    assert main(["fit-codec", str(data), str(out), "--cardinality", "8", "--shape-levels", "1",
                 "--tokens-per-clip", "20", "--iters", "2", "--eval-clips", "1"]) == 0
    printed = capsys.readouterr().out
    assert "fidelity on 1 held-out clips" in printed and "judged attributes kept" in printed
    assert main(["codec-fidelity", "speccodec", f"model={out}", "--clips", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["clips"] == 1 and 0 <= report["attributes_kept"] <= 1


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["fit-codec", str(tmp_path / "nothing"), str(tmp_path / "out")]) == 2
    assert main(["codec-fidelity", "nosuchcodec"]) == 2
    assert main(["codec-fidelity", "speccodec", "griffin_lim_iters=-3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error:") for line in err)
    assert "griffin_lim_iters" in err[2]
