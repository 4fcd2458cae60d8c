"""The ``encodec`` codec: transformers' ``EncodecModel`` behind magnetkit's `Codec` contract.

transformers' port is used rather than the PyPI ``encodec`` package: it loads the same
official weights, includes the 32 kHz model MAGNeT uses, and does not import torchaudio.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from magnetkit import CheckpointError, ChunkedDecoding, UsageError, WrappedCodec, load_complete, local_path, looks_like_hub_id

from magnetkit_encodec.audiocraft_format import build_from_package, pointer_name, read_package
from magnetkit_encodec.config import EncodecCodecConfig

AUDIOCRAFT_FILE = "compression_state_dict.bin"
_WHAT = "EnCodec model"


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


class EncodecCodec(WrappedCodec):
    """EnCodec as a magnetkit codec: ``[B, C, S]`` audio <-> ``[B, K, T]`` int64 codes.

    A model that normalises its input (``normalize``, e.g. encodec_48khz) encodes the clip scaled
    to unit RMS and the scale is not kept: `decode` returns audio at that level, as audiocraft
    decodes generated codes with ``scale=None``.
    """

    family = "EnCodec"

    def __init__(self, model: torch.nn.Module, num_codebooks: int | None = None,
                 chunking: ChunkedDecoding | None = None) -> None:
        config = model.config
        # Encode the whole signal as one frame, as audiocraft does: the Codec contract has no
        # per-chunk scales (encodec_48khz sets chunk_length_s, which would yield several).
        config.chunk_length_s = None
        config.overlap = None
        super().__init__(model, sample_rate=config.sampling_rate, channels=config.audio_channels,
                         hop_length=math.prod(config.upsampling_ratios), cardinality=config.codebook_size,
                         total_codebooks=len(model.quantizer.layers), num_codebooks=num_codebooks, chunking=chunking)

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """``[B, C, S]`` float audio -> ``[B, K, ceil(S / hop)]`` int64 codes."""
        if wav.dim() != 3 or wav.shape[1] != self.channels or wav.shape[-1] == 0:
            raise UsageError(f"EnCodec encodes [B, {self.channels}, S] audio, got {tuple(wav.shape)}")
        # Encode with every codebook and keep the first K: residual quantisation makes the first K
        # codes independent of how many follow, so any K works, not only the listed bandwidths.
        bandwidth = max(self.model.config.target_bandwidths)
        codes = self.model.encode(self._model_input(wav), bandwidth=bandwidth, return_dict=False)[0]  # [1, B, K, T]
        return codes[0, :, : self.num_codebooks].long()

    @torch.no_grad()
    def latents(self, wav: torch.Tensor) -> torch.Tensor:
        """``[B, C, S]`` audio -> ``[B, D, T]`` the encoder's continuous output before quantisation.

        What the ``encodec`` embedder compares (FAD on codec latents); no input normalisation.
        """
        if wav.dim() != 3 or wav.shape[1] != self.channels or wav.shape[-1] == 0:
            raise UsageError(f"EnCodec encodes [B, {self.channels}, S] audio, got {tuple(wav.shape)}")
        return self.model.encoder(self._model_input(wav))

    def _decode_once(self, codes: torch.Tensor) -> torch.Tensor:
        # transformers wants [chunks, B, K, T] and one scale per chunk; generated codes have none.
        return self.model.decode(self._model_codes(codes)[None], [None], return_dict=False)[0]


def factory(config: EncodecCodecConfig) -> EncodecCodec:
    """EnCodec (transformers): 24/32/48 kHz hub models, transformers folders, audiocraft codec files."""
    return EncodecCodec(load_encodec_model(config.model), num_codebooks=config.num_codebooks, chunking=config)
