"""A base for codecs that wrap a neural audio model: shared checks, chunked decoding, devices.

A subclass sets the token layout in ``__init__`` through `WrappedCodec.__init__` and implements
``encode`` and ``_decode_once``; `decode` then handles validation and long sequences.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from magnetkit.audio import decode_in_chunks
from magnetkit.component_config import ChunkedDecoding
from magnetkit.errors import UsageError


class WrappedCodec(torch.nn.Module, ABC):
    """``[B, C, S]`` audio <-> ``[B, K, T]`` int64 codes around a frozen ``model``."""

    family = "codec"  # named in error messages, e.g. "EnCodec"

    def __init__(self, model: torch.nn.Module, *, sample_rate: int, channels: int, hop_length: int,
                 cardinality: int, total_codebooks: int, num_codebooks: int | None = None,
                 chunking: ChunkedDecoding | None = None) -> None:
        """Set the token layout.

        Args:
            model: the frozen neural codec.
            sample_rate, channels, hop_length: its audio layout (frame rate = sample_rate / hop_length).
            cardinality, total_codebooks: its token space.
            num_codebooks: the codebooks to use (the first K); None = all.
            chunking: windowed decoding of long sequences (default: `ChunkedDecoding`'s).

        Raises:
            UsageError: more codebooks asked for than the model has.
        """
        super().__init__()
        chunking = chunking or ChunkedDecoding()
        self.model = model.eval().requires_grad_(False)
        self.sample_rate, self.channels, self.hop_length = int(sample_rate), int(channels), int(hop_length)
        self.frame_rate: float = self.sample_rate / self.hop_length  # exact, never rounded
        self.cardinality, self.total_codebooks = int(cardinality), int(total_codebooks)
        if num_codebooks is not None and num_codebooks > self.total_codebooks:
            raise UsageError(f"codec.num_codebooks: {num_codebooks} is more than the {self.total_codebooks} "
                             f"codebooks this {self.family} model has")
        self.num_codebooks: int = num_codebooks or self.total_codebooks
        seconds = chunking.chunk_seconds
        self.chunk_frames = None if seconds is None else max(1, round(seconds * self.frame_rate))
        self.context_frames = round(chunking.chunk_context_seconds * self.frame_rate)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``[B, K, T]`` codes -> ``[B, C, T * hop]`` audio; long sequences in windows (see config)."""
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

    @abstractmethod
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """``[B, C, S]`` float audio -> ``[B, K, T]`` int64 codes."""

    @abstractmethod
    def _decode_once(self, codes: torch.Tensor) -> torch.Tensor:
        """Decode ``[B, K, T]`` codes in one pass -> ``[B, C, >= T * hop]``."""

    def _check_codes(self, codes: torch.Tensor) -> None:
        if codes.dim() != 3 or not 1 <= codes.shape[1] <= self.total_codebooks or codes.shape[-1] == 0:
            raise UsageError(f"{self.family} decodes [B, K <= {self.total_codebooks}, T] codes, got {tuple(codes.shape)}")
        if codes.dtype.is_floating_point or int(codes.min()) < 0 or int(codes.max()) >= self.cardinality:
            raise UsageError(f"{self.family} codes must be integers in [0, {self.cardinality}); got dtype "
                             f"{codes.dtype}, range [{codes.min().item()}, {codes.max().item()}]")

    def _model_input(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav`` on the model's device and dtype."""
        weight = next(self.model.parameters())
        return wav.to(device=weight.device, dtype=weight.dtype)

    def _model_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes`` as int64 on the model's device."""
        return codes.to(device=next(self.model.parameters()).device, dtype=torch.long)

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, channels={self.channels}, frame_rate={self.frame_rate:g}, "
                f"num_codebooks={self.num_codebooks}, cardinality={self.cardinality}")
