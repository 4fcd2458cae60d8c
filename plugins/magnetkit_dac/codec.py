"""The ``dac`` codec: transformers' ``DacModel`` (Descript Audio Codec) behind magnetkit's `Codec` contract.

transformers' port is used rather than the PyPI ``descript-audio-codec`` package: it loads the
same official weights (descript/dac_16khz, dac_24khz, dac_44khz) and does not import torchaudio.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field

from magnetkit.audio import decode_in_chunks
from magnetkit.errors import CheckpointError, UsageError
from magnetkit.hub import load_complete

_WHAT = "DAC model"


class DacCodecConfig(BaseModel):
    """Parameters of the ``dac`` codec (the recipe's ``codec`` section)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("descript/dac_44khz", description=(
        "hub id (descript/dac_16khz, dac_24khz, dac_44khz) or a transformers folder (config.json + weights)"))
    num_codebooks: int | None = Field(None, ge=1, description="codebooks to use (fewer = lower bitrate); None = all")
    chunk_seconds: float | None = Field(30.0, gt=0, description=(
        "decode longer code sequences window by window, this many seconds each; None = always in one shot"))
    chunk_context_seconds: float = Field(0.5, ge=0, description=(
        "context decoded and dropped on each side of a window (the decoder sees about 0.1 s)"))


def load_dac_model(source: str):
    """A transformers ``DacModel`` from a hub id or a local transformers folder.

    Raises:
        HubUnavailableError: a hub id that is not cached while offline.
        CheckpointError: the folder is missing, incomplete, or not a DAC model.
    """
    from transformers import DacModel

    path = Path(source).expanduser()
    if path.exists() and not (path / "config.json").is_file():
        raise CheckpointError(f"{_WHAT} {source!r} is not a transformers folder (no config.json); convert original "
                              f"DAC weights with transformers' convert_dac_checkpoint script")

    model = load_complete(DacModel, source, what=_WHAT)
    return model.eval()


class DacCodec(torch.nn.Module):
    """DAC as a magnetkit codec: ``[B, 1, S]`` audio <-> ``[B, K, T]`` int64 codes."""

    def __init__(self, model: torch.nn.Module, num_codebooks: int | None = None, chunk_seconds: float | None = 30.0,
                 chunk_context_seconds: float = 0.5):
        super().__init__()
        config = model.config
        self.model = model.eval().requires_grad_(False)
        self.sample_rate: int = int(config.sampling_rate)
        self.channels: int = 1
        self.hop_length: int = int(config.hop_length)
        # config.frame_rate rounds up (86.13 Hz -> 87 for 44.1 kHz): use the exact rate.
        self.frame_rate: float = self.sample_rate / self.hop_length
        self.cardinality: int = int(config.codebook_size)
        self.total_codebooks: int = int(config.n_codebooks)
        if num_codebooks is not None and num_codebooks > self.total_codebooks:
            raise UsageError(f"codec.num_codebooks: {num_codebooks} is more than the {self.total_codebooks} "
                             f"codebooks this DAC model has")
        self.num_codebooks: int = num_codebooks or self.total_codebooks
        self.chunk_frames = None if chunk_seconds is None else max(1, round(chunk_seconds * self.frame_rate))
        self.context_frames = round(chunk_context_seconds * self.frame_rate)

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """``[B, 1, S]`` float audio -> ``[B, K, ceil(S / hop)]`` int64 codes."""
        if wav.dim() != 3 or wav.shape[1] != 1 or wav.shape[-1] == 0:
            raise UsageError(f"DAC encodes [B, 1, S] audio, got {tuple(wav.shape)}")
        # transformers' DacModel drops a partial last frame; pad it to a full one as DAC's own
        # preprocessing does, so every input sample is covered by a code.
        pad = -wav.shape[-1] % self.hop_length
        weight = self._weight()
        wav = torch.nn.functional.pad(wav.to(device=weight.device, dtype=weight.dtype), (0, pad))
        codes = self.model.encode(wav, n_quantizers=self.num_codebooks, return_dict=False)[2]  # [B, K, T]
        return codes[:, : self.num_codebooks].long()

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``[B, K, T]`` codes -> ``[B, 1, T * hop]`` audio; long sequences in windows (see config)."""
        self._check_codes(codes)
        if self.chunk_frames is None or codes.shape[-1] <= self.chunk_frames:
            return self._decode_once(codes)
        return self.decode_chunked(codes, self.chunk_frames)

    @torch.no_grad()
    def decode_chunked(self, codes: torch.Tensor, chunk_frames: int, context_frames: int | None = None) -> torch.Tensor:
        """Decode in windows of ``chunk_frames`` with ``context_frames`` of context on each side."""
        self._check_codes(codes)
        context = self.context_frames if context_frames is None else context_frames
        return decode_in_chunks(self._decode_once, codes, self.hop_length, chunk_frames, context)

    def _decode_once(self, codes: torch.Tensor) -> torch.Tensor:
        codes = codes.to(device=self._weight().device, dtype=torch.long)
        return self.model.decode(audio_codes=codes, return_dict=False)[0].unsqueeze(1)  # [B, S] -> [B, 1, S]

    def _check_codes(self, codes: torch.Tensor) -> None:
        if codes.dim() != 3 or not 1 <= codes.shape[1] <= self.total_codebooks or codes.shape[-1] == 0:
            raise UsageError(f"DAC decodes [B, K <= {self.total_codebooks}, T] codes, got {tuple(codes.shape)}")
        if codes.dtype.is_floating_point or int(codes.min()) < 0 or int(codes.max()) >= self.cardinality:
            raise UsageError(f"DAC codes must be integers in [0, {self.cardinality}); got dtype {codes.dtype}, "
                             f"range [{codes.min().item()}, {codes.max().item()}]")

    def _weight(self) -> torch.Tensor:
        return next(self.model.parameters())

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, frame_rate={self.frame_rate:g}, "
                f"num_codebooks={self.num_codebooks}, cardinality={self.cardinality}")


def factory(config: DacCodecConfig) -> DacCodec:
    """DAC (transformers): descript/dac_16khz, dac_24khz, dac_44khz, or a transformers folder."""
    return DacCodec(load_dac_model(config.model), num_codebooks=config.num_codebooks,
                    chunk_seconds=config.chunk_seconds, chunk_context_seconds=config.chunk_context_seconds)
