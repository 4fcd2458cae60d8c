"""The single-model Hybrid-MAGNeT training objective (paper §3.4).

One forward pass trains both decoders: a random-length prefix in the delay pattern with causal
attention and a next-token loss on every codebook, and MAGNeT's masked objective (§3.1: one
random stage, random spans at a rate gamma(t), earlier stages kept, later ones masked) on the
frames after it, which attend to the whole prefix. Batches without a prefix train plain MAGNeT,
so the model also keeps decoding without one.

The loss is the weighted mean cross-entropy over every scored token: masked tokens weigh 1,
prefix tokens ``ar_loss_weight``. As a sum over tokens divided by one count it normalises over a
whole global batch the way the training loop does (`scored_tokens`, `hybrid_loss_sum`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from magnetkit.hybrid.config import HybridConfig
from magnetkit.hybrid.pattern import delay, pattern_mask, prefix_block
from magnetkit.interfaces import MaskingScheduler
from magnetkit.model.transformer import MagnetTransformer
from magnetkit.train.data import generator
from magnetkit.train.objective import Autocast, StepDraw, check_stage_weights, draw_stage, masked_loss_sum

PREFIX_STREAM = 16  # the prefix length's random stream, apart from magnetkit.train.data's purposes


@dataclass
class HybridInputs:
    """One batch laid out for the hybrid objective."""

    inputs: torch.Tensor  # [B, K, N + T - P]: the prefix block, then the masked rest
    width: int  # N = P + K columns of the prefix block (0 without a prefix)
    scored: torch.Tensor  # [B, T - P] masked and valid positions of the stage after the prefix
    prefix_scored: torch.Tensor  # [B, K, P + K - 1] delayed prefix cells holding valid codes
    prefix_targets: torch.Tensor  # [B, K, P + K - 1] the delayed prefix


@dataclass
class HybridLoss:
    """The objective and its parts (means are detached metrics; the sums carry gradients)."""

    loss: torch.Tensor  # (masked_sum + w * autoregressive_sum) / (masked_count + w * autoregressive_count)
    masked: torch.Tensor  # mean cross-entropy on the masked positions of the chosen stage
    autoregressive: torch.Tensor  # mean next-token cross-entropy on the prefix (0 without one)
    masked_sum: torch.Tensor
    masked_count: torch.Tensor
    autoregressive_sum: torch.Tensor
    autoregressive_count: torch.Tensor
    prefix_frames: int
    stage: int


# ------------------------------------------------------------------------------- drawing
def sample_prefix_frames(config: HybridConfig, num_frames: int, frame_rate: float, span_len: int,
                         generator: torch.Generator | None = None) -> int:
    """A batch's prefix length: 0 with probability 1 - prefix_prob, else uniform in [1, max_prefix_seconds].

    At least ``span_len`` frames are left after the prefix for the masked objective.
    """
    longest = min(int(config.max_prefix_seconds * frame_rate), num_frames - span_len)
    if longest < 1 or float(torch.rand((), generator=generator)) >= config.prefix_prob:
        return 0
    return int(torch.randint(1, longest + 1, (), generator=generator))


def draw_prefix_frames(config: HybridConfig | None, seed: int, step: int, num_frames: int, frame_rate: float,
                       span_len: int) -> int:
    """The prefix length of training ``step``, the same on every process (0 without a hybrid section)."""
    if config is None:
        return 0
    return sample_prefix_frames(config, num_frames, frame_rate, span_len, generator(seed, PREFIX_STREAM, step))


# -------------------------------------------------------------------------- the objective
class HybridObjective:
    """The training loop's Hybrid-MAGNeT objective (a `magnetkit.train.objective.Objective`).

    Each step draws a stage and a prefix length; a step without a prefix trains exactly the plain
    masked objective (the same forward and loss as `MaskedObjective`).
    """

    def __init__(self, config: HybridConfig, num_codebooks: int, mask_id: int, frame_rate: float,
                 span_len: int, stage_weights: Sequence[float] | None = None) -> None:
        self.config, self.num_codebooks, self.mask_id = config, num_codebooks, mask_id
        self.frame_rate, self.span_len = frame_rate, span_len
        self.stage_weights = check_stage_weights(stage_weights, num_codebooks)

    def draw(self, seed: int, step: int, num_frames: int) -> StepDraw:
        """A stage (`draw_stage`: uniform unless the recipe weighs them) and `draw_prefix_frames`' prefix length."""
        return StepDraw(draw_stage(seed, step, self.num_codebooks, self.stage_weights),
                        draw_prefix_frames(self.config, seed, step, num_frames, self.frame_rate, self.span_len))

    def scored_tokens(self, batch: Any, draw: StepDraw) -> torch.Tensor:
        """`scored_tokens` of the batch."""
        return scored_tokens(batch.spans, batch.valid, draw.prefix_frames, self.num_codebooks, self.config)

    def loss_sum(self, lm: Callable[..., torch.Tensor], batch: Any, draw: StepDraw, condition_length: int,
                 device: torch.device, autocast: Autocast) -> torch.Tensor:
        """`hybrid_loss_sum` with a prefix; the masked objective's loss without one."""
        if not draw.prefix_frames:
            return masked_loss_sum(lm, batch, draw.stage, self.mask_id, condition_length, device, autocast)
        with autocast():
            return hybrid_loss_sum(lm, batch, draw.stage, draw.prefix_frames, self.mask_id, self.config, device,
                                   condition_length=condition_length)


