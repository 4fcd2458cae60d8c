"""The typed contracts of the five component kinds (see DESIGN.md).

Shapes: B batch, C channels, K codebooks, T frames, S samples, L condition length, D width,
U decoding units (spans or tokens, see `MaskingScheduler.num_units`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import torch


# ----------------------------------------------------------------------------------- codec
@runtime_checkable
class Codec(Protocol):
    """Turns audio into discrete codes and back."""

    sample_rate: int
    channels: int
    frame_rate: float
    num_codebooks: int
    cardinality: int

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """[B, C, S] float audio -> [B, K, T] int64 codes in [0, cardinality)."""
        ...

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """[B, K, T] int64 codes -> [B, C, S] float audio."""
        ...


# ----------------------------------------------------------------------------- conditioner
@dataclass
class Condition:
    """What the transformer cross-attends to."""

    embeddings: torch.Tensor  # [B, L, D]
    mask: torch.Tensor  # [B, L] (1 = real token); audiocraft's cross-attention ignores it

    def __len__(self) -> int:
        return self.embeddings.shape[0]

    @staticmethod
    def cat(conditions: Sequence["Condition"]) -> "Condition":
        """Stack conditions along the batch, right-padding L with zeros."""
        length = max(c.embeddings.shape[1] for c in conditions)
        embs, masks = [], []
        for c in conditions:
            pad = length - c.embeddings.shape[1]
            embs.append(torch.nn.functional.pad(c.embeddings, (0, 0, 0, pad)))
            masks.append(torch.nn.functional.pad(c.mask, (0, pad)))
        return Condition(torch.cat(embs), torch.cat(masks))


@runtime_checkable
class Conditioner(Protocol):
    """Text (or audio) -> condition; ``None`` in the batch is the null condition for guidance.

    A conditioner is a ``torch.nn.Module`` whose ``state_dict()`` holds only its learned
    parameters (e.g. the output projection); frozen backbones are loaded from ``model``.
    """

    output_dim: int

    def __call__(self, texts: Sequence[str | None]) -> Condition:
        """Condition for each text; ``None`` (or the empty string) gives the null condition."""
        ...


# ------------------------------------------------------------------------ masking scheduler
@runtime_checkable
class MaskingScheduler(Protocol):
    """The mask-rate curve gamma(t) and span masking, for training and for decoding (paper §3)."""

    span_len: int

    def mask_rate(self, t: torch.Tensor) -> torch.Tensor:
        """gamma(t) for t in [0, 1] (float32): 1 at t=0, 0 at t=1."""
        ...

    def num_units(self, num_frames: int) -> int:
        """How many decoding units (spans or tokens) a stage of ``num_frames`` frames has."""
        ...

    def usable_frames(self, num_frames: int) -> int:
        """The generated length for a requested one (e.g. cut to a multiple of the span)."""
        ...

    def num_to_mask(self, step: int, num_steps: int, num_units: int) -> int:
        """How many units (or tokens, for overlapping spans) to mask at decoding ``step``."""
        ...

    def unit_scores(self, token_scores: torch.Tensor, reduce: str) -> torch.Tensor:
        """Per-token scores [B, T] -> per-unit re-mask scores [B, U] (higher = remask first).

        ``token_scores`` are confidences in [0, 1]; ``reduce`` is ``"max"`` or ``"prod"``.
        """
        ...

    def decode_mask(self, unit_scores: torch.Tensor, num_masked: int, num_frames: int) -> torch.Tensor:
        """Boolean token mask [B, T] of the ``num_masked`` highest-scoring units.

        For overlapping (stride-1) spans the count is in frames and met to within ``span_len``.
        """
        ...

    def unit_mask_to_tokens(self, unit_mask: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Boolean [B, U] -> [B, T]."""
        ...

    def training_mask(self, batch: int, num_frames: int, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu") -> torch.Tensor:
        """Random span mask [B, T] at a mask rate gamma(t), t ~ U(0, 1) per row (training)."""
        ...

    def sample_training_mask(self, batch: int, num_frames: int, generator: torch.Generator | None = None,
                             device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Like `training_mask`, also returning each row's mask rate [B]."""
        ...


# ---------------------------------------------------------------------------------- sampler
@runtime_checkable
class Sampler(Protocol):
    """One decoding step's choice of tokens from (already guided) logits.

    A sampler may set ``positionwise = True`` when each position's token depends only on that
    position's logits (and the random stream): the engine then passes only the positions it
    generates, as [1, N, card] (`DecodeOptions.masked_only`). Without the attribute it sees [B, T].
    """

    span_scoring: str  # "max" or "prod": how token confidences become span scores

    def __call__(self, logits: torch.Tensor, step: int, num_steps: int,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, T, card] logits -> (tokens [B, T] int64, probabilities of those tokens [B, T])."""
        ...


# --------------------------------------------------------------------------------- rescorer
@runtime_checkable
class Rescorer(Protocol):
    """An external model that scores a full candidate token sequence (paper Eq. 5)."""

    weight: float  # w in p = w * p_magnet + (1 - w) * p_rescorer

    def applies(self, stage: int, step: int) -> bool:
        """Whether rescoring is used at this stage and step."""
        ...

    def token_probs(self, codes: torch.Tensor, texts: Sequence[str | None]) -> torch.Tensor:
        """[B, K, T] candidate codes -> [B, K, T] probability of each token under the rescorer."""
        ...


# --------------------------------------------------------------------------------- embedder
@runtime_checkable
class Embedder(Protocol):
    """Audio (and, for joint audio-text models, text) -> vectors that evaluation metrics compare.

    ``per_frame`` says what a clip's vectors are: True, one vector per analysis frame or window
    (VGGish's 0.96 s frames, EnCodec latents); False, one vector per clip (CLAP, a classifier).
    An embedder may also offer ``embed_text(texts) -> [B, D]`` in the audio space (CLAP score)
    and set ``label_probs = True`` when its vectors are label probabilities (KL, audiocraft's
    classifier metric). ``cache_key`` names the weights and settings, for the reference cache.
    """

    sample_rate: int  # the rate `embed_audio` expects; callers resample with `magnetkit.resample`
    channels: int  # the channel count `embed_audio` expects (1 for every built-in embedder)
    dim: int  # D
    per_frame: bool
    cache_key: str

    def to(self, device: torch.device | str) -> "Embedder":
        """Move the embedder's model (if any) to ``device``; return self."""
        ...

    def embed_audio(self, wav: torch.Tensor, lengths: Sequence[int] | None = None) -> list[torch.Tensor]:
        """[B, C, S] float audio at ``sample_rate`` -> one float32 CPU tensor [n_i, D] per clip.

        ``lengths`` are the true lengths in samples of right-padded clips (None: all S); a
        clip's vectors must not depend on its padding or on the other clips of the batch.
        """
        ...
