"""The paper's cosine schedule gamma(t) = cos(pi t / 2) (§3, after MaskGIT)."""

from __future__ import annotations

import math

import torch

from magnetkit import SpanScheduler
from magnetkit_schedulers.config import CosineConfig


class CosineScheduler(SpanScheduler):
    """Mask rate cos(pi t / 2): MAGNeT's schedule for training and decoding."""

    def __init__(self, config: CosineConfig) -> None:
        super().__init__(config)

    def mask_rate(self, t: torch.Tensor) -> torch.Tensor:
        """gamma(t) = cos(pi t / 2) in float32 (1 at t=0, 0 at t=1)."""
        # Same float32 operations, in the same order, as audiocraft: counts derived from the
        # rate must not change by one ulp.
        return torch.cos(self.as_time(t) * math.pi * 0.5)