def hybrid_inputs(codes: torch.Tensor, spans: torch.Tensor, valid: torch.Tensor, stage: int, prefix_frames: int,
                  special: int) -> HybridInputs:
    """Lay out ``codes`` [B, K, T]: the causal prefix block, then the rest masked as MAGNeT trains (§3.1).

    ``spans`` [B, T] is the stage's span mask (only frames after the prefix are used); ``valid``
    [B, T] is False on padding, which is never scored and is masked in every stage.
    """
    batch, num_codebooks, frames = codes.shape
    if not 0 <= prefix_frames < frames:
        raise ValueError(f"prefix_frames must be in [0, {frames}), got {prefix_frames}")
    rest, rest_valid, rest_spans = codes[..., prefix_frames:], valid[:, prefix_frames:], spans[:, prefix_frames:]
    hidden = torch.zeros_like(rest, dtype=torch.bool)  # [B, K, T - P]
    hidden[:, stage] = rest_spans
    hidden[:, stage + 1:] = True  # later stages are unknown while this one is decoded
    hidden |= ~rest_valid[:, None]
    prefix = codes[..., :prefix_frames]
    block = prefix_block(prefix, special) if prefix_frames else codes.new_zeros(batch, num_codebooks, 0)
    prefix_valid = delay(valid[:, None, :prefix_frames].expand(-1, num_codebooks, -1).long(), 0).bool()
    on_pattern = pattern_mask(prefix_frames, num_codebooks, codes.device)[None]  # [1, K, P + K - 1]
    return HybridInputs(torch.cat([block, rest.masked_fill(hidden, special)], dim=-1), block.shape[-1],
                        rest_spans & rest_valid, (prefix_valid & on_pattern) if prefix_frames else prefix_valid,
                        delay(prefix, special))


