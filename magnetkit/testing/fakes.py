"""Tiny deterministic fakes of the component kinds, for tests of the core and of plugins."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from pydantic import BaseModel, ConfigDict, Field

from magnetkit.hookspecs import hookimpl
from magnetkit.interfaces import Condition


class FakeCodecConfig(BaseModel):
    """Parameters of `FakeCodec`."""

    model_config = ConfigDict(extra="forbid")

    sample_rate: int = Field(8000, gt=0)
    hop: int = Field(160, gt=0)
    num_codebooks: int = Field(4, gt=0)
    cardinality: int = Field(64, gt=1)
    channels: int = Field(1, gt=0)


class FakeCodec:
    """Residual scalar quantisation of each frame's mean: exact shapes, no learning."""

    def __init__(self, config: FakeCodecConfig | None = None):
        config = config or FakeCodecConfig()
        self.sample_rate = config.sample_rate
        self.channels = config.channels
        self.num_codebooks = config.num_codebooks
        self.cardinality = config.cardinality
        self.hop = config.hop
        self.frame_rate = config.sample_rate / config.hop

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """[B, C, S] -> [B, K, T]: level k quantises the residual left by levels < k."""
        frames = wav.mean(dim=1)[:, : wav.shape[-1] // self.hop * self.hop]
        residual = (frames.reshape(wav.shape[0], -1, self.hop).mean(-1).clamp(-1, 1) + 1) / 2  # [B, T] in [0, 1]
        codes = []
        for _ in range(self.num_codebooks):
            code = (residual * self.cardinality).floor().clamp(0, self.cardinality - 1)
            codes.append(code.long())
            residual = residual * self.cardinality - code
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """[B, K, T] -> [B, C, S] (piecewise-constant frames)."""
        value = torch.zeros(codes.shape[0], codes.shape[2])
        for k in reversed(range(codes.shape[1])):
            value = (codes[:, k].float() + (value if k < codes.shape[1] - 1 else 0.5)) / self.cardinality
        wav = (value * 2 - 1).repeat_interleave(self.hop, dim=-1)
        return wav[:, None].expand(-1, self.channels, -1).contiguous()


class FakeConditionerConfig(BaseModel):
    """Parameters of `FakeConditioner`."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(16, gt=0, description="width of the fake text encoder")


class FakeConditioner(torch.nn.Module):
    """Characters -> embeddings -> learned projection; None or "" is the all-zero null condition."""

    def __init__(self, config: FakeConditionerConfig | None = None, *, output_dim: int = 32):
        super().__init__()
        config = config or FakeConditionerConfig()
        self.output_dim = output_dim
        generator = torch.Generator().manual_seed(0)
        # The frozen "encoder" is a fixed table outside the module tree, as real backbones are.
        self.__dict__["table"] = torch.randn(256, config.width, generator=generator)
        self.output_proj = torch.nn.Linear(config.width, output_dim)

    def forward(self, texts: Sequence[str | None]) -> Condition:
        """Embed each text (bytes as tokens); pad to the longest."""
        ids = [list((t or "").encode())[:64] or [0] for t in texts]
        length = max(len(i) for i in ids)
        tokens = torch.zeros(len(ids), length, dtype=torch.long)
        mask = torch.zeros(len(ids), length, dtype=torch.long)
        for row, (text, seq) in enumerate(zip(texts, ids)):
            tokens[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = int(bool(text))
        embeddings = self.output_proj(self.table[tokens]) * mask[..., None]
        return Condition(embeddings, mask)


def make_fake_codec(config: FakeCodecConfig) -> FakeCodec:
    """A tiny deterministic codec for tests (no weights)."""
    return FakeCodec(config)


def make_fake_conditioner(config: FakeConditionerConfig, *, output_dim: int) -> FakeConditioner:
    """A tiny deterministic text conditioner for tests (no weights to download)."""
    torch.manual_seed(0)
    return FakeConditioner(config, output_dim=output_dim)


class FakePlugin:
    """A plugin registering the fakes as ``fake`` codec and conditioner.

    ``magnetkit.plugins.register_plugin(FakePlugin(), "fakes")`` makes them selectable by recipes.
    """

    @hookimpl
    def register_codecs(self, register) -> None:
        """Register the fake codec."""
        register("fake", make_fake_codec, config=FakeCodecConfig)

    @hookimpl
    def register_conditioners(self, register) -> None:
        """Register the fake conditioner."""
        register("fake", make_fake_conditioner, config=FakeConditionerConfig)


def sine(seconds: float, sample_rate: int, freq: float = 220.0, batch: int = 1, channels: int = 1) -> torch.Tensor:
    """A [B, C, S] test tone at half scale."""
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    wav = 0.5 * torch.sin(2 * math.pi * freq * t)
    return wav.expand(batch, channels, -1).contiguous()
