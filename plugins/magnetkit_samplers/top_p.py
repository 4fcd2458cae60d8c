"""Nucleus (top-p) sampling, MAGNeT's default (audiocraft ``utils.sample_top_p``)."""

from __future__ import annotations

import torch
from pydantic import Field

from magnetkit_samplers.base import SamplerConfig, TemperatureSampler, draw


class TopPConfig(SamplerConfig):
    """Parameters of the top-p sampler."""

    top_p: float = Field(0.9, gt=0, le=1, description="keep the most probable tokens holding this share of the mass")


class TopPSampler(TemperatureSampler):
    """Sample among the most probable tokens whose cumulated probability reaches ``top_p``."""

    def __init__(self, config: TopPConfig) -> None:
        super().__init__(config)
        self.top_p = config.top_p

    def _choose(self, logits: torch.Tensor, probs: torch.Tensor,
                generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        ranked, order = torch.sort(probs, dim=-1, descending=True)
        # A token stays while the mass ranked above it is at most p (so the first always stays).
        mass_above = torch.cumsum(ranked, dim=-1) - ranked
        ranked = ranked * (~(mass_above > self.top_p)).float()
        ranked = ranked / ranked.sum(dim=-1, keepdim=True)
        tokens = torch.gather(order, -1, draw(ranked, generator))[..., 0]
        # Confidences come from the untruncated softmax, as in audiocraft.
        return tokens, probs