def hybrid_loss_sums(logits: torch.Tensor, codes: torch.Tensor, layout: HybridInputs, stage: int,
                     prefix_frames: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed cross-entropies (float32) and counts of the masked stage and of the prefix.

    ``logits`` [B, K, N + T - P, card] cover every head: column c of the prefix block predicts
    delayed column c (next-token prediction), columns after it the masked stage.
    """
    rest = codes[:, stage, prefix_frames:]  # [B, T - P]
    stage_logits = logits[:, stage, layout.width:]  # [B, T - P, card]
    masked_sum = F.cross_entropy(stage_logits[layout.scored].float(), rest[layout.scored], reduction="sum")
    scored = layout.prefix_scored
    prefix_logits = logits[:, :, :max(layout.width - 1, 0)]  # [B, K, P + K - 1, card]
    autoregressive_sum = logits.new_zeros((), dtype=torch.float32)
    if layout.width:
        autoregressive_sum = F.cross_entropy(prefix_logits[scored].float(), layout.prefix_targets[scored],
                                             reduction="sum")
    return masked_sum, layout.scored.sum(), autoregressive_sum, scored.sum()


def scored_tokens(spans: torch.Tensor, valid: torch.Tensor, prefix_frames: int, num_codebooks: int,
                  config: HybridConfig | None) -> torch.Tensor:
    """The loss's normaliser for one batch: masked valid tokens after the prefix + w x valid prefix codes.

    Without a prefix it is the plain MAGNeT count, ``(spans & valid).sum()``.
    """
    masked = (spans[:, prefix_frames:] & valid[:, prefix_frames:]).sum().float()
    if not prefix_frames or config is None:
        return masked
    return masked + config.ar_loss_weight * num_codebooks * valid[:, :prefix_frames].sum().float()


def hybrid_loss_sum(lm: Callable[..., torch.Tensor], batch: Any, stage: int, prefix_frames: int, mask_id: int,
                    config: HybridConfig, device: torch.device, **lm_kwargs: Any) -> torch.Tensor:
    """The training loop's summed loss of one batch (``codes``, ``spans``, ``valid``, ``texts``) with a prefix.

    ``lm(inputs, texts, stage, **lm_kwargs, causal_prefix=N)`` must return every head's logits.
    Divided by the global sum of `scored_tokens`, it is `hybrid_loss`'s weighted mean.
    """
    codes = batch.codes.to(device)
    layout = hybrid_inputs(codes, batch.spans.to(device), batch.valid.to(device), stage, prefix_frames, mask_id)
    logits = lm(layout.inputs, batch.texts, stage, **lm_kwargs, causal_prefix=layout.width)
    masked_sum, _, autoregressive_sum, _ = hybrid_loss_sums(logits, codes, layout, stage, prefix_frames)
    return masked_sum + config.ar_loss_weight * autoregressive_sum


def hybrid_loss(model: MagnetTransformer, codes: torch.Tensor, condition: torch.Tensor,
                scheduler: MaskingScheduler, config: HybridConfig, *, prefix_frames: int | None = None,
                stage: int | None = None, spans: torch.Tensor | None = None, valid: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> HybridLoss:
    """The Hybrid-MAGNeT loss of one batch.

    Args:
        model: the transformer being trained.
        codes: [B, K, T] target codes.
        condition: [B, L, D] what to cross-attend to (condition dropout already applied).
        scheduler: draws the masked part's random spans (`MaskingScheduler.training_mask`).
        config: the recipe's ``hybrid`` section (prefix lengths and the loss weight).
        prefix_frames: P; drawn with `sample_prefix_frames` when None.
        stage: the codebook the masked objective trains; uniform when None.
        spans: [B, T] span mask of the stage (only frames after the prefix are used); drawn when None.
        valid: [B, T] False on padding, which is never scored; all valid when None.
        generator: every random choice is drawn from it.
    Returns:
        A `HybridLoss`.
    """
    batch, num_codebooks, frames = codes.shape
    if prefix_frames is None:
        prefix_frames = sample_prefix_frames(config, frames, model.config.frame_rate, scheduler.span_len, generator)
    if stage is None:
        stage = int(torch.randint(0, num_codebooks, (), generator=generator))
    if spans is None:
        spans = torch.zeros(batch, frames, dtype=torch.bool, device=codes.device)
        if prefix_frames < frames:
            spans[:, prefix_frames:] = scheduler.training_mask(batch, frames - prefix_frames, generator=generator,
                                                               device=codes.device)
    valid = torch.ones(batch, frames, dtype=torch.bool, device=codes.device) if valid is None else valid
    layout = hybrid_inputs(codes, spans, valid, stage, prefix_frames, model.config.mask_id)
    logits = model(layout.inputs, condition, stage, causal_prefix=layout.width)  # [B, K, N + T - P, card]
    masked_sum, masked_count, ar_sum, ar_count = hybrid_loss_sums(logits, codes, layout, stage, prefix_frames)
    weight = config.ar_loss_weight
    loss = (masked_sum + weight * ar_sum) / (masked_count + weight * ar_count).clamp(min=1)
    return HybridLoss(loss, (masked_sum / masked_count.clamp(min=1)).detach(),
                      (ar_sum / ar_count.clamp(min=1)).detach(), masked_sum, masked_count, ar_sum, ar_count,
                      prefix_frames, stage)
