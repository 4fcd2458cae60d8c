"""The ``encodec`` embedder: a codec's continuous latents, one vector per codec frame.

Any codec plugin whose codec has ``latents(wav [B, C, S]) -> [B, D, T]`` works (``codec`` names
it); the default is EnCodec 32 kHz, MAGNeT's own codec, whose encoder output (128-d, 50 Hz)
is taken before residual quantisation. Each clip is encoded alone, so its vectors do not
depend on padding. Per-frame vectors: a 10 s clip gives 500.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from magnetkit import UsageError, build
from magnetkit_embedders.common import clip_lengths
from magnetkit_embedders.config import CodecEmbedderConfig




class CodecEmbedder:
    """Codec encoder latents ``[T, D]`` per clip."""

    per_frame = True

    def __init__(self, codec: Any, config: CodecEmbedderConfig):
        if not callable(getattr(codec, "latents", None)):
            raise UsageError(f"codec {config.codec!r} has no latents() method, so it cannot be an embedder")
        self.config, self.codec = config, codec
        self.sample_rate, self.channels = int(codec.sample_rate), int(codec.channels)
        probe = codec.latents(torch.zeros(1, self.channels, int(codec.sample_rate // 10)))
        self.dim = int(probe.shape[1])
        self.cache_key = f"codec-latents-1|{config.codec}|{config.model}"

    def to(self, device: torch.device | str) -> "CodecEmbedder":
        """Run the codec on ``device``."""
        self.codec.to(device)
        return self

    def embed_audio(self, wav: torch.Tensor, lengths: Sequence[int] | None = None) -> list[torch.Tensor]:
        """[B, C, S] at the codec's rate -> per clip ``[T, D]`` latents (float32, CPU)."""
        lengths = clip_lengths(wav, lengths)
        return [self.codec.latents(clip[None, :, :length])[0].T.float().cpu() for clip, length in zip(wav, lengths)]


def factory(config: CodecEmbedderConfig) -> CodecEmbedder:
    """Continuous codec latents (EnCodec 32 kHz by default), one vector per frame."""
    return CodecEmbedder(build("codec", config.codec, {"model": config.model}), config)
