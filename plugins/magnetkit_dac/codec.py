"""The ``dac`` codec: transformers' ``DacModel`` (Descript Audio Codec) behind magnetkit's `Codec` contract.

transformers' port is used rather than the PyPI ``descript-audio-codec`` package: it loads the
same official weights (descript/dac_16khz, dac_24khz, dac_44khz) and does not import torchaudio.
"""

from __future__ import annotations

from pathlib import Path

import torch

from magnetkit import CheckpointError, ChunkedDecoding, UsageError, WrappedCodec, load_complete
from magnetkit_dac.config import DacCodecConfig

_WHAT = "DAC model"


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


class DacCodec(WrappedCodec):
    """DAC as a magnetkit codec: ``[B, 1, S]`` audio <-> ``[B, K, T]`` int64 codes."""

    family = "DAC"

    def __init__(self, model: torch.nn.Module, num_codebooks: int | None = None,
                 chunking: ChunkedDecoding | None = None) -> None:
        config = model.config
        # hop_length, not config.frame_rate, which rounds up (86.13 Hz -> 87 for 44.1 kHz).
        super().__init__(model, sample_rate=config.sampling_rate, channels=1, hop_length=config.hop_length,
                         cardinality=config.codebook_size, total_codebooks=config.n_codebooks,
                         num_codebooks=num_codebooks, chunking=chunking or DacCodecConfig())

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """``[B, 1, S]`` float audio -> ``[B, K, ceil(S / hop)]`` int64 codes."""
        if wav.dim() != 3 or wav.shape[1] != 1 or wav.shape[-1] == 0:
            raise UsageError(f"DAC encodes [B, 1, S] audio, got {tuple(wav.shape)}")
        # transformers' DacModel drops a partial last frame; pad it to a full one as DAC's own
        # preprocessing does, so every input sample is covered by a code.
        pad = -wav.shape[-1] % self.hop_length
        wav = torch.nn.functional.pad(self._model_input(wav), (0, pad))
        codes = self.model.encode(wav, n_quantizers=self.num_codebooks, return_dict=False)[2]  # [B, K, T]
        return codes[:, : self.num_codebooks].long()

    def _decode_once(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(audio_codes=self._model_codes(codes), return_dict=False)[0].unsqueeze(1)  # [B, 1, S]


def factory(config: DacCodecConfig) -> DacCodec:
    """DAC (transformers): descript/dac_16khz, dac_24khz, dac_44khz, or a transformers folder."""
    return DacCodec(load_dac_model(config.model), num_codebooks=config.num_codebooks, chunking=config)
