"""Audio in and out: reading, channel and rate conversion, normalised writing, chunked decoding.

Semantics follow audiocraft's ``audio_read`` / ``convert_audio`` / ``audio_write``, on
soundfile (WAV, FLAC, OGG, MP3 as libsndfile reads them), soxr and pyloudnorm instead of
ffmpeg, julius and torchaudio. Every problem with a file is one `AudioError` naming it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch

from magnetkit.errors import AudioError

Strategy = Literal["loudness", "peak", "rms", "clip"]

# Formats `write_audio` picks from the file suffix, with the soundfile format name.
WRITE_FORMATS: dict[str, str] = {".wav": "WAV", ".flac": "FLAC"}

_LOUDNESS_BLOCK_S = 0.4  # BS.1770 gating block: loudness is undefined for shorter clips
_ENERGY_FLOOR = 2e-3  # audiocraft's floor: quieter audio is not loudness-normalised


# ------------------------------------------------------------------------------ reading
def read_audio(path: str | os.PathLike, sample_rate: int | None = None, channels: int | None = None,
               offset: float = 0.0, duration: float | None = None) -> tuple[torch.Tensor, int]:
    """Read an audio file as float32 ``[C, S]``, optionally resampled and re-channelled.

    Args:
        path: any file soundfile reads (WAV, FLAC, OGG/Vorbis, MP3, ...).
        sample_rate: resample to this rate (soxr); None keeps the file's rate.
        channels: convert to this many channels (see `convert_channels`); None keeps them.
        offset: seconds to skip at the start.
        duration: seconds to read; None reads to the end.

    Returns:
        ``(wav [C, S] float32, sample rate of wav)``.

    Raises:
        AudioError: the file is missing, empty, corrupt, unsupported, or cannot be converted.
    """
    import soundfile

    path = Path(path)
    if not path.exists():
        raise AudioError(f"audio file {str(path)!r} does not exist")
    if not path.is_file():
        raise AudioError(f"audio file {str(path)!r} is not a file")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file {str(path)!r} is empty (0 bytes)")
    try:
        with soundfile.SoundFile(str(path)) as f:
            file_sr = f.samplerate
            start = max(0, int(round(offset * file_sr)))
            frames = -1 if duration is None else max(0, int(round(duration * file_sr)))
            if start:
                f.seek(min(start, f.frames))
            data = f.read(frames=frames, dtype="float32", always_2d=True)  # [S, C]
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"cannot read audio file {str(path)!r}: {_first_line(exc)}") from exc
    if data.shape[0] == 0:
        raise AudioError(f"audio file {str(path)!r} has no samples"
                         + (f" from {offset:g} s on" if start else ""))
    wav = torch.from_numpy(np.ascontiguousarray(data.T))
    try:
        wav = convert_audio(wav, file_sr, sample_rate or file_sr, channels or wav.shape[0])
    except AudioError as exc:
        raise AudioError(f"audio file {str(path)!r}: {exc}") from exc
    return wav, int(sample_rate or file_sr)


# ---------------------------------------------------------------------------- conversion
def convert_channels(wav: torch.Tensor, channels: int) -> torch.Tensor:
    """``[..., C, S]`` -> ``[..., channels, S]``: downmix by mean, replicate mono, keep the first.

    Raises:
        AudioError: more channels are asked of a multi-channel signal than it has.
    """
    src = wav.shape[-2]
    if channels < 1:
        raise AudioError(f"cannot convert audio to {channels} channels")
    if src == channels:
        return wav
    if channels == 1:
        return wav.mean(dim=-2, keepdim=True)
    if src == 1:
        return wav.expand(*wav.shape[:-2], channels, wav.shape[-1]).contiguous()
    if src > channels:
        return wav[..., :channels, :]
    # Inventing channels for a non-mono signal has no obvious right answer (audiocraft refuses too).
    raise AudioError(f"cannot make {channels} channels from {src}-channel audio")


def resample(wav: torch.Tensor, from_sr: int, to_sr: int) -> torch.Tensor:
    """Resample ``[..., S]`` with soxr (high quality), keeping dtype and device."""
    import soxr

    if int(from_sr) == int(to_sr):
        return wav
    if from_sr <= 0 or to_sr <= 0:
        raise AudioError(f"cannot resample from {from_sr} Hz to {to_sr} Hz")
    lead, length = wav.shape[:-1], wav.shape[-1]
    flat = wav.detach().reshape(-1, length).to("cpu", torch.float32).numpy().T  # soxr wants [S, channels]
    out = soxr.resample(np.ascontiguousarray(flat), int(from_sr), int(to_sr), quality="HQ")
    out = torch.from_numpy(np.ascontiguousarray(out.T)).reshape(*lead, -1)
    return out.to(device=wav.device, dtype=wav.dtype)


def convert_audio(wav: torch.Tensor, from_sr: int, to_sr: int, to_channels: int) -> torch.Tensor:
    """Resample ``[..., C, S]`` from ``from_sr`` to ``to_sr`` and convert to ``to_channels``."""
    if wav.dim() < 2:
        raise AudioError(f"expected audio shaped [..., C, S], got {tuple(wav.shape)}")
    return convert_channels(resample(wav, from_sr, to_sr), to_channels)


# ------------------------------------------------------------------------------- writing
def normalize_audio(wav: torch.Tensor, sample_rate: int, strategy: Strategy = "loudness", *,
                    normalize: bool = True, peak_clip_headroom_db: float = 1.0, rms_headroom_db: float = 18.0,
                    loudness_headroom_db: float = 14.0, loudness_compressor: bool = False) -> torch.Tensor:
    """Scale ``[C, S]`` audio as audiocraft's ``normalize_audio`` does, ready for 16-bit PCM.

    ``loudness`` brings the integrated loudness (ITU-R BS.1770, pyloudnorm) to
    ``-loudness_headroom_db`` LUFS and then clips; ``peak`` scales the peak to
    ``-peak_clip_headroom_db`` dBFS; ``rms`` scales the RMS to ``-rms_headroom_db`` dBFS and
    clips; ``clip`` only clips at ``-peak_clip_headroom_db`` dBFS. With ``normalize=False``,
    ``peak`` and ``rms`` only ever scale down.
    """
    scale_peak = 10 ** (-peak_clip_headroom_db / 20)
    if strategy == "peak":
        peak = wav.abs().max()
        if peak > 0:
            rescaling = scale_peak / peak
            if normalize or rescaling < 1:
                wav = wav * rescaling
        return wav
    if strategy == "clip":
        return wav.clamp(-scale_peak, scale_peak)
    if strategy == "rms":
        rms = wav.mean(dim=0).pow(2).mean().sqrt()
        if rms > 0:
            rescaling = 10 ** (-rms_headroom_db / 20) / rms
            if normalize or rescaling < 1:
                wav = wav * rescaling
        return wav.clamp(-1, 1)
    if strategy == "loudness":
        wav = _normalize_loudness(wav, sample_rate, -loudness_headroom_db)
        if loudness_compressor:
            wav = torch.tanh(wav)
        return wav.clamp(-1, 1)
    raise AudioError(f"unknown normalisation strategy {strategy!r}; use loudness, peak, rms or clip")


def _normalize_loudness(wav: torch.Tensor, sample_rate: int, target_lufs: float) -> torch.Tensor:
    import pyloudnorm

    # Near-silence and clips shorter than one gating block have no meaningful loudness:
    # leave them as they are, as audiocraft does below its energy floor.
    if wav.pow(2).mean().sqrt().item() < _ENERGY_FLOOR or wav.shape[-1] < _LOUDNESS_BLOCK_S * sample_rate:
        return wav
    meter = pyloudnorm.Meter(sample_rate)
    loudness = meter.integrated_loudness(wav.detach().to("cpu", torch.float64).numpy().T)
    if not math.isfinite(loudness):
        return wav
    return wav * 10.0 ** ((target_lufs - loudness) / 20.0)


def write_audio(path: str | os.PathLike, wav: torch.Tensor, sample_rate: int, strategy: Strategy = "loudness", *,
                normalize: bool = True, peak_clip_headroom_db: float = 1.0, rms_headroom_db: float = 18.0,
                loudness_headroom_db: float = 14.0, loudness_compressor: bool = False,
                subtype: str = "PCM_16") -> Path:
    """Normalise ``[C, S]`` (or ``[S]``) audio and write it as WAV or FLAC, chosen by suffix.

    Args:
        path: destination ending in ``.wav`` or ``.flac``; parent folders are created.
        wav: float audio, ``[C, S]`` or mono ``[S]``.
        sample_rate: its sample rate.
        strategy: ``loudness`` (default, target ``-loudness_headroom_db`` LUFS), ``peak``,
            ``rms`` or ``clip``; see `normalize_audio`.
        subtype: soundfile sample format (``PCM_16`` as audiocraft writes, ``PCM_24``, ``FLOAT`` for WAV).

    Returns:
        The path written.

    Raises:
        AudioError: unsupported suffix, bad shape, non-finite samples, or the write failed.
    """
    import soundfile

    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(f"cannot write audio file {str(path)!r}: unsupported suffix {path.suffix!r} "
                         f"(use {' or '.join(WRITE_FORMATS)})")
    if not wav.dtype.is_floating_point:
        raise AudioError(f"cannot write audio file {str(path)!r}: samples must be float, got {wav.dtype}")
    if wav.dim() == 1:
        wav = wav[None]
    if wav.dim() != 2 or wav.shape[-1] == 0:
        raise AudioError(f"cannot write audio file {str(path)!r}: expected [C, S] audio, got {tuple(wav.shape)}")
    if not torch.isfinite(wav).all():
        raise AudioError(f"cannot write audio file {str(path)!r}: audio has NaN or infinite samples")
    wav = wav.detach().to("cpu", torch.float32)
    wav = normalize_audio(wav, sample_rate, strategy, normalize=normalize, peak_clip_headroom_db=peak_clip_headroom_db,
                          rms_headroom_db=rms_headroom_db, loudness_headroom_db=loudness_headroom_db,
                          loudness_compressor=loudness_compressor)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        soundfile.write(str(path), wav.numpy().T, int(sample_rate), format=fmt, subtype=subtype)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        if path.exists():  # never leave a half-written file behind
            path.unlink()
        raise AudioError(f"cannot write audio file {str(path)!r}: {_first_line(exc)}") from exc
    return path


# ----------------------------------------------------------------------- chunked decoding
def decode_in_chunks(decode: Callable[[torch.Tensor], torch.Tensor], codes: torch.Tensor, hop_length: int,
                     chunk_frames: int, context_frames: int) -> torch.Tensor:
    """Decode ``[B, K, T]`` codes window by window and stitch the audio ``[B, C, T * hop_length]``.

    Each window of ``chunk_frames`` frames is decoded together with ``context_frames`` frames on
    either side, and only its own samples are kept. A codec decoder's output at a frame depends
    on a bounded neighbourhood (convolutions) or a fading memory (EnCodec's LSTM), so enough
    context makes the result match a one-shot decode while memory stays bounded.

    Args:
        decode: one-shot decoder, ``[B, K, t]`` -> ``[B, C, >= t * hop_length]``.
        codes: the codes to decode.
        hop_length: audio samples per frame.
        chunk_frames: frames kept from each window (> 0).
        context_frames: frames of context decoded and dropped on each side (>= 0).
    """
    if chunk_frames <= 0 or context_frames < 0:
        raise ValueError(f"chunk_frames must be > 0 and context_frames >= 0, got {chunk_frames}, {context_frames}")
    total = codes.shape[-1]
    pieces = []
    for start in range(0, total, chunk_frames):
        stop = min(start + chunk_frames, total)
        lo, hi = max(0, start - context_frames), min(total, stop + context_frames)
        wav = decode(codes[..., lo:hi])
        pieces.append(wav[..., (start - lo) * hop_length:(stop - lo) * hop_length])
    return torch.cat(pieces, dim=-1)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

