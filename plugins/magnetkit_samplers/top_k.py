"""Top-k sampling (audiocraft ``utils.sample_top_k``)."""

from __future__ import annotations

import torch

from magnetkit import TemperatureSampler
from magnetkit_samplers.base import (
    draw,
    draw_ranked,
    mass_below,
    ranked_cumulative,
)
from magnetkit_samplers.config import TopKConfig


class TopKSampler(TemperatureSampler):
    """Sample among the ``top_k`` most probable tokens (all tokens tied with the k-th stay too)."""

    def __init__(self, config: TopKConfig) -> None:
        super().__init__(config)
        self.top_k = config.top_k
        self.audiocraft_stream = config.audiocraft_stream

    def choose(self, logits: torch.Tensor, probs: torch.Tensor,
               generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        k = min(self.top_k, probs.shape[-1])  # k above the vocabulary keeps every token
        if not self.audiocraft_stream:
            flat = probs.reshape(-1, probs.shape[-1])
            ascending, cumulative = ranked_cumulative(flat)
            # Every token tied with the k-th largest stays, as in audiocraft.
            first = torch.searchsorted(ascending, ascending[:, flat.shape[-1] - k, None].contiguous())
            tokens = draw_ranked(flat, ascending, cumulative, first, generator)
            kept_mass = cumulative[:, -1:] - mass_below(cumulative, first)
            return tokens.reshape(probs.shape[:-1]), (flat / kept_mass).reshape(probs.shape)
        kth_largest = torch.topk(probs, k, dim=-1).values[..., -1:]
        kept = probs * (probs >= kth_largest).float()
        kept = kept / kept.sum(dim=-1, keepdim=True)
        tokens = draw(kept, generator)[..., 0]
        # audiocraft renormalises the softmax in place, so its confidences are read from the
        # truncated distribution; reading them from ``kept`` reproduces that.
        return tokens, kept
