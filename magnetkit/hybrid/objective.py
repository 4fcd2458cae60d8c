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
    """The objective and its two parts (each a scalar tensor)."""

    loss: torch.Tensor  # masked + ar_loss_weight * autoregressive
    masked: torch.Tensor  # cross-entropy on the masked positions of the chosen stage
    autoregressive: torch.Tensor  # next-token cross-entropy on the prefix (0 without one)
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
                stage: int | None = None, generator: torch.Generator | None = None) -> HybridLoss:
    """The Hybrid-MAGNeT loss of one batch.

    Args:
        model: the transformer being trained.
        codes: [B, K, T] target codes.
        condition: [B, L, D] what to cross-attend to (condition dropout already applied).
        scheduler: draws the masked part's random spans (`MaskingScheduler.training_mask`).
        config: the recipe's ``hybrid`` section (prefix lengths and the loss weight).
        prefix_frames: P; drawn with `sample_prefix_frames` when None.
        stage: the codebook the masked objective trains; uniform when None.
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

    # -- inputs: the causal prefix block, then the rest masked as MAGNeT trains (§3.1) ----------
    rest = codes[..., prefix_frames:]  # [B, K, T - P]
    span_mask = scheduler.training_mask(batch, rest.shape[-1], generator=generator, device=codes.device)  # [B, T-P]
    inputs = rest.clone()
    inputs[:, stage] = rest[:, stage].masked_fill(span_mask, special)
    inputs[:, stage + 1:] = special
    block = (prefix_block(codes[..., :prefix_frames], special) if prefix_frames
             else codes.new_zeros(batch, num_codebooks, 0))
    width = block.shape[-1]
    logits = model(torch.cat([block, inputs], dim=-1), condition, stage, causal_prefix=width)  # [B, K, N+T-P, card]

    # -- masked loss: the chosen stage, masked positions only ----------------------------------
    stage_logits = logits[:, stage, width:]  # [B, T-P, card]
    masked = F.cross_entropy(stage_logits[span_mask].float(), rest[:, stage][span_mask])

    # -- autoregressive loss: column c predicts delayed column c, on real codes only -----------
    autoregressive = logits.new_zeros(())
    if prefix_frames:
        targets = delay(codes[..., :prefix_frames], special)  # [B, K, P+K-1]
        valid = pattern_mask(prefix_frames, num_codebooks, codes.device)[None].expand(batch, -1, -1)
        autoregressive = F.cross_entropy(logits[:, :, :width - 1][valid].float(), targets[valid])
    loss = masked + config.ar_loss_weight * autoregressive
    return HybridLoss(loss, masked.detach(), autoregressive.detach(), prefix_frames, stage)
