"""The single-model Hybrid-MAGNeT training objective (paper §3.4).

One forward pass trains both decoders: a random-length prefix in the delay pattern with causal
attention and a next-token loss on every codebook, and MAGNeT's masked objective (§3.1: one
random stage, random spans at a rate gamma(t), earlier stages kept, later ones masked) on the
frames after it, which attend to the whole prefix. Batches without a prefix train plain MAGNeT,
so the model also keeps decoding without one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from magnetkit.hybrid.config import HybridConfig
from magnetkit.hybrid.pattern import delay, pattern_mask, prefix_block
from magnetkit.interfaces import MaskingScheduler
from magnetkit.model.transformer import MagnetTransformer


@dataclass
class HybridLoss:
    """The objective, its two parts, and the sums and counts behind them (for global normalisation)."""

    loss: torch.Tensor  # masked + ar_loss_weight * autoregressive (the means below)
    masked: torch.Tensor  # mean cross-entropy on the masked positions of the chosen stage
    autoregressive: torch.Tensor  # mean next-token cross-entropy on the prefix (0 without one)
    masked_sum: torch.Tensor  # summed cross-entropies (with gradients) and how many tokens they cover
    masked_count: torch.Tensor
    autoregressive_sum: torch.Tensor
    autoregressive_count: torch.Tensor
    prefix_frames: int
    stage: int


def sample_prefix_frames(config: HybridConfig, num_frames: int, frame_rate: float, span_len: int,
                         generator: torch.Generator | None = None) -> int:
    """A batch's prefix length: 0 with probability 1 - prefix_prob, else uniform in [1, max_prefix_seconds].

    At least ``span_len`` frames are left after the prefix for the masked objective.
    """
    longest = min(int(config.max_prefix_seconds * frame_rate), num_frames - span_len)
    if longest < 1 or float(torch.rand((), generator=generator)) >= config.prefix_prob:
        return 0
    return int(torch.randint(1, longest + 1, (), generator=generator))


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
    special = model.config.mask_id
    if prefix_frames is None:
        prefix_frames = sample_prefix_frames(config, frames, model.config.frame_rate, scheduler.span_len, generator)
    if stage is None:
        stage = int(torch.randint(0, num_codebooks, (), generator=generator))
    if not 0 <= prefix_frames < frames:
        raise ValueError(f"prefix_frames must be in [0, {frames}), got {prefix_frames}")
    if spans is None:
        spans = torch.zeros(batch, frames, dtype=torch.bool, device=codes.device)
        spans[:, prefix_frames:] = scheduler.training_mask(batch, frames - prefix_frames, generator=generator,
                                                           device=codes.device)
    valid = torch.ones(batch, frames, dtype=torch.bool, device=codes.device) if valid is None else valid

    # -- inputs: the causal prefix block, then the rest masked as MAGNeT trains (§3.1) ----------
    rest, rest_valid = codes[..., prefix_frames:], valid[:, prefix_frames:]  # [B, K, T-P], [B, T-P]
    scored = spans[:, prefix_frames:] & rest_valid  # [B, T-P]
    hidden = torch.zeros_like(rest, dtype=torch.bool)
    hidden[:, stage] = spans[:, prefix_frames:]
    hidden[:, stage + 1:] = True  # later stages are unknown while this one is decoded
    hidden |= ~rest_valid[:, None]
    prefix = codes[..., :prefix_frames]
    block = prefix_block(prefix, special) if prefix_frames else codes.new_zeros(batch, num_codebooks, 0)
    width = block.shape[-1]
    inputs = torch.cat([block, rest.masked_fill(hidden, special)], dim=-1)
    logits = model(inputs, condition, stage, causal_prefix=width)  # [B, K, N + T - P, card]

    # -- masked loss: the chosen stage, masked positions only ----------------------------------
    stage_logits = logits[:, stage, width:]  # [B, T-P, card]
    masked_sum = F.cross_entropy(stage_logits[scored].float(), rest[:, stage][scored], reduction="sum")
    masked_count = scored.sum()

    # -- autoregressive loss: column c predicts delayed column c, on real codes only -----------
    autoregressive_sum, autoregressive_count = logits.new_zeros((), dtype=torch.float32), masked_count.new_zeros(())
    if prefix_frames:
        targets = delay(prefix, special)  # [B, K, P+K-1]
        on_pattern = pattern_mask(prefix_frames, num_codebooks, codes.device)[None]  # [1, K, P+K-1]
        ar_valid = on_pattern & delay(valid[:, None, :prefix_frames].expand(-1, num_codebooks, -1).long(), 0).bool()
        autoregressive_sum = F.cross_entropy(logits[:, :, :width - 1][ar_valid].float(), targets[ar_valid],
                                             reduction="sum")
        autoregressive_count = ar_valid.sum()
    masked = masked_sum / masked_count.clamp(min=1)
    autoregressive = autoregressive_sum / autoregressive_count.clamp(min=1)
    return HybridLoss(masked + config.ar_loss_weight * autoregressive, masked.detach(), autoregressive.detach(),
                      masked_sum, masked_count, autoregressive_sum, autoregressive_count, prefix_frames, stage)
