"""The codec contract suite: checks any `Codec` implementation, built-in or third-party.

Use it in two ways::

    from magnetkit.testing.codec_contract import check_codec
    check_codec(my_codec)                      # every check, AssertionError on the first failure

    from magnetkit.testing.codec_contract import CodecContract
    class TestMyCodec(CodecContract):          # one pytest test per check
        @pytest.fixture(scope="class")
        def codec(self):
            return build_my_codec()

A codec that decodes long sequences window by window may expose
``decode_chunked(codes, chunk_frames, context_frames=None)``; the suite then checks that small
windows give what a single window gives. Keep the codec tiny: every check runs in well under a
second on a CPU for a small random model.
"""

from __future__ import annotations

import math

import torch

from magnetkit.interfaces import Codec
from magnetkit.testing.checks import expect

__all__ = [
    "CodecContract",
    "check_attributes",
    "check_batch_consistency",
    "check_chunked_decode",
    "check_codec",
    "check_decode",
    "check_deterministic",
    "check_encode",
    "check_round_trip",
    "random_codes",
    "sample_audio",
]


# ------------------------------------------------------------------------------ inputs
def sample_audio(codec: Codec, seconds: float = 1.0, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Deterministic ``[batch, C, S]`` audio: a different tone plus noise in every item and channel."""
    generator = torch.Generator().manual_seed(seed)
    samples = max(1, round(seconds * codec.sample_rate))
    t = torch.arange(samples, dtype=torch.float32) / codec.sample_rate
    freqs = 110.0 * (1 + torch.arange(batch * codec.channels, dtype=torch.float32)).view(batch, codec.channels, 1)
    tone = 0.3 * torch.sin(2 * math.pi * freqs * t)
    return tone + 0.05 * torch.randn(batch, codec.channels, samples, generator=generator)


def random_codes(codec: Codec, frames: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Uniformly random ``[batch, K, frames]`` int64 codes in ``[0, cardinality)``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, codec.cardinality, (batch, codec.num_codebooks, frames), generator=generator)


def _samples_per_frame(codec: Codec) -> float:
    return codec.sample_rate / codec.frame_rate


# ------------------------------------------------------------------------------ checks
def check_attributes(codec: Codec) -> None:
    """The five contract attributes exist with sensible types and values."""
    expect(isinstance(codec, Codec), f"{type(codec).__name__} lacks part of the Codec protocol")
    for name in ("sample_rate", "channels", "num_codebooks", "cardinality"):
        value = getattr(codec, name)
        expect(isinstance(value, int) and not isinstance(value, bool), f"{name} must be an int, got {value!r}")
    expect(isinstance(codec.frame_rate, (int, float)) and codec.frame_rate > 0, f"frame_rate is {codec.frame_rate!r}")
    expect(codec.sample_rate > 0 and codec.channels >= 1 and codec.num_codebooks >= 1, "sizes must be positive")
    expect(codec.cardinality >= 2, f"cardinality is {codec.cardinality}")
    expect(codec.frame_rate < codec.sample_rate, "a frame must span more than one sample")


def check_encode(codec: Codec, seconds: float = 1.0, frame_slack: int = 1) -> torch.Tensor:
    """``encode`` gives ``[B, K, T]`` int64 codes in range, T = duration * frame_rate (+- slack)."""
    wav = sample_audio(codec, seconds)
    codes = codec.encode(wav)
    dtype = getattr(codes, "dtype", None)
    expect(isinstance(codes, torch.Tensor) and dtype == torch.int64, f"codes must be an int64 tensor, got {dtype}")
    expect(codes.dim() == 3, f"codes must be [B, K, T], got {tuple(codes.shape)}")
    expect(codes.shape[:2] == (wav.shape[0], codec.num_codebooks), (
        f"codes are {tuple(codes.shape)}, expected [{wav.shape[0]}, {codec.num_codebooks}, T]"))
    expected = wav.shape[-1] / _samples_per_frame(codec)
    expect(abs(codes.shape[-1] - expected) <= frame_slack, (
        f"{wav.shape[-1]} samples gave {codes.shape[-1]} frames, expected about {expected:.2f}"))
    expect(int(codes.min()) >= 0 and int(codes.max()) < codec.cardinality, (
        f"codes range [{int(codes.min())}, {int(codes.max())}] is outside [0, {codec.cardinality})"))
    # A codec whose codebooks are empty (e.g. a random EncodecModel) maps everything to one code.
    expect(codes.unique().numel() > 1, "every frame encoded to the same code: are the codebooks initialised?")
    return codes


def check_decode(codec: Codec, seconds: float = 1.0) -> torch.Tensor:
    """``decode`` of random codes gives finite ``[B, C, S]`` float audio, S = T * samples per frame (+- a frame)."""
    frames = max(1, round(seconds * codec.frame_rate))
    codes = random_codes(codec, frames)
    wav = codec.decode(codes)
    expect(isinstance(wav, torch.Tensor) and wav.dtype.is_floating_point, "decode must return float audio")
    expect(wav.dim() == 3 and wav.shape[:2] == (codes.shape[0], codec.channels), (
        f"decoded audio is {tuple(wav.shape)}, expected [{codes.shape[0]}, {codec.channels}, S]"))
    expected = frames * _samples_per_frame(codec)
    expect(abs(wav.shape[-1] - expected) <= _samples_per_frame(codec), (
        f"{frames} frames decoded to {wav.shape[-1]} samples, expected about {expected:.0f}"))
    expect(torch.isfinite(wav).all(), "decoded audio has NaN or infinite samples")
    return wav


def check_round_trip(codec: Codec, seconds: float = 1.0) -> torch.Tensor:
    """``decode(encode(wav))`` runs and gives finite audio of (about) the input's shape."""
    wav = sample_audio(codec, seconds)
    out = codec.decode(codec.encode(wav))
    expect(out.shape[:2] == wav.shape[:2], f"round trip changed [B, C]: {tuple(wav.shape)} -> {tuple(out.shape)}")
    expect(abs(out.shape[-1] - wav.shape[-1]) <= _samples_per_frame(codec), (
        f"round trip changed the length too much: {wav.shape[-1]} -> {out.shape[-1]} samples"))
    expect(torch.isfinite(out).all(), "round-trip audio has NaN or infinite samples")
    return out


def check_deterministic(codec: Codec, seconds: float = 1.0) -> None:
    """Encoding (and decoding) the same input twice gives the same result."""
    wav = sample_audio(codec, seconds)
    expect(torch.equal(codec.encode(wav), codec.encode(wav)), "encode is not deterministic")
    codes = random_codes(codec, max(1, round(seconds * codec.frame_rate)))
    expect(torch.equal(codec.decode(codes), codec.decode(codes)), "decode is not deterministic")


def check_batch_consistency(codec: Codec, seconds: float = 1.0, atol: float = 1e-4,
                            max_code_mismatch: float = 0.0) -> None:
    """A batch encodes and decodes as its items do one by one.

    ``max_code_mismatch`` is the fraction of codes allowed to differ, for codecs whose batched
    kernels round differently enough to flip a nearest-codebook tie.
    """
    wav = sample_audio(codec, seconds, batch=3)
    batched = codec.encode(wav)
    single = torch.cat([codec.encode(wav[i:i + 1]) for i in range(wav.shape[0])])
    expect(batched.shape == single.shape, f"batched codes {tuple(batched.shape)} vs one by one {tuple(single.shape)}")
    mismatch = (batched != single).float().mean().item()
    expect(mismatch <= max_code_mismatch, f"{mismatch:.2%} of codes differ between batched and one-by-one encoding")
    codes = random_codes(codec, max(1, round(seconds * codec.frame_rate)), batch=3)
    out = codec.decode(codes)
    one = torch.cat([codec.decode(codes[i:i + 1]) for i in range(codes.shape[0])])
    expect(out.shape == one.shape, f"batched audio {tuple(out.shape)} vs one by one {tuple(one.shape)}")
    diff = (out - one).abs().max().item()
    expect(diff <= atol, f"batched and one-by-one decoding differ by {diff:.3g} (> {atol:g})")


def check_chunked_decode(codec: Codec, seconds: float = 3.0, atol: float = 1e-4, windows: int = 3) -> None:
    """Long codes decoded in ``windows`` windows equal a one-window decode (codecs with ``decode_chunked``)."""
    decode_chunked = getattr(codec, "decode_chunked", None)
    if decode_chunked is None:
        return
    frames = max(windows, round(seconds * codec.frame_rate))
    codes = random_codes(codec, frames, batch=1, seed=1)
    whole = decode_chunked(codes, frames)
    expect(torch.allclose(whole, codec.decode(codes), atol=atol), "decode_chunked with one window differs from decode")
    pieces = decode_chunked(codes, math.ceil(frames / windows))
    expect(pieces.shape == whole.shape, f"chunked decode is {tuple(pieces.shape)}, one-shot {tuple(whole.shape)}")
    diff = (pieces - whole).abs().max().item()
    expect(diff <= atol, f"decoding in {windows} windows differs from one window by {diff:.3g} (> {atol:g})")


def check_codec(codec: Codec, *, seconds: float = 1.0, atol: float = 1e-4, frame_slack: int = 1,
                max_code_mismatch: float = 0.0, chunk_seconds: float | None = None) -> None:
    """Run every contract check on ``codec``; raises AssertionError naming the first failure.

    Args:
        codec: the codec under test (small, so this takes a second or two).
        seconds: length of the test audio.
        atol: tolerance on audio that should match (batched vs single, chunked vs one-shot).
        frame_slack: how far the frame count may be from ``duration * frame_rate``.
        max_code_mismatch: fraction of codes allowed to differ between batched and single encoding.
        chunk_seconds: length of the chunked-decoding test; default ``3 * seconds``.
    """
    check_attributes(codec)
    check_encode(codec, seconds, frame_slack)
    check_decode(codec, seconds)
    check_round_trip(codec, seconds)
    check_deterministic(codec, seconds)
    check_batch_consistency(codec, seconds, atol, max_code_mismatch)
    check_chunked_decode(codec, chunk_seconds or 3 * seconds, atol)


# ------------------------------------------------------------------------------ pytest
class CodecContract:
    """Mix-in test class: subclass it and provide a ``codec`` fixture; override the knobs as needed."""

    seconds: float = 1.0
    atol: float = 1e-4
    frame_slack: int = 1
    max_code_mismatch: float = 0.0

    def test_attributes(self, codec: Codec) -> None:
        check_attributes(codec)

    def test_encode(self, codec: Codec) -> None:
        check_encode(codec, self.seconds, self.frame_slack)

    def test_decode(self, codec: Codec) -> None:
        check_decode(codec, self.seconds)

    def test_round_trip(self, codec: Codec) -> None:
        check_round_trip(codec, self.seconds)

    def test_deterministic(self, codec: Codec) -> None:
        check_deterministic(codec, self.seconds)

    def test_batch_consistency(self, codec: Codec) -> None:
        check_batch_consistency(codec, self.seconds, self.atol, self.max_code_mismatch)

    def test_chunked_decode(self, codec: Codec) -> None:
        check_chunked_decode(codec, 3 * self.seconds, self.atol)
