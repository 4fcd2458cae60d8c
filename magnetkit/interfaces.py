"""The typed contracts of the component kinds (see DESIGN.md), and of the model the engine decodes with.

Everything the core calls on a component is declared here; the engine relies on nothing else
(no signature inspection, no optional attributes). Reusable bases that implement most of a
contract live in the core too: `magnetkit.SpanScheduler` (a scheduler from a curve gamma(t)),
`magnetkit.TemperatureSampler` (a sampler from a token choice), `magnetkit.WrappedCodec`.

Shapes: B batch, C channels, K codebooks, T frames, S samples, L condition length, D width,
U decoding units (spans or tokens, see `MaskingScheduler.num_units`), card the cardinality.

Factories. A plugin registers ``factory(config, **context)``: ``config`` is an instance of the
pydantic model registered with it (the recipe section, validated). The context the core passes:

* codec: none. Conditioner: ``output_dim`` (the transformer's width D).
* scheduler, sampler: none. Rescorer: ``pipeline`` (the `magnetkit.Pipeline` being built: its
  codec, recipe and device) and ``role``, the recipe section naming it (``"rescorer"``, or
  ``"hybrid.autoregressive"`` for a model that also decodes a Hybrid-MAGNeT prefix), for errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Sequence, TypeAlias, runtime_checkable

if TYPE_CHECKING:  # the contracts name torch types only in annotations: `import magnetkit` stays torch-free
    import torch

from magnetkit.model.config import ModelConfig


def missing_members(component: object, contract: type) -> list[str]:
    """The members of a contract (a Protocol above) that ``component`` lacks, in declaration order.

    Args:
        component: an implementation.
        contract: e.g. `Sampler`.

    Returns:
        Their names; empty when the component provides every declared member.
    """
    names = [n for n in getattr(contract, "__annotations__", {})]
    names += [n for n, v in vars(contract).items() if callable(v) and (not n.startswith("_") or n == "__call__")
              and n not in names]
    return [n for n in names if not hasattr(component, n)]


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
        import torch

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
    """One decoding step's choice of tokens from (already guided) logits (paper §3.3).

    The engine calls, per generation, ``check_stages(K)``; then at every step of every stage
    ``sampler(logits, step, num_steps, generator=generator, stage=stage)`` and reads
    ``span_scoring`` and ``positionwise``. `magnetkit.TemperatureSampler` implements all of it
    around one method that picks tokens from a tempered softmax.
    """

    #: "max" or "prod": how the scheduler turns token confidences into span scores (§3.2).
    span_scoring: str
    #: True when each position's token depends only on that position's logits (and the random
    #: stream): the engine may then pass only the positions it generates, as [1, N, card]
    #: (`DecodeOptions.masked_only`, the CPU fast path). False: it always passes [B, T, card].
    positionwise: bool

    def check_stages(self, num_stages: int) -> None:
        """Refuse per-stage settings that do not fit a model of ``num_stages`` codebook stages.

        Raises:
            UsageError: e.g. a ``stage_temperatures`` list of another length.
        """
        ...

    def __call__(self, logits: torch.Tensor, step: int, num_steps: int,
                 generator: torch.Generator | None = None, stage: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Choose a token at every position.

        Args:
            logits: [B, T, card] float guided logits (or [1, N, card] for a positionwise sampler);
                must not be modified.
            step: the decoding step within the stage, in [0, num_steps).
            num_steps: the stage's number of steps (for annealing).
            generator: the only source of randomness (on the logits' device); None = torch's global one.
            stage: the codebook stage being decoded, in [0, K) (for per-stage settings); None when
                the caller decodes no particular stage.

        Returns:
            (tokens [B, T] int64 in [0, card), probabilities of those tokens [B, T] float in (0, 1]):
            the confidences that decide which spans are re-masked next.
        """
        ...


# --------------------------------------------------------------------------------- rescorer
@runtime_checkable
class Rescorer(Protocol):
    """An external model that scores a full candidate token sequence (paper §3.3, Eq. 5).

    After a step's sampling the engine asks ``applies(stage, step)``; when true (and ``weight``
    < 1) it calls ``token_probs(codes, texts)`` and mixes the decoded stage's row into the
    confidences: ``p = weight * p_magnet + (1 - weight) * p_rescorer``. Checked by
    `magnetkit.testing.check_rescorer`.
    """

    #: w in p = w * p_magnet + (1 - w) * p_rescorer, in [0, 1]; 1 = MAGNeT alone (never called).
    weight: float

    def applies(self, stage: int, step: int) -> bool:
        """Whether rescoring is used at this codebook stage (from 0) and decoding step (from 0)."""
        ...

    def token_probs(self, codes: torch.Tensor, texts: Sequence[str | None]) -> torch.Tensor:
        """Each token's probability under the rescorer.

        Args:
            codes: [B, K, T] int64 candidate codes; stages not decoded yet hold the mask id
                (= card), which the rescorer must accept.
            texts: the B conditioning texts (None = unconditional).

        Returns:
            [B, K, T] float probabilities in [0, 1] (any device/dtype; the engine converts).
        """
        ...


# --------------------------------------------------------------------------- decoding model
#: Per-layer cross-attention (keys, values) of a condition, each [R, H, L, head_dim]; opaque to the engine.
#: A string alias, so that `import magnetkit` needs no torch (the contracts name torch only in annotations).
CrossCache: TypeAlias = "list[tuple[torch.Tensor, torch.Tensor]]"


@runtime_checkable
class DecodingModel(Protocol):
    """What the engine calls on the transformer (`magnetkit.engine.Decoder`).

    `MagnetTransformer` implements it; so do wrappers (e.g. Hybrid-MAGNeT's prefixed model) that
    change what the engine sees. ``config`` must give ``num_codebooks`` (K) and ``mask_id``.
    """

    config: ModelConfig

    def cross_attention_cache(self, condition: torch.Tensor) -> CrossCache:
        """Per-layer cross-attention keys/values of ``condition`` [R, L, D], reused at every step."""
        ...

    def __call__(self, codes: torch.Tensor, condition: torch.Tensor | None, stage: int, *,
                 stage_only: bool, cross_cache: CrossCache | None, blocked_attention: bool,
                 check_values: bool) -> torch.Tensor:
        """Logits for ``codes`` [R, K, T] (int64, mask id = to predict); the engine passes every keyword.

        Args:
            codes: the codes, R rows (conditional rows, then the guidance rows).
            condition: [R, L, D]; None when ``cross_cache`` is given.
            stage: the codebook stage being decoded (selects the attention context, §3.2).
            stage_only: return only that stage's head: [R, 1, T, card] instead of [R, K, T, card].
            cross_cache: ``cross_attention_cache(condition)``.
            blocked_attention: a speed switch (restricted attention block by block); a wrapper
                may pass it on or ignore it, it must not change the result.
            check_values: whether to re-check the code values (a host sync on a GPU).

        Returns:
            Float logits [R, K or 1, T, card].
        """
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
