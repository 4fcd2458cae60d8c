"""Audio IO: reading with conversion, writing with audiocraft's normalisation strategies, chunked decoding."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from magnetkit.audio import convert_audio, convert_channels, decode_in_chunks, read_audio, resample, write_audio
from magnetkit.errors import AudioError

PCM16_STEP = 1 / 32768


def tone(seconds: float = 1.0, sample_rate: int = 16000, freq: float = 440.0, amp: float = 0.5,
         channels: int = 1) -> torch.Tensor:
    t = torch.arange(round(seconds * sample_rate), dtype=torch.float32) / sample_rate
    rows = [amp * torch.sin(2 * math.pi * freq * (c + 1) * t) for c in range(channels)]
    return torch.stack(rows)


def dominant_frequency(wav: torch.Tensor, sample_rate: int) -> float:
    spectrum = torch.fft.rfft(wav[0]).abs()
    return spectrum.argmax().item() * sample_rate / wav.shape[-1]


# ------------------------------------------------------------------------------- reading
@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_write_then_read_round_trip(tmp_path, suffix):
    wav = tone(0.5, 16000, channels=2)
    path = write_audio(tmp_path / f"out{suffix}", wav, 16000, strategy="clip")  # |x| = 0.5: untouched
    read, sr = read_audio(path)
    assert sr == 16000 and read.dtype == torch.float32 and read.shape == wav.shape
    assert (read - wav).abs().max().item() <= PCM16_STEP


def test_read_converts_channels_like_audiocraft(tmp_path):
    stereo = tone(0.2, 8000, channels=2)
    path = write_audio(tmp_path / "stereo.wav", stereo, 8000, strategy="clip")
    mono, _ = read_audio(path, channels=1)
    assert mono.shape == (1, 1600)
    assert torch.allclose(mono, stereo.mean(dim=0, keepdim=True), atol=PCM16_STEP)
    mono_path = write_audio(tmp_path / "mono.wav", stereo[:1], 8000, strategy="clip")
    twice, _ = read_audio(mono_path, channels=2)
    assert twice.shape == (2, 1600) and torch.equal(twice[0], twice[1])


def test_more_channels_than_a_multichannel_file_has_is_an_error(tmp_path):
    path = write_audio(tmp_path / "three.wav", tone(0.1, 8000, channels=3), 8000, strategy="clip")
    first_two, _ = read_audio(path, channels=2)
    assert first_two.shape[0] == 2
    with pytest.raises(AudioError, match="three.wav.*cannot make 4 channels from 3"):
        read_audio(path, channels=4)


def test_read_resamples_with_soxr(tmp_path):
    path = write_audio(tmp_path / "tone.wav", tone(1.0, 32000, freq=1000.0), 32000, strategy="clip")
    wav, sr = read_audio(path, sample_rate=16000)
    assert sr == 16000 and wav.shape == (1, 16000)
    assert dominant_frequency(wav, 16000) == pytest.approx(1000.0, abs=2)
    assert wav.abs().max().item() == pytest.approx(0.5, abs=0.01)


def test_read_a_segment(tmp_path):
    wav = tone(1.0, 8000)
    path = write_audio(tmp_path / "tone.wav", wav, 8000, strategy="clip")
    segment, _ = read_audio(path, offset=0.25, duration=0.5)
    assert segment.shape == (1, 4000)
    assert (segment - wav[:, 2000:6000]).abs().max().item() <= PCM16_STEP
    with pytest.raises(AudioError, match="has no samples from 2 s on"):
        read_audio(path, offset=2.0)


def test_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(AudioError, match=r"'.*nowhere\.wav' does not exist"):
        read_audio(tmp_path / "nowhere.wav")


def test_empty_file_is_one_clear_error(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.wav' is empty"):
        read_audio(tmp_path / "empty.wav")
    soundfile.write(str(tmp_path / "no_frames.wav"), np.zeros((0, 1), dtype=np.float32), 8000)
    with pytest.raises(AudioError, match=r"no_frames\.wav' has no samples"):
        read_audio(tmp_path / "no_frames.wav")


@pytest.mark.parametrize("name, content", [
    ("corrupt.wav", b"RIFF\x10\x00\x00\x00WAVEfmt garbage that is not audio"),
    ("notes.txt", b"this is text, not audio\n" * 20),
    ("random.flac", bytes(range(256)) * 8),
], ids=["corrupt-wav", "text", "random-bytes"])
def test_corrupt_or_unsupported_file_is_one_clear_error(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(AudioError) as info:
        read_audio(tmp_path / name)
    message = str(info.value)
    assert name in message and "cannot read audio file" in message and "\n" not in message


def test_a_folder_is_not_an_audio_file(tmp_path):
    with pytest.raises(AudioError, match="is not a file"):
        read_audio(tmp_path)


# ---------------------------------------------------------------------------- conversion
def test_convert_audio_on_batches():
    batch = torch.stack([tone(0.5, 48000, channels=2), tone(0.5, 48000, freq=300.0, channels=2)])
    out = convert_audio(batch, 48000, 16000, 1)
    assert out.shape == (2, 1, 8000)
    assert torch.allclose(out[1], convert_audio(batch[1], 48000, 16000, 1), atol=1e-6)
    assert resample(batch, 48000, 48000) is batch
    assert convert_channels(batch, 2) is batch


# ------------------------------------------------------------------------------- writing
def measured_lufs(path: Path) -> float:
    import pyloudnorm

    data, sr = soundfile.read(str(path))
    return pyloudnorm.Meter(sr).integrated_loudness(data)


def test_loudness_strategy_targets_minus_headroom_lufs(tmp_path):
    path = write_audio(tmp_path / "loud.wav", tone(2.0, 16000, amp=0.05), 16000)  # default: loudness, 14 dB
    assert measured_lufs(path) == pytest.approx(-14.0, abs=0.1)
    quieter = write_audio(tmp_path / "quiet.flac", tone(2.0, 16000, amp=0.05), 16000, loudness_headroom_db=20)
    assert measured_lufs(quieter) == pytest.approx(-20.0, abs=0.1)


def test_loudness_leaves_silence_and_too_short_clips_alone(tmp_path):
    silent, _ = read_audio(write_audio(tmp_path / "silent.wav", torch.zeros(1, 16000), 16000))
    assert silent.abs().max().item() == 0.0
    short = tone(0.2, 16000, amp=0.05)  # shorter than one 400 ms BS.1770 block
    read, _ = read_audio(write_audio(tmp_path / "short.wav", short, 16000))
    assert (read - short).abs().max().item() <= PCM16_STEP


def test_loudness_compressor_soft_clips(tmp_path):
    path = write_audio(tmp_path / "comp.wav", tone(1.0, 16000, amp=0.05), 16000, loudness_headroom_db=0,
                       loudness_compressor=True)
    read, _ = read_audio(path)
    assert 0.5 < read.abs().max().item() < 1.0


def test_peak_rms_and_clip_strategies(tmp_path):
    wav = tone(1.0, 16000, amp=0.1)
    peak, _ = read_audio(write_audio(tmp_path / "peak.wav", wav, 16000, strategy="peak"))
    assert peak.abs().max().item() == pytest.approx(10 ** (-1 / 20), abs=1e-3)
    rms, _ = read_audio(write_audio(tmp_path / "rms.wav", wav, 16000, strategy="rms"))
    assert rms.pow(2).mean().sqrt().item() == pytest.approx(10 ** (-18 / 20), rel=1e-3)
    clipped, _ = read_audio(write_audio(tmp_path / "clip.wav", 20 * wav, 16000, strategy="clip"))
    assert clipped.abs().max().item() == pytest.approx(10 ** (-1 / 20), abs=1e-3)


def test_without_normalize_peak_only_scales_down(tmp_path):
    quiet = tone(0.5, 16000, amp=0.1)
    same, _ = read_audio(write_audio(tmp_path / "q.wav", quiet, 16000, strategy="peak", normalize=False))
    assert (same - quiet).abs().max().item() <= PCM16_STEP
    loud, _ = read_audio(write_audio(tmp_path / "l.wav", 30 * quiet, 16000, strategy="peak", normalize=False))
    assert loud.abs().max().item() == pytest.approx(10 ** (-1 / 20), abs=1e-3)


def test_write_accepts_mono_1d_and_creates_folders(tmp_path):
    path = write_audio(tmp_path / "a" / "b" / "mono.wav", tone(0.1)[0], 16000, strategy="clip")
    assert path.exists() and soundfile.info(str(path)).channels == 1


def test_write_refuses_bad_input_naming_the_file(tmp_path):
    with pytest.raises(AudioError, match=r"out\.mp3.*unsupported suffix"):
        write_audio(tmp_path / "out.mp3", tone(0.1), 16000)
    bad = tone(0.1)
    bad[0, 10] = float("nan")
    with pytest.raises(AudioError, match=r"nan\.wav.*NaN"):
        write_audio(tmp_path / "nan.wav", bad, 16000)
    with pytest.raises(AudioError, match=r"int\.wav.*float"):
        write_audio(tmp_path / "int.wav", torch.zeros(1, 10, dtype=torch.int16), 16000)
    with pytest.raises(AudioError, match=r"shape\.wav.*\[C, S\]"):
        write_audio(tmp_path / "shape.wav", torch.zeros(1, 1, 10), 16000)
    with pytest.raises(AudioError, match="unknown normalisation strategy"):
        write_audio(tmp_path / "s.wav", tone(0.1), 16000, strategy="loudest")
    assert not list(tmp_path.glob("*.wav"))


# ----------------------------------------------------------------------- chunked decoding
def smoothing_decoder(codes: torch.Tensor, hop: int = 4) -> torch.Tensor:
    """A toy decoder whose output at a frame depends on its neighbours (a 5-frame moving average)."""
    x = codes.float().mean(dim=1, keepdim=True)
    x = torch.nn.functional.avg_pool1d(x, 5, stride=1, padding=2, count_include_pad=False)
    return x.repeat_interleave(hop, dim=-1)


def test_decode_in_chunks_matches_one_shot_with_enough_context():
    codes = torch.randint(0, 100, (2, 3, 47), generator=torch.Generator().manual_seed(0))
    whole = smoothing_decoder(codes)
    assert torch.allclose(decode_in_chunks(smoothing_decoder, codes, 4, 10, context_frames=2), whole)
    assert not torch.allclose(decode_in_chunks(smoothing_decoder, codes, 4, 10, context_frames=0), whole)
    assert decode_in_chunks(smoothing_decoder, codes, 4, 100, context_frames=0).shape == whole.shape == (2, 1, 188)


def test_decode_in_chunks_rejects_bad_windows():
    codes = torch.zeros(1, 1, 5, dtype=torch.long)
    with pytest.raises(ValueError, match="chunk_frames"):
        decode_in_chunks(smoothing_decoder, codes, 4, 0, 1)
