"""Top-k sampling (audiocraft ``utils.sample_top_k``)."""

from __future__ import annotations

import torch
from pydantic import Field

from magnetkit_samplers.base import SamplerConfig, TemperatureSampler, draw


class TopKConfig(SamplerConfig):
    """Parameters of the top-k sampler."""

    top_k: int = Field(250, ge=1, description="sample among this many most probable tokens")


class TopKSampler(TemperatureSampler):
    """Sample among the ``top_k`` most probable tokens (all tokens tied with the k-th stay too)."""

    def __init__(self, config: TopKConfig) -> None:
        super().__init__(config)
        self.top_k = config.top_k

    def _choose(self, logits: torch.Tensor, probs: torch.Tensor,
                generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        k = min(self.top_k, probs.shape[-1])  # k above the vocabulary keeps every token
        kth_largest = torch.topk(probs, k, dim=-1).values[..., -1:]
        kept = probs * (probs >= kth_largest).float()
        kept = kept / kept.sum(dim=-1, keepdim=True)
        tokens = draw(kept, generator)[..., 0]
        # audiocraft renormalises the softmax in place, so its confidences are read from the
        # truncated distribution; reading them from ``kept`` reproduces that.
        return tokens, kept
