"""The ``encodec`` codec: transformers' ``EncodecModel`` behind magnetkit's `Codec` contract.

transformers' port is used rather than the PyPI ``encodec`` package: it loads the same
official weights, includes the 32 kHz model MAGNeT uses, and does not import torchaudio.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field

from magnetkit.audio import decode_in_chunks
from magnetkit.errors import CheckpointError, UsageError
from magnetkit.hub import load_complete, local_path, looks_like_hub_id

from magnetkit_encodec.audiocraft_format import build_from_package, pointer_name, read_package

AUDIOCRAFT_FILE = "compression_state_dict.bin"
_WHAT = "EnCodec model"


class EncodecCodecConfig(BaseModel):
    """Parameters of the ``encodec`` codec (the recipe's ``codec`` section)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("facebook/encodec_32khz", description=(
        "hub id (facebook/encodec_24khz, _32khz, _48khz), transformers folder, or audiocraft "
        "compression_state_dict.bin (file, or a folder or hub repo holding one)"))
    num_codebooks: int | None = Field(None, ge=1, description="codebooks to use (fewer = lower bandwidth); None = all")
    chunk_seconds: float | None = Field(30.0, gt=0, description=(
        "decode longer code sequences window by window, this many seconds each; None = always in one shot"))
    chunk_context_seconds: float = Field(1.0, ge=0, description="context decoded and dropped on each side of a window")


def load_encodec_model(source: str):
    """A transformers ``EncodecModel`` from a hub id, a folder, or an audiocraft codec file.

    Raises:
        HubUnavailableError: a hub id that is not cached while offline.
        CheckpointError: anything missing, unsafe, corrupt or not mappable.
    """
    return _load(source, follow=2)


def _load(source: str, follow: int):
    path = Path(source).expanduser()
    if path.is_file():
        return _from_audiocraft_file(path, follow)
    if path.is_dir():
        if (path / "config.json").exists():
            return _from_transformers(str(path))
        if (path / AUDIOCRAFT_FILE).exists():
            return _from_audiocraft_file(path / AUDIOCRAFT_FILE, follow)
        raise CheckpointError(f"{_WHAT} folder {str(path)!r} has neither config.json (transformers) "
                              f"nor {AUDIOCRAFT_FILE} (audiocraft)")
    if not looks_like_hub_id(source):
        raise CheckpointError(f"{_WHAT} path {source!r} does not exist")
    # A hub repo is a transformers model (config.json) or an audiocraft one (e.g. a MAGNeT repo).
    try:
        local_path(source, "config.json", what=_WHAT)
    except CheckpointError as first:
        try:
            file = local_path(source, AUDIOCRAFT_FILE, what=_WHAT)
        except CheckpointError:
            raise first from None
        return _from_audiocraft_file(file, follow)
    return _from_transformers(source)


def _from_transformers(source: str):
    from transformers import EncodecModel

    model = load_complete(EncodecModel, source, what=_WHAT)
    return model.eval()


def _from_audiocraft_file(file: Path, follow: int):
    pkg = read_package(file)
    name = pointer_name(pkg, file)
    if name is None:
        return build_from_package(pkg, file)
    if follow <= 0:
        raise CheckpointError(f"codec checkpoint {str(file)!r} points to {name!r}, which points on again; giving up")
    return _load(name, follow - 1)


class EncodecCodec(torch.nn.Module):
    """EnCodec as a magnetkit codec: ``[B, C, S]`` audio <-> ``[B, K, T]`` int64 codes.

    A model that normalises its input (``normalize``, e.g. encodec_48khz) encodes the clip scaled
    to unit RMS and the scale is not kept: `decode` returns audio at that level, as audiocraft
    decodes generated codes with ``scale=None``.
    """

    def __init__(self, model: torch.nn.Module, num_codebooks: int | None = None, chunk_seconds: float | None = 30.0,
                 chunk_context_seconds: float = 1.0):
        super().__init__()
        config = model.config
        # Encode the whole signal as one frame, as audiocraft does: the Codec contract has no
        # per-chunk scales (encodec_48khz sets chunk_length_s, which would yield several).
        config.chunk_length_s = None
        config.overlap = None
        self.model = model.eval().requires_grad_(False)
        self.sample_rate: int = int(config.sampling_rate)
        self.channels: int = int(config.audio_channels)
        self.hop_length: int = int(math.prod(config.upsampling_ratios))
        self.frame_rate: float = self.sample_rate / self.hop_length
        self.cardinality: int = int(config.codebook_size)
        self.total_codebooks: int = len(model.quantizer.layers)
        if num_codebooks is not None and num_codebooks > self.total_codebooks:
            raise UsageError(f"codec.num_codebooks: {num_codebooks} is more than the {self.total_codebooks} "
                             f"codebooks this EnCodec model has")
        self.num_codebooks: int = num_codebooks or self.total_codebooks
        self.chunk_frames = None if chunk_seconds is None else max(1, round(chunk_seconds * self.frame_rate))
        self.context_frames = round(chunk_context_seconds * self.frame_rate)

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """``[B, C, S]`` float audio -> ``[B, K, ceil(S / hop)]`` int64 codes."""
        if wav.dim() != 3 or wav.shape[1] != self.channels or wav.shape[-1] == 0:
            raise UsageError(f"EnCodec encodes [B, {self.channels}, S] audio, got {tuple(wav.shape)}")
        # Encode with every codebook and keep the first K: residual quantisation makes the first K
        # codes independent of how many follow, so any K works, not only the listed bandwidths.
        bandwidth = max(self.model.config.target_bandwidths)
        weight = self._weight()
        wav = wav.to(device=weight.device, dtype=weight.dtype)
        codes = self.model.encode(wav, bandwidth=bandwidth, return_dict=False)[0]  # [1, B, K, T]
        return codes[0, :, : self.num_codebooks].long()

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

    def _decode_once(self, codes: torch.Tensor) -> torch.Tensor:
        # transformers wants [chunks, B, K, T] and one scale per chunk; generated codes have none.
        codes = codes.to(device=self._weight().device, dtype=torch.long)
        return self.model.decode(codes[None], [None], return_dict=False)[0]

    def _check_codes(self, codes: torch.Tensor) -> None:
        if codes.dim() != 3 or not 1 <= codes.shape[1] <= self.total_codebooks or codes.shape[-1] == 0:
            raise UsageError(f"EnCodec decodes [B, K <= {self.total_codebooks}, T] codes, got {tuple(codes.shape)}")
        if codes.dtype.is_floating_point or int(codes.min()) < 0 or int(codes.max()) >= self.cardinality:
            raise UsageError(f"EnCodec codes must be integers in [0, {self.cardinality}); got dtype {codes.dtype}, "
                             f"range [{codes.min().item()}, {codes.max().item()}]")

    def _weight(self) -> torch.Tensor:
        return next(self.model.parameters())

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, channels={self.channels}, frame_rate={self.frame_rate:g}, "
                f"num_codebooks={self.num_codebooks}, cardinality={self.cardinality}")


def factory(config: EncodecCodecConfig) -> EncodecCodec:
    """EnCodec (transformers): 24/32/48 kHz hub models, transformers folders, audiocraft codec files."""
    return EncodecCodec(load_encodec_model(config.model), num_codebooks=config.num_codebooks,
                        chunk_seconds=config.chunk_seconds, chunk_context_seconds=config.chunk_context_seconds)
